"""The only place that decides order. Reads a validated model; produces sections of steps.

A section is the work one `ip -batch` process does in one namespace: the host's first (it makes the namespaces
and every veth pair), then the namespaces', which need nothing from each other. A step knows what it checks (an
attribute of an object and the value the lab wants), the `ip -batch` words that make it so, and the words that
undo them. up.sh runs the steps, down.sh the host's teardowns in reverse and verify.sh the checks, so the three
scripts agree by construction.

Forwarding entries of vxlan devices are made by iproute2's `bridge` command: their words start with `fdb`, as
`bridge -batch` takes them, and they are the last steps of their section, so they can go to one `bridge -batch`
after the section's `ip -batch` has made their devices.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import cache, cached_property
from typing import NamedTuple

from . import nat, pools
from .model import HOST, Fdb, Interface, Lab, Loc, Neighbour, Route
from .validate import ipv4_host, parse_address, parse_interface  # parsed once, by validate, for both


class V(str):
    """A user value among the words of a command: the scripts show it shell-quoted; keywords stay bare."""

    __slots__ = ()


# One V per value: a name or address is in many steps (a 10,000-namespace lab makes 200,000 of them otherwise).
# build() empties it first, so it holds the values of the last lab built.
_v = cache(V)


class Step(NamedTuple):  # a tuple, not a dataclass: a 10,000-namespace lab makes 90,000 of them
    what: str  # a comment for the reader of the script
    loc: Loc
    check: tuple[str, ...]  # ATTR NS OBJECT WANT, as read by the scripts' `step` and `check` (V: user values)
    do: tuple[str, ...] = ()  # empty: another step makes it (the far end of a veth pair)
    undo: tuple[str, ...] = ()
    teardown: tuple[str, ...] = ()  # what down runs to remove the object, if down removes it
    expect: bool = False  # must already hold: an external object, which up never changes
    gone_with: str = ""  # the lab namespace whose deletion removes this object (a veth with its far end there)

    @property
    def owner(self) -> str:
        """The namespace where the object lives, so where its undo and teardown run (a namespace's is the host)."""
        return HOST if self.check[0] == "netns" else self.check[1]

    @property
    def made(self) -> bool:
        """A namespace or link up creates (and verify --absent expects gone after down)."""
        return bool(self.do) and self.check[0] in ("netns", "link")


@dataclass(frozen=True)
class Section:
    ns: str  # where the batch runs
    steps: tuple[Step, ...]
    last: bool = False  # the host's second batch, run once the namespaces' batches are done


@dataclass(frozen=True)
class Probe:
    """A declared expectation, checked by verify from namespace `ns`."""

    what: str
    loc: Loc
    ns: str
    target: str
    port: str  # "" for ICMP
    reach: bool


class Service(NamedTuple):
    """A process up starts in namespace `ns` once the namespaces are built: `words` are the scripts' arguments of
    `service`, NS NAME COMMAND... (a string command as `sh -c` and its text)."""

    what: str
    loc: Loc
    words: tuple[str, ...]


def _service(s) -> Service:
    command = ("sh", "-c", _v(s.command)) if isinstance(s.command, str) else tuple(map(_v, s.command))
    return Service(f"{s.ns}: service {s.name}", s.loc, (_v(s.ns), _v(s.name), *command))


class Readiness(NamedTuple):
    """What up checks of a service beyond its running: before any change, that its program is on the host; once
    built, that it answers on `ports` (ADDRESS:PORT, an IPv6 address in brackets), the TCP ports the lab's
    expectations name on its namespace's addresses. The scripts' SERVICES: NS NAME PROGRAM LOC PORTS."""

    ns: str
    name: str
    program: str
    loc: str
    ports: str  # space-separated


# Words that sh runs itself: a string command starting with one runs no program of the host's (`exit 3`)
_SH_OWN = frozenset("! { } ( ) : . [ alias bg break case cd command continue do done echo elif else esac eval exit "
                    "export false fg fi for getopts hash if jobs kill local printf pwd read readonly return set "
                    "shift test then times trap true type ulimit umask unalias unset until wait while".split())


def program(command: object) -> str:
    """The program a service's command runs: a list's first word; in a string (run by `sh -c`), its first word
    after `exec` and variable assignments, when that is a plain word and not sh's own; else sh."""
    if not isinstance(command, str):
        return command[0]
    words = command.split()
    while words and (words[0] == "exec" or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0])):
        words.pop(0)
    if words and re.fullmatch(r"[A-Za-z0-9_./+-]+", words[0]) and words[0] not in _SH_OWN:
        return words[0]
    return "sh"


