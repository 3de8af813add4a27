"""Address pools, and what the lab names instead of writing addresses, resolved into plain values.

The one place that turns a subnet into addresses, a gateway given as a link (`via=docker0`) into routes, a
namespace named as a target (published ports, expectations) into its addresses, and NAT into the host's
forwarding sysctls. validate reports what cannot be resolved (`problems`), then checks the resolved lab like any
other; plan builds from `resolve(lab)`. Reads the model only.

Allocation is deterministic. Per pool, addresses the lab writes inside the subnet are reserved first; then the
link that owns the pool takes the first free host address (the gateway), unless the lab gave it one in the
subnet; then each other interface of its L2 segment without an address of that family takes the next free one,
in the order the lab made them. So a namespace added at the end of the lab never renumbers the others.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from .model import HOST, Address, Diagnostic, Interface, Lab, Loc, Sysctl

FORWARDING = {4: "net.ipv4.ip_forward", 6: "net.ipv6.conf.all.forwarding"}


def segments(lab: Lab) -> dict[tuple[str, str], tuple[str, str]]:
    """Union-find over interfaces: veth ends and bridge ports share their L2 segment."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(x, y):
        parent[find(x)] = find(y)

    for v in lab.veths:
        union(v.a, v.b)
    for iface in lab.interfaces:
        find((iface.ns, iface.name))
        if iface.master is not None:
            union((iface.ns, iface.name), (iface.ns, iface.master))
    return {x: find(x) for x in parent}


def _interface(cidr: object):
    try:
        return ipaddress.ip_interface(cidr) if isinstance(cidr, str) and "%" not in cidr else None
    except ValueError:
        return None  # validate names it


def _subnet(text: object) -> tuple[object, str | None]:
    """(the network, None) or (None, why `text` cannot be a pool)."""
    if not isinstance(text, str):
        return None, f"subnet must be a string like '172.17.0.0/16', got {text!r}"
    what = f"subnet {text!r}"
    if "%" in text or "/" not in text:
        return None, f"{what} must be a prefix in CIDR form, like 172.17.0.0/16"
    try:
        net = ipaddress.ip_network(text)
    except ValueError:
        try:
            return None, f"{what} has host bits set; did you mean {ipaddress.ip_network(text, strict=False)}?"
        except ValueError:
            return None, f"{what} is not an IPv4 or IPv6 prefix like 172.17.0.0/16"
    if net.num_addresses < 4:
        return None, f"{what} is too small for a pool: it needs room for a gateway and another address"
    return net, None


@dataclass
class _Pool:
    owner: Interface
    net: object
    taken: set  # addresses in use inside the subnet
    next: int = 1  # the offset from the network address where the search for a free one starts

    def free(self):
        net = self.net
        last = net.num_addresses - (2 if net.version == 4 else 1)  # an IPv4 subnet's last is its broadcast
        while self.next <= last:
            ip = net.network_address + self.next
            self.next += 1
            if ip not in self.taken:
                self.taken.add(ip)
                return ip
        return None


def allocate(lab: Lab) -> tuple[dict[tuple[str, str], list[Address]], list[Diagnostic]]:
    """The addresses each interface gets from pools, and what is wrong with the pools."""
    out: list[Diagnostic] = []
    got: dict[tuple[str, str], list[Address]] = {}
    owners = [i for i in lab.interfaces if i.pools]
    if not owners:
        return got, out
    segment = segments(lab)
    on_segment: dict[tuple[str, str], list[Interface]] = {}
    for iface in lab.interfaces:
        on_segment.setdefault(segment[(iface.ns, iface.name)], []).append(iface)
    seen: dict[tuple, Loc] = {}
    pools: list[_Pool] = []
    for owner in owners:
        for text in owner.pools:
            net, problem = _subnet(text)
            where = f"{owner.ref}: "
            if problem is None and owner.external:
                problem = "an external bridge keeps its own addresses: write them, and its ports', instead of a subnet"
            elif problem is None and owner.master is not None:
                problem = f"a port of bridge {owner.master} takes no address: give the subnet to {owner.master}"
            if problem is not None:
                out.append(Diagnostic("error", where + problem, owner.loc))
                continue
            key = (segment[(owner.ns, owner.name)], net.version)
            if key in seen:
                out.append(Diagnostic("error", f"{where}its L2 segment already has an IPv{net.version} pool "
                                      f"(line {seen[key].line}); one per family", owner.loc))
                continue
            seen[key] = owner.loc
            pools.append(_Pool(owner, net, set()))
    for pool in pools:
        net, owner = pool.net, pool.owner
        members = [i for i in on_segment[segment[(owner.ns, owner.name)]]
                   if i is owner or (i.kind == "veth" and i.master is None)]
        needing = []
        for iface in members:
            mine = [(a, ip) for a in iface.addresses if (ip := _interface(a.cidr)) and ip.version == net.version]
            for a, ip in mine:
                if ip.network == net:
                    pool.taken.add(ip.ip)
                else:
                    out.append(Diagnostic("error", f"{iface.ref}: address {a.cidr} is not in subnet {net}, the "
                                          f"pool of its segment ({owner.ref}, line {owner.loc.line}): write an "
                                          f"address of {net}, or leave it out", a.loc))
            if not mine:
                needing.append(iface)
        for iface in sorted(needing, key=lambda i: i is not owner):  # the gateway first
            ip = pool.free()
            if ip is None:
                out.append(Diagnostic("error", f"{iface.ref}: pool {net} of {owner.ref} is exhausted: no address "
                                      f"left for it; use a larger subnet", iface.loc))
                break
            note = f"pool {net} of {owner.ref}" + (", gateway" if iface is owner else "")
            got.setdefault((iface.ns, iface.name), []).append(Address(f"{ip}/{net.prefixlen}", iface.loc, note))
    out += _overlaps(lab, pools, got, segment)
    return got, out


