"""Issue 25, the hosts people have: what the scripts read, as Debian 11, 12 and 13 print it (recorded by
tools/record_hosts.py into tests/data/SUITE/), reads the same; and a lab runs the same on each
(tests/live/test_matrix.py).
No root needed here."""

import re
import subprocess
from pathlib import Path

import pytest
from helpers import REPO

SUITES = ("bullseye", "bookworm", "trixie")
DATA = REPO / "tests" / "data"


def engine_functions(example: str = "docker_nat", script: str = "verify") -> str:
    """A compiled script's text up to the line that runs it: its data and every engine function, to source."""
    text = (REPO / "out" / example / f"{script}.sh").read_text()
    return text[:text.index("# --- which script this is")]


def firewall_report(tmp_path, listing: str) -> list[str]:
    """docker_nat's checks of its nftables table, against `listing` as `nft list table` printed it."""
    (tmp_path / "listing").write_text(listing)
    (tmp_path / "lib.sh").write_text(engine_functions())
    out = subprocess.run(["bash", "-c", f"""set -euo pipefail
        source {tmp_path}/lib.sh
        nft() {{ cat {tmp_path}/listing; }}
        read_firewall
        firewall_checks
        printf '%s\\n' "${{REPORT[@]}}" """], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


@pytest.mark.parametrize("suite", SUITES)
def test_the_nft_listing_of_every_version_is_the_labs_table(tmp_path, suite):
    """nft 1.1.3 (Debian 13) lists the output chain's priority as `dstnat`, 1.0.6 and 0.9.8 as -100: each is the
    lab's chain (verify passes, and a second up takes the table as its own)."""
    listing = (DATA / suite / "nft-table.txt").read_text()
    report = firewall_report(tmp_path, listing)
    assert [line for line in report if not line.startswith("ok ")] == []
    assert len(report) == 1 + 3 + 8  # the table, its chains, its rules


def test_debian_13_names_the_priorities_that_older_nft_gave_as_numbers():
    """What the test above is about: the listings differ in the priorities' words only."""
    chains = {s: re.findall(r"type nat hook (\w+) priority ([^;]+);", (DATA / s / "nft-table.txt").read_text())
              for s in SUITES}
    assert chains["bullseye"] == chains["bookworm"] == [("prerouting", "dstnat"), ("output", "-100"),
                                                        ("postrouting", "srcnat")]
    assert chains["trixie"] == [("prerouting", "dstnat"), ("output", "dstnat"), ("postrouting", "srcnat")]
    rules = {s: [line for line in (DATA / s / "nft-table.txt").read_text().splitlines() if "priority" not in line]
             for s in SUITES}
    assert rules["bullseye"] == rules["bookworm"] == rules["trixie"]


@pytest.mark.parametrize("written, read", [
    ("priority dstnat;", "priority -100;"),
    ("priority srcnat;", "priority 100;"),
    ("priority srcnat + 5;", "priority 105;"),
    ("priority dstnat - 10;", "priority -110;"),
    ("priority filter;", "priority 0;"),
    ("priority -100;", "priority -100;"),
    ("priority 7;", "priority 7;"),
])
def test_a_standard_priority_is_read_as_its_number(tmp_path, written, read):
    listing = ("table inet netgen-docker_nat {\n\tchain output {\n"
               f"\t\ttype nat hook output {written} policy accept;\n\t}}\n}}\n")
    report = firewall_report(tmp_path, listing)
    assert f"FAIL host/nft netgen-docker_nat chain output: want type nat hook output priority -100; policy " \
           f"accept;, have type nat hook output {read} policy accept;" in report or read == "priority -100;"
    if read == "priority -100;":
        assert "ok   host/nft netgen-docker_nat chain output: type nat hook output priority -100; policy accept;" \
               in report


def facts(tmp_path, suite: str) -> dict[str, str]:
    """What the scripts' reader (PARSE_AWK) makes of the host's reading and of the fdb entries of a vxlan, as
    SUITE's ip and bridge printed them; a random MAC (of a veth the lab does not pin) and the link-local address
    made from it read as MAC and LINK-LOCAL."""
    awk = tmp_path / "parse.awk"
    subprocess.run(["bash", "-c", f"""eval "$(sed -n "/^PARSE_AWK='/,/}}'$/p" {REPO}/out/docker0/verify.sh)"
                    printf '%s\\n' "$PARSE_AWK" >{awk}"""], check=True)
    out = subprocess.run(["awk", "-v", "naming=1", "-f", str(awk), "ns=host", str(DATA / suite / "ip-batch-json.txt"),
                          "ns=vx", str(DATA / suite / "bridge-fdb.json")],
                         capture_output=True, text=True, env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    found = {}
    for line in out.stdout.splitlines():
        key, value = line.split("\t", 1)
        if key.startswith("mac/host/veth-"):
            value = "MAC"
        key = re.sub(r"^addr/host/fe80:[0-9a-f:]+/64$", "addr/host/LINK-LOCAL/64/" + value, key)
        found[key] = value
    return found


def test_the_reader_reads_every_versions_ip_json_alike(tmp_path):
    """iproute2 5.10, 6.1 and 6.15 add keys to their JSON (6.15: allmulti, gso_ipv4_max_size...), and the reader
    takes what the scripts check from each the same way."""
    read = {suite: facts(tmp_path, suite) for suite in SUITES}
    assert read["bullseye"] == read["bookworm"] == read["trixie"]
    host = read["trixie"]
    assert host["link/host/docker0"] == "bridge" and host["master/host/veth-nginx-1"] == "docker0"
    assert host["addr/host/fd00:17::1/64"] == "docker0" and host["hairpin/host/veth-nginx-2"] == "on"
    assert host["fdb/vx/vx0/02:00:00:00:00:43/192.0.2.3"] == "self permanent"
    assert host["netns/host/"] == "present" and "mac/host/docker0" in host


def test_each_release_was_recorded_with_the_versions_the_manual_lists():
    """The table of "Hosts it was tried on" names the versions recorded in tests/data/SUITE/versions.txt."""
    from readme import section

    hosts = section("Hosts it was tried on")
    for suite in SUITES:
        versions = dict(line.split(" ", 1) for line in (DATA / suite / "versions.txt").read_text().splitlines()
                        if re.match(r"^(bash|iproute2|nftables|util-linux) ", line))
        for package, version in versions.items():
            upstream = re.match(r"^[0-9.]+", version.split(":")[-1]).group(0).rstrip(".")
            assert f"{package} {upstream}" in hosts, (suite, package, upstream)


# --- the roots (tests/roots.py): the machine's mirror, and a build that a killed run cannot leave looking done -------


def test_the_mirror_is_read_from_one_line_and_deb822_sources(tmp_path):
    import roots

    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text("# deb http://old.example/debian bookworm main\n"
                                      "deb [arch=amd64 signed-by=/k.gpg] https://packages.cloud.example/apt cloud-sdk main\n")  # noqa: E501
    (etc / "sources.list.d" / "other.list.disabled").write_text("deb http://no.example/debian bookworm main\n")
    (etc / "sources.list.d" / "a.sources").write_text(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n")
    assert roots.mirror(str(etc)) == "http://mirror.example/debian"
    (etc / "sources.list").write_text("deb http://one.example/debian trixie main contrib\n")
    assert roots.mirror(str(etc)) == "http://one.example/debian"  # sources.list is read first, as apt lists it
    (etc / "sources.list").write_text("")
    (etc / "sources.list.d" / "a.sources").write_text("Types: deb\nURIs: http://x.example/s\nSuites: bookworm-security\n")  # noqa: E501
    with pytest.raises(RuntimeError, match="no Debian mirror"):
        roots.mirror(str(etc))


def test_a_root_is_done_only_once_renamed_and_a_killed_builds_leftover_goes(tmp_path, monkeypatch):
    import roots

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(roots.shutil, "which", lambda name: "/usr/sbin/" + name)
    monkeypatch.setattr(roots, "mirror", lambda: "http://mirror.example/debian")
    cache = tmp_path / "netgen" / "roots"
    calls = []
    run = subprocess.run

    def debootstrap(argv, **kw):  # what `unshare ... debootstrap ... SUITE TARGET MIRROR` does, and how it ends
        if argv[0] != "unshare":
            return run(argv, **kw)  # rm
        calls.append(argv)
        target = Path(argv[-2])
        (target / "etc").mkdir(parents=True)
        (target / "bin").mkdir()
        if killed:
            raise KeyboardInterrupt  # the run is killed half way
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(roots.subprocess, "run", debootstrap)
    killed = True
    with pytest.raises(KeyboardInterrupt):
        roots.root("trixie")
    assert roots.built("trixie") is None and not (cache / "trixie").exists()  # half a root is not a root
    assert [p.name[:8] for p in cache.glob(".trixie.*")] == [".trixie."]
    killed = False
    done = roots.root("trixie")
    assert done == cache / "trixie" and roots.built("trixie") == done
    assert list(cache.glob(".trixie.*")) == []  # the leftover went
    assert (done / "etc" / "hosts").read_text() == "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    assert calls[-1][:5] == ["unshare", "--mount", "--propagation", "private", "debootstrap"]
    assert calls[-1][-3:] == ["trixie", calls[-1][-2], "http://mirror.example/debian"]
    assert roots.root("trixie") == done and len(calls) == 2  # cached
    assert roots.built("trixie", packages=("iproute2",)) is None  # other packages: built again