def _readiness(lab: Lab) -> tuple[Readiness, ...]:
    """Each service's program and the ports up waits for: those of the TCP expectations that must reach an address
    of the service's namespace (the lab's own, and with nodes, those of the other nodes aimed here: `answers`)."""
    where = {}  # each address of the lab's interfaces, and its namespace
    for iface in lab.interfaces:
        for a in iface.addresses:
            where.setdefault(parse_interface(a.cidr).ip, iface.ns)
    ports: dict[str, list[str]] = {}
    for e in (*lab.expectations, *lab.answers):
        if not e.reach or e.tcp is None:
            continue
        try:
            target = ipaddress.ip_address(e.target)
        except ValueError:
            continue  # a namespace of another node, named by that node's own expectation
        if target in where:
            spot = nat.destination(str(target), e.tcp)
            if spot not in ports.setdefault(where[target], []):
                ports[where[target]].append(spot)
    return tuple(Readiness(s.ns, s.name, program(s.command), str(s.loc), " ".join(ports.get(s.ns, ())))
                 for s in lab.services)


class Adoption(NamedTuple):
    """An object the lab may take over (adopt=True), and what it may already carry: anything else refuses it."""

    key: str  # as the scripts' record names it: netns/NS/ or link/host/BRIDGE
    links: tuple[str, ...]  # links it may hold (a namespace) or ports it may have (a bridge)
    addresses: tuple[str, ...]
    routes: tuple[str, ...]  # route destinations, as ip shows them


@dataclass(frozen=True)
class Plan:
    lab: Lab
    version: str
    namespaces: tuple[str, ...]  # the lab's own, in order; the host is not among them
    sysctls: dict[str, tuple[str, ...]]  # the sysctl keys the lab sets, per namespace (snapshots read them)
    sections: tuple[Section, ...]
    probes: tuple[Probe, ...]
    summary: tuple[str, ...]
    firewall: nat.Firewall | None = None  # the lab's nftables table, made after the host's batch
    external: tuple[str, ...] = ()  # namespaces that exist before up, which the lab uses and never removes
    adoptions: tuple[Adoption, ...] = ()
    services: tuple[Service, ...] = ()  # started after the namespaces' batches, before up's last check
    readiness: tuple[Readiness, ...] = ()  # per service: its program, and the ports up's last check waits for

    @property
    def teardowns(self) -> tuple[Step, ...]:
        """What down removes, newest first. All of it is in the host: deleting a namespace removes what is inside
        it, so down never enters one."""
        return tuple(step for section in reversed(self.sections) for step in reversed(section.steps)
                     if step.teardown)

    # verify's checks beyond the steps, made when first asked for (only verify.sh lists them: a 10,000-namespace
    # lab has 40,000 of them) and split here once rather than tested over in the templates
    @cached_property
    def checks(self) -> tuple[Step, ...]:
        """What verify checks beyond the steps: veth peers and carrier."""
        return _checks(self.lab)

    @property
    def host_carriers(self) -> tuple[Step, ...]:
        """The checks of the carrier of the host's links (up.sh finds the same from its steps as they run)."""
        return tuple(s for s in _checks(self.lab, (HOST,), peers=False) if s.check[0] == "oper")

    @property
    def structure(self) -> tuple[Step, ...]:
        """The other checks beyond the steps: carrier in the namespaces, and veth ends paired with each other."""
        return tuple(s for s in self.checks if not (s.check[0] == "oper" and s.check[1] == HOST))

    @property
    def made(self) -> tuple[Step, ...]:
        """The steps that make a namespace or link, in order: what verify --absent expects gone after down."""
        return tuple(s for section in self.sections for s in section.steps if s.made)

    @property
    def fdb_namespaces(self) -> tuple[str, ...]:
        """Namespaces where the lab sets bridge forwarding entries: the scripts read them there too."""
        return tuple(dict.fromkeys(s.check[1] for section in self.sections for s in section.steps
                                   if s.check[0] == "fdb"))


