"""The plain style: the same plan as one `ip` command per line, as the articles write it.

Learners read these scripts, and the benchmark compares them with the batched ones: same lab, same objects in the
same order, only the batching (and the conflict checks and rollback of the batched up.sh) differ. Each function
returns (comment, command) pairs; the command words are already shell-quoted.
"""

from __future__ import annotations

from .model import HOST
from .nat import Firewall
from .plan import Plan, Step, V
from .render import shell_quote, words


def _ip(ns: str, command: tuple[str, ...]) -> str:
    """The command for `ip`, or for `bridge` when its words are a forwarding entry's (plan: they start with fdb)."""
    tool = "bridge " if command[0] == "fdb" else "ip "
    return tool + ("" if ns == HOST else f"-n {shell_quote(ns)} ") + words(command)


def _sysctl(ns: str, key: str, value: str | None = None) -> str:
    inner = f"sysctl -qw {shell_quote(f'{key}={value}')}" if value is not None else f"sysctl -n {shell_quote(key)}"
    return inner if ns == HOST else f"ip netns exec {shell_quote(ns)} {inner}"


# Host sysctls: the value each had before the lab first changed it, in the record the batched scripts keep too.
_STATE = 'STATE="${NETGEN_STATE_DIR:-/run/netgen}/$LAB.sysctl"'


def _record(key: str) -> str:
    k = shell_quote(key)
    return (f"mkdir -p \"${{STATE%/*}}\" && {{ grep -qs {shell_quote('^' + key + '=')} \"$STATE\" || "
            f"echo {k}=\"$(sysctl -n {k})\" >>\"$STATE\"; }}")


def _note(step: Step) -> str:
    return f"{step.what} ({step.loc})"


def _nft(words: str) -> str:
    return f"nft {words}"


def _firewall(fw: Firewall) -> list[tuple[str, str]]:
    """The lab's nftables table, one nft command per table, chain and rule."""
    table = f"inet {shell_quote(fw.table)}"
    lines = [(f"nftables table inet {fw.table}: the NAT rules of the lab", _nft(f"add table {table}"))]
    lines += [(f"chain {name}", _nft(f"add chain {table} {name} {shell_quote('{ ' + spec + ' }')}"))
              for name, spec in fw.chains]
    lines += [(f"{r.what} ({r.loc})", _nft(f"add rule {table} {r.chain} {shell_quote(r.text)}")) for r in fw.rules]
    return lines


def up(plan: Plan) -> list[tuple[str, str]]:
    lines = [("where host sysctls are recorded", _STATE)] if HOST in plan.sysctls else []
    for section in plan.sections:
        for step in section.steps:
            if step.expect or not step.do:
                continue  # external objects are used as they are; a veth's far end comes with its pair
            if step.check[0] == "sysctl":
                if section.ns == HOST:
                    lines.append((f"record {step.check[2]} for down.sh", _record(step.check[2])))
                lines.append((_note(step), _sysctl(section.ns, step.check[2], step.check[3])))
            else:
                lines.append((_note(step), _ip(section.ns, step.do)))
        if section.ns == HOST and not section.last and plan.firewall is not None:
            lines += _firewall(plan.firewall)
    for service in plan.services:  # detached, in /, output to its log; plain down ends it with its namespace
        ns, name, *command = service.words
        log = f'"${{NETGEN_STATE_DIR:-/run/netgen}}/$LAB."{shell_quote(f"{ns}.{name}.log")}'
        lines.append((f"{service.what} ({service.loc})",
                      f"mkdir -p \"${{NETGEN_STATE_DIR:-/run/netgen}}\" && (cd / && exec ip netns exec "
                      f"{shell_quote(ns)} setsid {words(tuple(command))} </dev/null >>{log} 2>&1 &)"))
    return lines


def down(plan: Plan) -> list[tuple[str, str]]:
    """Reverse order; a veth with its far end in a lab namespace goes with the namespace, and down waits for it.
    First the processes still running in the lab's namespaces are ended (a namespace with a process in it outlives
    `ip netns del`, and its veths with it)."""
    lines, waits = [], []
    namespaces = [step.check[1] for step in plan.teardowns if step.check[0] == "netns"]
    if namespaces:
        lines.append(("the processes running now, and the namespace each runs in", "read_processes"))
        lines += [(f"processes still running in namespace {ns}: TERM", f"stop_processes {shell_quote(ns)}")
                  for ns in namespaces]
        lines.append(("those still there after 5 s: KILL", "end_processes"))
    if plan.firewall is not None:
        lines.append((f"the nftables table inet {plan.firewall.table}",
                      _nft(f"delete table inet {shell_quote(plan.firewall.table)}") + " 2>/dev/null || true"))
    for step in plan.teardowns:
        if step.gone_with:
            waits.append((f"{step.what}: goes with namespace {step.gone_with}",
                          f"wait_gone {shell_quote(step.check[2])} {shell_quote(step.gone_with)}"))
        else:
            lines.append((_note(step), _ip(HOST, step.teardown) + " 2>/dev/null || true"))
    if HOST in plan.sysctls:
        lines += [("host sysctls back to what they were before up", _STATE),
                  ("(recorded by up.sh)", 'if [[ -f $STATE ]]; then while IFS="=" read -r key value; do '
                   'sysctl -qw "$key=$value"; done <"$STATE" && rm -f "$STATE"; fi')]
    return lines + waits