def _overlaps(lab: Lab, pools: list[_Pool], got: dict, seg: dict) -> list[Diagnostic]:
    """A pool's subnet overlapping another subnet in a namespace where both are: routes to them would clash. An
    address of a full-length prefix makes no subnet route (flannel.1's 10.244.1.0/32 beside cni0's 10.244.1.0/24)."""
    out = []
    nets_in: dict[str, list[tuple[object, tuple, str]]] = {}
    for iface in lab.interfaces:
        for a in list(iface.addresses) + got.get((iface.ns, iface.name), []):
            if (ip := _interface(a.cidr)) is not None and ip.network.prefixlen < ip.max_prefixlen:
                nets_in.setdefault(iface.ns, []).append((ip.network, seg[(iface.ns, iface.name)], iface.ref))
    made_at = {(seg[(p.owner.ns, p.owner.name)], p.net): (p.owner.loc.file, p.owner.loc.line) for p in pools}
    for pool in pools:
        home = seg[(pool.owner.ns, pool.owner.name)]
        here = made_at[(home, pool.net)]
        for ns in sorted(ns for ns, items in nets_in.items() if any(s == home for _, s, _ in items)):
            # two pools that overlap are reported once, at the one the lab makes last
            clash = next(((ref, net) for net, s, ref in nets_in[ns]
                          if s != home and net.version == pool.net.version and net.overlaps(pool.net)
                          and made_at.get((s, net), here) <= here), None)
            if clash is not None:
                out.append(Diagnostic("error", f"{pool.owner.ref}: subnet {pool.net} overlaps {clash[1]} of "
                                      f"{clash[0]}, in the same namespace {ns}; pick subnets that do not "
                                      f"overlap", pool.owner.loc))
    return out


def first_addresses(interfaces, version: int | None = None) -> dict[int, str]:
    """The first address of each family on `interfaces` (IPv6 link-local left out): family -> address."""
    found: dict[int, str] = {}
    for iface in interfaces:
        for a in iface.addresses:
            ip = _interface(a.cidr)
            if ip is not None and not ip.ip.is_link_local and (version in (None, ip.version)):
                found.setdefault(ip.version, str(ip.ip))
    return found


def _targets(lab: Lab) -> tuple[dict[str, list[Interface]], dict[tuple[str, str], Interface]]:
    by_ns: dict[str, list[Interface]] = {}
    for iface in lab.interfaces:
        by_ns.setdefault(iface.ns, []).append(iface)
    return by_ns, {(i.ns, i.name): i for i in lab.interfaces}


def _is_address(text: object) -> bool:
    return _interface(text) is not None and "/" not in str(text)


def problems(lab: Lab) -> list[Diagnostic]:
    """What cannot be resolved: pools that do not work out, and names that stand for addresses but have none."""
    if not needs_resolving(lab):
        return []
    got, out = allocate(lab)
    if out:
        return out
    lab = _with_pools(lab, got)
    by_ns, links = _targets(lab)
    names = {n.name for n in lab.namespaces}
    for r in lab.routes:
        if r.via_link is None:
            continue
        link = links.get(tuple(r.via_link))
        want = r.family if r.family in (4, 6) else None
        if link is None:
            out.append(Diagnostic("error", f"route {r.dest!r} in {r.ns}: gateway link {'/'.join(r.via_link)} is "
                                  f"not a link of the lab", r.loc))
        elif not first_addresses([link], want):
            out.append(Diagnostic("error", f"route {r.dest!r} in {r.ns}: {link.ref} has no "
                                  f"{f'IPv{want} ' if want else ''}address to be its gateway", r.loc))
    for p in lab.publishes:
        if isinstance(p.target, str) and p.target in names:
            family = _interface(p.address).version if _is_address(p.address) else None
            if not first_addresses(by_ns.get(p.target, []), family):
                what = f"IPv{family} address" if family else "address"
                out.append(Diagnostic("error", f"published port {p.port}: namespace {p.target} has no {what} to "
                                      f"forward it to", p.loc))
    for e in lab.expectations:
        if e.target in names and not first_addresses(by_ns.get(e.target, [])):
            out.append(Diagnostic("error", f"expectation: namespace {e.target} has no address to reach", e.loc))
    return out