def _route_dest(dest: str) -> tuple[str, str, int]:
    """(as `ip route show` prints it, as `ip route add` takes it, family)."""
    if dest == "default":
        return "default", "default", 4
    net = ipaddress.ip_network(dest)
    if net.prefixlen == 0:  # 0.0.0.0/0 and ::/0 are what ip shows as default
        return "default", str(net), net.version
    shown = str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)
    return shown, str(net), net.version


def _gateway_dev(lab_ifaces: list[Interface], gateway) -> str:
    for iface in lab_ifaces:
        for addr in iface.addresses:
            if gateway in parse_interface(addr.cidr).network:
                return iface.name
    raise AssertionError(f"validate lets no gateway off-link: {gateway}")


def _link_steps(iface: Interface) -> list[Step]:
    """Settings of one interface, after it exists: mtu, mac, bridge master, up, addresses."""
    ns, name, loc, ref = _v(iface.ns), _v(iface.name), iface.loc, iface.ref
    out = []
    if iface.mtu is not None:
        mtu = _v(iface.mtu)
        out.append(Step(f"{ref}: mtu {mtu}", loc, ("mtu", ns, name, mtu),
                        ("link", "set", "dev", name, "mtu", mtu)))
    if iface.mac is not None:
        mac = _v(iface.mac.lower())
        out.append(Step(f"{ref}: mac {mac}", loc, ("mac", ns, name, mac),
                        ("link", "set", "dev", name, "address", mac)))
    if iface.master is not None:
        master = _v(iface.master)
        out.append(Step(f"{ref}: port of bridge {master}", loc, ("master", ns, name, master),
                        ("link", "set", "dev", name, "master", master),
                        ("link", "set", "dev", name, "nomaster")))
    if iface.hairpin:
        out.append(Step(f"{ref}: hairpin on (frames may go back out of this port)", loc,
                        ("hairpin", ns, name, "on"), ("link", "set", "dev", name, "type", "bridge_slave", "hairpin",
                                                      "on")))
    if iface.external:
        out.append(Step(f"{ref}: up (external)", loc, ("state", ns, name, "up"), expect=True))
    else:
        out.append(Step(f"{ref}: up", loc, ("state", ns, name, "up"), ("link", "set", "dev", name, "up")))
    for addr in iface.addresses:
        cidr = _v(addr.cidr if ipv4_host(addr.cidr) else parse_interface(addr.cidr))  # as ip shows it
        note = f" ({addr.note})" if addr.note else ""
        if iface.external:
            out.append(Step(f"{ref}: address {cidr} (external)", addr.loc, ("addr", ns, cidr, name),
                            expect=True))
        else:
            nodad = ("nodad",) if iface.nodad is True and ":" in cidr else ()
            out.append(Step(f"{ref}: address {cidr}{note}", addr.loc, ("addr", ns, cidr, name),
                            ("addr", "add", cidr, "dev", name) + nodad, ("addr", "del", cidr, "dev", name)))
    return out


# Ifindexes count from 1 in each namespace, so the ends of veths between namespaces look alike (2 to 2, say):
# up gives each such end an ifindex of its own, from here up, and verify tells pairs apart by ifindex and iflink
# without naming every peer's namespace (which costs a look at every namespace, from each one).
PINNED_IFINDEX = 1_000_000


def _veth_made(iface: Interface, pns: str, pname: str, index: int | None) -> Step:
    """The host's step that makes a veth pair, with each end straight in its namespace: so no namespace's batch
    waits for another's. `index`: the ifindex of this end, and index + 1 that of its peer, or None."""
    ns, name = _v(iface.ns), _v(iface.name)
    near, far = (("index", _v(index)), ("index", _v(index + 1))) if index is not None else ((), ())
    words = ("link", "add", "name", name, *near) + (("netns", ns) if iface.ns != HOST else ())
    words += ("type", "veth", "peer", "name", _v(pname), *far) + (("netns", _v(pns)) if pns != HOST else ())
    # Deleting a veth waits for the kernel (about 25 ms each); deleting its far end's namespace removes it in
    # one batch with the namespace, and down waits for it to vanish from the host. A pair with no end in the host
    # goes with its namespaces, like everything inside them.
    gone_with = pns if iface.ns == HOST and pns != HOST else ""
    teardown = ("link", "del", "dev", name) if iface.ns == HOST else ()
    pins = f", ifindexes {index} and {index + 1}" if index is not None else ""
    return Step(f"veth pair {iface.ref} <-> {pns}/{pname}{pins}", iface.loc, ("link", ns, name, "veth"), words,
                ("link", "del", "dev", name), teardown, gone_with=gone_with)