def _check(step: Step) -> tuple[str, str, str] | None:
    """(what, text, command) for one check; the command's output must contain the text."""
    attr, ns, obj, want = step.check
    show = ("link", "show", "dev", V(obj))
    if attr == "netns":
        return f"{ns} netns", ("lo:"), _ip(ns, ("link", "show", "lo"))
    if attr == "link":
        return f"{ns}/{obj} kind {want}", (f" {want} "), _ip(ns, ("-d",) + show)
    if attr == "state":
        return f"{ns}/{obj} state {want}", f": {obj}", _ip(ns, show + ("up",))  # shown only when up
    if attr == "oper":
        return f"{ns}/{obj} carrier", "LOWER_UP", _ip(ns, show)
    if attr == "master":
        return f"{ns}/{obj} master {want}", (f" master {want} "), _ip(ns, show)
    if attr == "mtu":
        return f"{ns}/{obj} mtu {want}", (f" mtu {want} "), _ip(ns, show)
    if attr == "hairpin":
        return f"{ns}/{obj} hairpin {want}", f" hairpin {want} ", _ip(ns, ("-d",) + show)
    if attr == "mac":
        return f"{ns}/{obj} mac {want}", (f" {want} "), _ip(ns, show)
    if attr == "addr":
        return f"{ns}/{want} address {obj}", (f" {obj} "), _ip(ns, ("addr", "show", "dev", V(want)))
    if attr in ("route4", "route6"):
        family = ("-6",) if attr == "route6" else ()
        return f"{ns} route {obj} {want}", (f"{obj} {want}"), _ip(ns, family + ("route", "show", V(obj)))
    if attr == "vxlan":  # what ip shows runs on past `dev` before the port: the batched verify checks it all
        return f"{ns}/{obj} vxlan {want}", want[:want.index(" dstport ") + 1], _ip(ns, ("-d",) + show)
    if attr == "neigh":
        dev, address = obj.split("/", 1)
        mac = want.split()[1]
        return f"{ns} neighbour {address} on {dev}", f"{address} lladdr {mac} PERMANENT", \
            _ip(ns, ("neigh", "show", "dev", V(dev)))
    if attr == "fdb":
        dev, mac, dst = obj.split("/")
        return f"{ns} fdb {mac} on {dev} to {dst}", f"{mac} dst {dst} {want}", \
            _ip(ns, ("fdb", "show", "dev", V(dev)))
    if attr == "peer":
        pns, pname = want.split("/", 1)
        where = f"@{pname}:" if pns == ns else " link-netnsid " if pns == HOST else f" link-netns {pns}"
        return f"{ns}/{obj} peer {want}", (where), _ip(ns, show)
    if attr == "sysctl":
        return f"{ns} sysctl {obj}", want, _sysctl(ns, obj)
    return None


def verify(plan: Plan) -> list[tuple[str, str, str]]:
    """(comment, text, command) for every check of the batched verify.sh, one ip process each."""
    out = []
    for step in [s for section in plan.sections for s in section.steps] + list(plan.checks):
        check = _check(step)
        if check is not None:
            out.append((f"{check[0]} ({step.loc})", shell_quote(check[1]), check[2]))
    if plan.firewall is not None:
        listing = _nft(f"list table inet {shell_quote(plan.firewall.table)}")
        out += [(f"nftables {r.chain} rule: {r.what} ({r.loc})", shell_quote(r.text), listing)
                for r in plan.firewall.rules]
    return out


def absent(plan: Plan) -> list[tuple[str, str]]:
    """(comment, command) for each thing verify --absent wants gone (the batched verify's list): gone when the
    command that would show it fails."""
    out = []
    for step in plan.made:
        attr, ns, obj = step.check[:3]
        if attr == "netns":
            out.append((f"{ns} netns absent ({step.loc})", _ip(ns, ("link", "show", "lo"))))
        else:
            out.append((f"{ns}/{obj} {attr} absent ({step.loc})", _ip(ns, ("link", "show", "dev", V(obj)))))
    if plan.firewall is not None:
        out.append((f"host/nft {plan.firewall.table} table absent",
                    _nft(f"list table inet {shell_quote(plan.firewall.table)}")))
    return out