def with_pools(lab: Lab) -> Lab:
    """The lab with the addresses its pools give out on their interfaces (nothing else resolved)."""
    return _with_pools(lab, allocate(lab)[0])


def _with_pools(lab: Lab, got: dict) -> Lab:
    if not got:
        return lab
    return replace(lab, interfaces=tuple(
        replace(i, addresses=i.addresses + tuple(got[(i.ns, i.name)])) if (i.ns, i.name) in got else i
        for i in lab.interfaces))


def needs_resolving(lab: Lab) -> bool:
    names = {n.name for n in lab.namespaces}
    return bool(lab.masquerades or lab.publishes or any(i.pools for i in lab.interfaces)
                or any(r.via_link is not None for r in lab.routes) or any(e.target in names for e in lab.expectations))


def resolve(lab: Lab) -> Lab:
    """The lab with concrete values only: pool addresses on their interfaces, gateways and targets as addresses,
    and the host's forwarding sysctls when it forwards NAT or published traffic. `problems(lab)` must be empty."""
    if not needs_resolving(lab):
        return lab
    lab = with_pools(lab)
    by_ns, links = _targets(lab)
    names = {n.name for n in lab.namespaces}
    routes = []
    for r in lab.routes:
        if r.via_link is None:
            routes.append(r)
            continue
        gateways = first_addresses([links[tuple(r.via_link)]], r.family)
        if r.dest != "default":
            version = ipaddress.ip_network(r.dest, strict=False).version if _interface(r.dest) else 4
            gateways = {v: g for v, g in gateways.items() if v == version}
        routes += [replace(r, via=g, family=v, via_link=None) for v, g in sorted(gateways.items())]
    publishes = []
    for p in lab.publishes:
        if p.target not in names:
            publishes.append(p)
            continue
        family = _interface(p.address).version if _is_address(p.address) else None
        publishes += [replace(p, target=t) for _, t in sorted(first_addresses(by_ns[p.target], family).items())]
    expectations = []
    for e in lab.expectations:
        if e.target not in names:
            expectations.append(e)
            continue
        expectations += [replace(e, target=t) for _, t in sorted(first_addresses(by_ns[e.target]).items())]
    lab = replace(lab, routes=tuple(routes), publishes=tuple(publishes), expectations=tuple(expectations))
    return replace(lab, sysctls=lab.sysctls + _forwarding(lab, links))


def _forwarding(lab: Lab, links: dict) -> tuple[Sysctl, ...]:
    """The host forwards what it masquerades and what it publishes, per family; a value the lab sets itself wins."""
    need: dict[int, Loc] = {}
    for m in lab.masquerades:
        link = links.get((m.ns, m.link))
        for version in first_addresses([link] if link else []):
            need.setdefault(version, m.loc)
    for p in lab.publishes:
        if _is_address(p.target):
            need.setdefault(ipaddress.ip_address(p.target).version, p.loc)
    set_by_lab = {s.key for s in lab.sysctls if s.ns == HOST}
    return tuple(Sysctl(HOST, FORWARDING[v], 1, loc) for v, loc in sorted(need.items())
                 if FORWARDING[v] not in set_by_lab)


def unresolved_left_out(lab: Lab) -> Lab:
    """The lab without what needs resolving: for checking the rest when `problems(lab)` is not empty."""
    names = {n.name for n in lab.namespaces}
    return replace(lab, routes=tuple(r for r in lab.routes if r.via_link is None),
                   publishes=tuple(p for p in lab.publishes if p.target not in names),
                   expectations=tuple(e for e in lab.expectations if e.target not in names))


def describe(lab: Lab) -> list[str]:
    """For `netgen check` and the scripts' headers: each pool and what it gave to whom (a resolved lab)."""
    given: dict[str, list[str]] = {}
    for iface in lab.interfaces:
        for a in iface.addresses:
            if a.note:
                key = a.note.removesuffix(", gateway")
                who = "gateway" if a.note.endswith(", gateway") else iface.ref
                given.setdefault(key, []).append(f"{who} {a.cidr.split('/')[0]}")
    return [f"{key}: {', '.join(items)}" for key, items in given.items()]