def _veth_end(iface: Interface, pns: str, pname: str) -> Step:
    """In the end's own section, for the end the host's step does not name first: that it exists as a veth."""
    return Step(f"{iface.ref}: veth, made with its peer {pns}/{pname}", iface.loc,
                ("link", _v(iface.ns), _v(iface.name), "veth"))


def _veth_peer(iface: Interface, pns: str, pname: str) -> Step:
    """verify's check that the end's peer is the other end."""
    return Step(f"{iface.ref}: peer is {pns}/{pname}", iface.loc,
                ("peer", _v(iface.ns), _v(iface.name), _v(f"{pns}/{pname}")))


def _interfaces_by_ns(lab: Lab, namespaces) -> dict[str, list[Interface]]:
    """The lab's interfaces in each of `namespaces`, in the order the lab made them."""
    by_ns: dict[str, list[Interface]] = {ns: [] for ns in namespaces}
    for iface in lab.interfaces:
        if iface.ns in by_ns:
            by_ns[iface.ns].append(iface)
    return by_ns


def _other_ends(lab: Lab) -> dict[tuple[str, str], tuple[str, str]]:
    """Each veth end's (namespace, name) to its peer's."""
    ends = {}
    for v in lab.veths:
        ends[v.a], ends[v.b] = v.b, v.a
    return ends


def _bridges_first(ifaces: list[Interface]) -> list[Interface]:
    """A namespace's interfaces in the order its section takes them: bridges first, as their ports need them."""
    return sorted(ifaces, key=lambda i: i.kind != "bridge")


def _checks(lab: Lab, namespaces: tuple[str, ...] | None = None, peers: bool = True) -> tuple[Step, ...]:
    """verify's checks beyond the steps, namespace by namespace in plan order (or only `namespaces`): the peer of
    each veth end (unless not `peers`), then the carrier of each veth end and of each bridge with ports."""
    order = namespaces or (HOST, *(n.name for n in lab.namespaces))
    by_ns = _interfaces_by_ns(lab, order)
    other_end = _other_ends(lab) if peers else {}
    with_ports = {(i.ns, i.master) for i in lab.interfaces if i.master is not None}
    out = []
    for ns in order:
        ifaces = _bridges_first(by_ns[ns])
        if peers:
            out += [_veth_peer(i, *other_end[(i.ns, i.name)]) for i in ifaces if i.kind == "veth"]
        out += [Step(f"{i.ref}: carrier", i.loc, ("oper", _v(ns), _v(i.name), "up"))
                for i in ifaces if i.kind == "veth" or (ns, i.name) in with_ports]
    return tuple(out)


def _route_step(r: Route, ifaces: list[Interface]) -> Step:
    """A route. Its check is as ip shows the route (an onlink route's flag aside: ip takes such a gateway only with
    it). Down removes a route of the host over a device the lab never removes (a node's underlay device); any
    other goes with its device."""
    shown, dest, family = _route_dest(r.dest)
    gateway = parse_address(r.via) if r.via is not None else None
    if r.dest == "default" and (r.family == 6 or gateway is not None and gateway.version == 6):
        dest, family = "::/0", 6
    dev = r.dev or _gateway_dev(ifaces, gateway)
    route = (("via", _v(gateway)) if gateway is not None else ()) + ("dev", _v(dev))
    text = " ".join(route)
    onlink = ("onlink",) if r.onlink else ()
    undo = ("route", "del", _v(dest), *route)
    stays = r.ns == HOST and any(i.name == dev and i.external for i in ifaces)
    return Step(f"{r.ns}: route {shown} {text}" + " onlink" * r.onlink, r.loc,
                (f"route{family}", _v(r.ns), _v(shown), _v(text)), ("route", "add", _v(dest), *route, *onlink),
                undo, undo if stays else ())


