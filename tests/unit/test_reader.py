"""The reader, the awk program that turns ip's JSON into facts (PARSE_AWK), fed a made-up host reading (no root
needed) in which foreign links have names that Linux accepts but a lab never gives: quotes, backslashes, braces,
brackets, commas, UTF-8, 15 bytes. Every lab object must read right, and no foreign one may pass for a lab object
or for another foreign one."""

import json
import os
import re
import shutil
import subprocess

import pytest
from helpers import REPO

# Every awk the scripts may meet here: Debian's default (mawk) and gawk, when installed.
AWKS = [awk for awk in ("mawk", "gawk") if shutil.which(awk)] or ["awk"]
C_LOCALE = {"PATH": os.environ["PATH"], "LC_ALL": "C"}  # as the scripts run it


@pytest.fixture(scope="module")
def parse_awk(tmp_path_factory):
    """The reader as the scripts write it to their scratch directory: bash expands the script's own assignment."""
    path = tmp_path_factory.mktemp("reader") / "parse.awk"
    verify = REPO / "out" / "docker0" / "verify.sh"
    subprocess.run(["bash", "-c", f"""eval "$(sed -n "/^PARSE_AWK='/,/}}'$/p" {verify})"
                    printf '%s\\n' "$PARSE_AWK" >{path}"""], check=True)
    return path


# What iproute2's JSON writer escapes in a string; every other byte it prints as it is (control bytes too).
IP_ESCAPES = {'"': '\\"', "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f", "\b": "\\b"}


def as_ip_prints(value) -> str:
    """JSON as `ip -j` prints it: no spaces, strings escaped as ip escapes them. Bytes that are not UTF-8 are carried
    in str as surrogates (surrogateescape)."""
    if isinstance(value, str):
        return '"' + "".join(IP_ESCAPES.get(c, c) for c in value) + '"'
    if isinstance(value, dict):
        return "{" + ",".join(f"{as_ip_prints(k)}:{as_ip_prints(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(as_ip_prints(v) for v in value) + "]"
    return json.dumps(value)


def read_as(name: str) -> str:
    """The name the reader gives a string: itself, or, when ip escaped it, ip's text of it with \\u0022 for \\"
    (lab names have no backslash)."""
    text = as_ip_prints(name)[1:-1]
    return text.replace('\\"', "\\u0022") if "\\" in text else name


# ids of namespaces, as `ip netns list` gives them; the lab's ns1 and foreign ones (a namespace's name may hold `:`)
NETNS = [("ns1", 0), ('ns{2"', 1), ("x:[{y", 2)]

# The host's links: (ifindex, name, kind, peer, master, up, mtu, addresses, alias). A peer is a name (same
# namespace) or (ifindex, netnsid). The lab's objects come first; the rest are foreign.
LAB = {"lo", "br0", "veth0", "veth1", "veth2"}
LINKS = [
    (1, "lo", "loopback", None, None, True, 65536, ["127.0.0.1/8"], None),
    (2, "br0", "bridge", None, None, True, 1500, ["10.0.0.1/24"], 'x{"ifname":"veth1",\n"master":"br1"}%\t'),
    (3, "veth0", "veth", (7, 0), "br0", True, 1500, [], None),
    (4, "veth1", "veth", "veth2", None, False, 1400, ["10.0.1.1/24"], None),
    (5, "veth2", "veth", "veth1", None, True, 1500, [], None),
    (10, 'd}{"e', "veth", "x{y", None, True, 1500, ["10.99.0.1/24"], None),
    (11, "x{y", "veth", 'd}{"e', None, True, 1500, [], None),
    (12, "veth1{", "veth", 'veth2"', None, True, 1500, ["10.98.0.1/24"], None),  # a lab name and a brace
    (13, 'veth2"', "veth", "veth1{", None, True, 1500, [], None),
    (14, "br0{", "bridge", None, None, True, 1500, [], None),
    (15, "a,b", "veth", (16, 1), "br0{", True, 1500, [], None),
    (17, 'q"uote', "veth", "br\\0", None, False, 1500, [], None),
    (18, "br\\0", "veth", 'q"uote', None, False, 1500, [], None),
    (19, "{", "veth", "}", None, True, 1500, [], None),
    (20, "}", "veth", "{", None, True, 1500, [], None),
    (21, "é{ü", "veth", "123456789012345", None, True, 1500, [], None),
    (22, "123456789012345", "veth", "é{ü", None, True, 1500, [], None),
    (23, '"veth0', "veth", "veth0\\", None, True, 1500, [], None),
    (24, "veth0\\", "veth", '"veth0', None, True, 1500, [], None),
    (25, "[x]", "veth", "veth1%", None, True, 1500, [], None),
    (26, "veth1%", "veth", "[x]", None, True, 1500, [], None),
    (29, "a},{b", "veth", (30, 2), None, True, 1500, [], None),  # as ip ends a record, then the next one
    (27, "\udcff{\x01", "veth", "\x7f]", None, True, 1500, [], None),  # bytes 0xff and 0x01, not UTF-8
    (28, "\x7f]", "veth", "\udcff{\x01", None, True, 1500, [], None),
]
ROUTES = [("10.9.0.0/16", "10.0.1.254", "veth1"), ("10.8.0.0/16", "10.98.0.254", "veth1{")]