def _vxlan_steps(iface: Interface) -> list[Step]:
    """A vxlan device: made with what the kernel takes only at creation (VNI, local address, underlay device, UDP
    port, learning), checked as one attribute."""
    ns, name, x = _v(iface.ns), _v(iface.name), iface.vxlan
    learning = "learning" if x.learning else "nolearning"
    how = ("id", _v(x.vni), "local", _v(x.local), "dev", _v(x.dev), "dstport", _v(x.port), learning)
    delete = ("link", "del", "dev", name)
    return [Step(f"vxlan device {iface.ref}: VNI {x.vni}, UDP port {x.port}, from {x.local} on {x.dev}", iface.loc,
                 ("link", ns, name, "vxlan"), ("link", "add", "name", name, "type", "vxlan", *how), delete,
                 delete if iface.ns == HOST else ()),
            Step(f"{iface.ref}: made as vxlan {' '.join(how)}", iface.loc, ("vxlan", ns, name, _v(" ".join(how))))]


def _neighbour_step(n: Neighbour) -> Step:
    """A permanent neighbour entry; it goes with its device."""
    ns, dev, address, mac = _v(n.ns), _v(n.dev), _v(parse_address(n.address)), _v(n.mac.lower())
    return Step(f"{n.ns}: neighbour {address} on {dev} is {mac}, permanent", n.loc,
                ("neigh", ns, _v(f"{dev}/{address}"), _v(f"lladdr {mac} nud permanent")),
                ("neigh", "replace", address, "lladdr", mac, "dev", dev, "nud", "permanent"),
                ("neigh", "del", address, "dev", dev))


def _fdb_step(f: Fdb) -> Step:
    """A permanent forwarding entry of a vxlan device (`bridge` words); it goes with its device."""
    ns, dev, mac, dst = _v(f.ns), _v(f.dev), _v(f.mac.lower()), _v(parse_address(f.dst))
    what = f"{f.ns}: {dev} floods to {dst}" if f.append else f"{f.ns}: frames for {mac} on {dev} go to {dst}"
    return Step(what, f.loc, ("fdb", ns, _v(f"{dev}/{mac}/{dst}"), _v("self permanent")),  # V: one quoted word
                ("fdb", "append" if f.append else "replace", mac, "dev", dev, "dst", dst, "self", "permanent"),
                ("fdb", "del", mac, "dev", dev, "dst", dst, "self"))