def mac(ifindex: int) -> str:
    return f"02:00:00:00:00:{ifindex:02x}"


def link_json(ifindex, name, kind, peer, master, up, mtu, addresses, alias) -> dict:
    """One link as `ip -j -d addr show` prints it, fields in ip's order."""
    link = {"ifindex": ifindex}
    if isinstance(peer, str):
        link["link"] = peer
    elif peer:
        link["link_index"] = peer[0]
    link["ifname"] = name
    link["flags"] = ["BROADCAST", "MULTICAST", *(["UP", "LOWER_UP"] if up else [])]
    link["mtu"] = mtu
    link["qdisc"] = "noqueue"
    if master:
        link["master"] = master
    link.update({"operstate": "UP" if up else "DOWN", "group": "default", "txqlen": 1000,
                 "link_type": "loopback" if kind == "loopback" else "ether", "address": mac(ifindex),
                 "broadcast": "ff:ff:ff:ff:ff:ff"})
    if isinstance(peer, tuple):
        link["link_netnsid"] = peer[1]
    link.update({"promiscuity": 0, "min_mtu": 68, "max_mtu": 65535})
    if kind == "bridge":
        link["linkinfo"] = {"info_kind": "bridge", "info_data": {"forward_delay": 1500, "bridge_id": "8000.2:0:0:0:0:2",
                                                                 "group_fwd_mask": "0", "hello_timer": 0.0}}
    elif kind != "loopback":
        link["linkinfo"] = {"info_kind": kind}
        if master:
            link["linkinfo"].update({"info_slave_kind": "bridge", "info_slave_data": {
                "state": "forwarding", "priority": 32, "hairpin": False, "id": "0x8001", "root_id": "8000.2:0:0"}})
    link.update({"num_tx_queues": 1, "gso_max_size": 65536})
    if alias:
        link["ifalias"] = alias
    link["addr_info"] = [{"family": "inet", "local": a.split("/")[0], "prefixlen": int(a.split("/")[1]),
                          "scope": "global", "label": name, "valid_life_time": 4294967295} for a in addresses]
    return link


def host_reading() -> str:
    """What `ip -j -d -batch -` prints for `netns list`, `addr show` and `route show table all`."""
    netns = [{"name": n, "id": i} for n, i in NETNS]
    links = [link_json(*spec) for spec in LINKS]
    routes = [{"type": "unicast", "dst": dst, "gateway": via, "dev": dev, "table": "main", "protocol": "boot",
               "flags": []} for dst, via, dev in ROUTES]
    routes.append({"type": "local", "dst": "10.0.0.1", "dev": "br0", "table": "local", "protocol": "kernel",
                   "scope": "host", "prefsrc": "10.0.0.1", "flags": []})
    return "".join(as_ip_prints(part) + "\n" for part in (netns, links, routes))


def expected_facts() -> dict[str, str]:
    """What the reader must say about each link, named as read_as names it."""
    nsid = {i: read_as(n) for n, i in NETNS}
    facts = {"netns/host/": "present"}
    for ifindex, name, kind, peer, master, up, mtu, addresses, _ in LINKS:
        key = "host/" + read_as(name)
        facts.update({
            f"ifindex/{key}": str(ifindex),
            f"iflink/{key}": read_as(peer) if isinstance(peer, str) else str(peer[0]) if peer else "",
            f"mtu/{key}": str(mtu), f"state/{key}": "up" if up else "down", f"oper/{key}": "up" if up else "down",
            f"master/{key}": read_as(master) if master else "none", f"mac/{key}": mac(ifindex),
            f"link/{key}": kind, f"peerns/{key}": nsid[peer[1]] if isinstance(peer, tuple) else "host",
            f"group/{key}": "default"})  # a link's group: the mark of a lab's own links
        if master:
            facts[f"hairpin/{key}"] = "off"
        for address in addresses:
            facts[f"addr/host/{address}"] = read_as(name)
    for dst, via, dev in ROUTES:
        facts[f"route4/host/{dst}"] = f"via {via} dev {read_as(dev)}"
        facts[f"proto/host/{dst}"] = "boot"  # a route's protocol: netgen's (110) marks its own
    facts.update({f"nsid/{read_as(n)}/": str(i) for n, i in NETNS})  # a namespace's id here: the mark of a lab's own
    return facts


def parse(parse_awk, tmp_path, awk: str, facts: bool) -> subprocess.CompletedProcess:
    reading = tmp_path / "read.host"
    reading.write_bytes(host_reading().encode(errors="surrogateescape"))
    return subprocess.run([awk, "-v", "naming=naming", *(["-v", "facts=1"] if facts else []), "-f", str(parse_awk),
                           "ns=host", str(reading)], capture_output=True, check=True, env=C_LOCALE)


@pytest.mark.parametrize("awk", AWKS)
def test_foreign_names_with_any_byte_linux_allows_neither_break_nor_pass_for_lab_objects(parse_awk, tmp_path, awk):
    lines = parse(parse_awk, tmp_path, awk, facts=True).stdout.decode(errors="surrogateescape").split("\n")[:-1]
    facts = dict(line.split("\t", 1) for line in lines)
    read = [line.split("\t")[0] for line in lines if line.startswith("ifindex/")]
    assert len(set(read)) == len(read) == len(LINKS), "two links were read under one name"
    expected = expected_facts()
    # the lab's objects first, for a readable failure: a foreign `veth1{` must not be read as the lab's veth1
    lab_keys = {k for k in expected if k.split("/")[2] in LAB}
    assert {k: facts.get(k) for k in lab_keys} == {k: expected[k] for k in lab_keys}
    assert facts == expected
    # and what that asked for: as read, every link has a name of its own, and no foreign one has a lab name
    names = [read_as(spec[1]) for spec in LINKS]
    assert len(set(names)) == len(LINKS) and LAB.isdisjoint(names[len(LAB):])


@pytest.mark.parametrize("awk", AWKS)
def test_bash_loads_the_same_facts_as_data(parse_awk, tmp_path, awk):
    """up.sh and down.sh load the reader's KEY<tab>VALUE lines into HAVE as data, with the loop of their parse():
    names with quotes, $( ) or backticks stay names, and nothing read from the host is sourced or evaluated."""
    (tmp_path / "parsed").write_bytes(parse(parse_awk, tmp_path, awk, facts=False).stdout)
    script = (REPO / "out" / "veth_pair" / "up.sh").read_text()
    loop = re.search(r"\n  for line in \"\$\{lines\[@\]\}\"; do\n    if \[\[ \$line == count.*?\n  done", script,
                     re.S).group(0)
    dump = subprocess.run(["bash", "-c", 'count() { HAVE[$1]=$((${HAVE[$1]:-0} + 1)); }; declare -A HAVE=(); '
                           + "tab=$'\\t'; mapfile -t lines <\"$1\"" + loop
                           + '; for k in "${!HAVE[@]}"; do printf "%s\\t%s\\0" "$k" "${HAVE[$k]}"; done',
                           "-", str(tmp_path / "parsed")],
                          capture_output=True, check=True, env=C_LOCALE).stdout.decode(errors="surrogateescape")
    facts = dict(item.split("\t", 1) for item in dump.split("\0") if item)
    assert {k: v for k, v in facts.items() if not k.startswith("cross/")} == expected_facts()
    for variant in ("up", "down", "verify"):
        text = (REPO / "out" / "veth_pair" / f"{variant}.sh").read_text()
        assert not re.search(r"^\s*(source|\.|eval)\s", text, re.M), variant