def build(lab: Lab, version: str) -> Plan:
    """Order the lab into per-namespace sections. The lab must have passed validation, and have no nodes (each
    node's lab from nodes.split is built on its own)."""
    assert not lab.nodes, "a lab with nodes is built node by node (nodes.split)"
    _v.cache_clear()
    lab = pools.resolve(lab)
    order = [HOST] + [ns.name for ns in lab.namespaces]
    rank = {ns: i for i, ns in enumerate(order)}
    by_ns = _interfaces_by_ns(lab, order)
    peers = _other_ends(lab)
    routes_by_ns: dict[str, list[Route]] = {ns: [] for ns in order}
    for r in lab.routes:
        routes_by_ns[r.ns].append(r)
    # The host's section makes every veth pair, after the namespaces. `near` is the end named first in the
    # command (the host's end, if there is one, else the end in the namespace that comes first).
    near: dict[tuple[str, str], tuple[str, str]] = {}
    for v in lab.veths:
        a, b = (v.a, v.b) if rank[v.a[0]] <= rank[v.b[0]] else (v.b, v.a)
        near[a] = b
    between = [a for a, b in near.items() if a[0] != HOST and b[0] != a[0]]  # veths between two lab namespaces
    pinned = {a: PINNED_IFINDEX + 2 * k for k, a in enumerate(between)}
    iface_of = {(i.ns, i.name): i for i in lab.interfaces}

    sections = []
    for ns in order:
        if ns == HOST:
            steps = [_netns_step(n) for n in lab.namespaces]
            steps += [_veth_made(iface_of[a], *b, pinned.get(a)) for a, b in near.items() if a[0] != HOST]
        elif lab.namespaces[rank[ns] - 1].external:
            steps = []  # the lab never changes it: its lo is as its owner left it
        else:
            steps = [Step(f"{ns}/lo: up", lab.namespaces[rank[ns] - 1].loc, ("state", _v(ns), "lo", "up"),
                          ("link", "set", "dev", "lo", "up"))]
        ifaces = _bridges_first(by_ns[ns])
        for iface in ifaces:
            if iface.kind == "device":
                continue  # a node's underlay device, there before the lab: its state and address are checked
            if iface.kind == "vxlan":
                steps += _vxlan_steps(iface)
            elif iface.external:
                steps.append(Step(f"bridge {iface.ref} (external: exists before up, stays after down)", iface.loc,
                                  ("link", _v(ns), _v(iface.name), "bridge"), expect=True))
            elif iface.kind == "bridge":
                name = _v(iface.name)
                steps.append(Step(f"bridge {iface.ref}", iface.loc, ("link", _v(ns), name, "bridge"),
                                  ("link", "add", "name", name, "type", "bridge"), ("link", "del", "dev", name),
                                  ("link", "del", "dev", name) if ns == HOST else ()))
            else:
                key = (iface.ns, iface.name)
                if ns == HOST and key in near:
                    steps.append(_veth_made(iface, *near[key], None))
                elif key not in near:  # the host's step checks the end it names first
                    steps.append(_veth_end(iface, *peers[key]))
        for iface in ifaces:
            steps += _link_steps(iface)
        steps += [_neighbour_step(n) for n in lab.neighbours if n.ns == ns]
        steps += [_route_step(r, by_ns[ns]) for r in routes_by_ns[ns]]
        steps += [Step(f"{ns}: sysctl {s.key} = {s.value}" + (" (down restores the old value)" if ns == HOST else ""),
                       s.loc, ("sysctl", _v(ns), _v(s.key), _v(s.value)), ("sysctl", _v(s.key), _v(s.value)))
                  for s in lab.sysctls if s.ns == ns]
        steps += [_fdb_step(f) for f in lab.fdbs if f.ns == ns]
        if ns == HOST:
            steps, last = _host_last(steps, ifaces)
        if steps:
            sections.append(Section(ns, tuple(steps)))

    if last:
        sections.append(Section(HOST, tuple(last), last=True))

    probes = tuple(
        Probe(f"{e.ns} {'reaches' if e.reach else 'must not reach'} {e.target}"
              + (f" on tcp/{e.tcp}" if e.tcp is not None else ""),
              e.loc, e.ns, str(parse_address(e.target)), "" if e.tcp is None else str(e.tcp), e.reach)
        for e in lab.expectations)
    sysctls: dict[str, tuple[str, ...]] = {}
    for s in lab.sysctls:
        sysctls[s.ns] = sysctls.get(s.ns, ()) + (s.key,)
    return Plan(lab, version, tuple(ns.name for ns in lab.namespaces), sysctls, tuple(sections),
                probes, summary(lab), nat.firewall(lab), tuple(n.name for n in lab.namespaces if n.external),
                _adoptions(lab, by_ns, routes_by_ns), tuple(map(_service, lab.services)), _readiness(lab))


def _netns_step(n) -> Step:
    name = _v(n.name)
    if n.external:
        return Step(f"namespace {n.name} (external: exists before up, stays after down)", n.loc,
                    ("netns", name, _v(""), "present"), expect=True)
    adopt = " (adopted if it exists)" if n.adopt else ""
    return Step(f"namespace {n.name}{adopt}", n.loc, ("netns", name, _v(""), "present"),
                ("netns", "add", name), ("netns", "del", name), ("netns", "del", name))


def _shown(cidr: str) -> str:
    return cidr if ipv4_host(cidr) else str(parse_interface(cidr))


def _connected(ifaces: list[Interface]) -> list[str]:
    """The routes the kernel makes for the interfaces' addresses (and IPv6 link-local), as ip shows them."""
    nets = {_route_dest(str(parse_interface(a.cidr).network))[0] for i in ifaces for a in i.addresses}
    return sorted(nets) + ["fe80::/64"]


def _adoptions(lab: Lab, by_ns: dict[str, list[Interface]], routes: dict[str, list[Route]]) -> tuple[Adoption, ...]:
    out = []
    for n in lab.namespaces:
        if n.adopt:
            ifaces = by_ns[n.name]
            out.append(Adoption(f"netns/{n.name}/", ("lo", *(i.name for i in ifaces)),
                                ("127.0.0.1/8", "::1/128", *(_shown(a.cidr) for i in ifaces for a in i.addresses)),
                                tuple(_connected(ifaces) + [_route_dest(r.dest)[0] for r in routes[n.name]])))
    for bridge in by_ns[HOST]:
        if bridge.adopt:
            ports = [i for i in by_ns[HOST] if i.master == bridge.name]
            mine = [r for r in routes[HOST] if r.dev == bridge.name]
            out.append(Adoption(f"link/host/{bridge.name}", tuple(i.name for i in ports),
                                tuple(_shown(a.cidr) for a in bridge.addresses),
                                tuple(_connected([bridge]) + [_route_dest(r.dest)[0] for r in mine])))
    return tuple(out)


def _host_last(steps: list[Step], ifaces: list[Interface]) -> tuple[list[Step], list[Step]]:
    """The host's steps split in two batches: the second, run once every namespace's batch is done, brings up the
    bridges the lab makes and adds the host's routes (the kernel takes no route over a device that is down).

    A bridge comes up once its ports are in place and up: while it is down, the IPv6 chatter of every new port
    (duplicate address detection, multicast listener reports, router solicitations) stops at the port, where an
    up bridge, knowing no multicast querier, floods each packet to every other port. At 500 ports that was 1 to
    3 s of the kernel's time while up ran."""
    bridges = {i.name for i in ifaces if i.kind == "bridge" and not i.external}
    last = [s for s in steps if s.do and (s.check[0] in ("route4", "route6")
                                          or s.check[0] == "state" and s.check[2] in bridges)]
    moved = set(map(id, last))  # by identity: hashing 40,000 steps (their Loc) costs more than this split
    return [s for s in steps if id(s) not in moved], last


def _count(n: int, word: str) -> str:
    """'no bridges', '1 bridge', '2 bridges': the noun agrees with the count."""
    plural = f"{word}es" if word.endswith("s") else f"{word}s"
    return f"no {plural}" if n == 0 else f"1 {word}" if n == 1 else f"{n} {plural}"


def _some(items: list, name=str, limit: int = 8) -> str:
    """The first few items by name (only those are named: a lab may have 10,000), and how many more."""
    shown = ", ".join(map(name, items[:limit]))
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _listed(items: list, word: str, name=str) -> str:
    """'2 bridges: a, b', or 'no bridges' (no list to show: nothing after a colon)."""
    return f"{_count(len(items), word)}: {_some(items, name)}" if items else _count(0, word)


def summary(lab: Lab) -> tuple[str, ...]:
    bridges = [i.ref for i in lab.interfaces if i.kind == "bridge"]
    n_addr = sum(len(i.addresses) for i in lab.interfaces)
    lines = [_listed(lab.namespaces, "namespace", lambda n: n.name),
             _listed(bridges, "bridge"),
             _listed(lab.veths, "veth pair", lambda v: f"{v.a[0]}/{v.a[1]}--{v.b[0]}/{v.b[1]}"),
             f"{_count(n_addr, 'address')}, {_count(len(lab.routes), 'route')}, "
             f"{_count(len(lab.expectations), 'expectation')}"]
    if lab.services:
        lines.append(_listed(lab.services, "service", lambda s: f"{s.ns}/{s.name}"))
    lines += [f"node {i.node}: underlay {i.name} {i.addresses[0].cidr} (there before up; the lab never changes it)"
              for i in lab.interfaces if i.kind == "device"]
    vxlans = [i for i in lab.interfaces if i.kind == "vxlan"]
    if vxlans:
        n_fdb = len(lab.fdbs)
        lines.append(f"{_listed(vxlans, 'vxlan device', lambda i: f'{i.ref} (VNI {i.vxlan.vni}, UDP {i.vxlan.port})')}"
                     f"; {_count(len(lab.neighbours), 'neighbour')}, {n_fdb} fdb entr{'y' if n_fdb == 1 else 'ies'}")
    lines += pools.describe(lab)
    if lab.masquerades or lab.publishes:
        rules = [f"masquerade {m.ns}/{m.link}" for m in lab.masquerades]
        rules += [f"{p.proto}/{p.port} -> {nat.destination(p.target, p.to_port)}" for p in lab.publishes]
        lines.append(f"nftables table inet {nat.TABLE_PREFIX}{lab.name}: {', '.join(rules)}")
    return tuple(lines)
