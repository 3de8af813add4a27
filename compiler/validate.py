"""Compile-time checks: pure functions over the model that return every problem found, not only the first."""

from __future__ import annotations

import ipaddress
import re
from collections import defaultdict
from dataclasses import replace
from functools import cache

from . import nodes, pools
from .model import HOST, HOST_GW, L2, VXLAN, Diagnostic, Lab, Loc
from .nat import TABLE_PREFIX

IFNAMSIZ = 15  # bytes the kernel allows in an interface name
NAME_MAX = 255  # bytes in a file name (namespaces are files in /run/netns)
# Names are also words in `ip -batch` lines and in shell scripts; this set needs no escaping in either.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_MAC = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")
_ALLOWED = "letters, digits, '-', '_' and '.'"


def _error(message: str, loc: Loc | None) -> Diagnostic:
    return Diagnostic("error", message, loc)


def _bad_char(name: str) -> str | None:
    return next((c for c in name if not _SAFE_NAME.fullmatch(c)), None)


def interface_name_problem(name: str) -> str | None:
    """Why the kernel or netgen would refuse `name` as an interface name, or None."""
    if len(name) <= IFNAMSIZ and _SAFE_NAME.fullmatch(name) and name[0] != "-" and name not in (".", ".."):
        return None  # nearly every name: one regex instead of the rules below, which say what is wrong
    what = f"interface name {name!r}"
    if name == "":
        return "interface name is empty"
    if name in (".", ".."):
        return f"{what} is not allowed by Linux"
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > IFNAMSIZ:
        return f"{what} is {size} bytes long; Linux allows at most {IFNAMSIZ}"
    for c in name:
        if c in "/:":
            return f"{what} contains {c!r}, which Linux does not allow in interface names"
        if c.isspace():
            return f"{what} contains whitespace, which Linux does not allow in interface names"
        if not c.isprintable():
            return f"{what} contains the non-printable character {c!r}"
    if (c := _bad_char(name)) is not None:
        return f"{what} contains {c!r}; netgen accepts {_ALLOWED}"
    if name.startswith("-"):
        return f"{what} starts with '-', which ip would read as an option"
    return None


def file_name_problem(name: str, what: str) -> str | None:
    """Why `name` is not safe as a file name (namespaces live in /run/netns/NAME), or None."""
    if len(name) <= NAME_MAX and _SAFE_NAME.fullmatch(name) and name[0] not in "-.":
        return None  # the common case, in one regex
    if name == "":
        return f"{what} is empty"
    if name in (".", ".."):
        return f"{what} {name!r} is not a file name"
    if len(name.encode("utf-8", "surrogatepass")) > NAME_MAX:
        return f"{what} is longer than {NAME_MAX} bytes"
    if (c := _bad_char(name)) is not None:
        return f"{what} {name!r} contains {c!r}; a safe file name has only {_ALLOWED}"
    if name[0] in "-.":
        return f"{what} {name!r} starts with {name[0]!r}; start it with a letter or digit"
    return None


def _again(first: Loc, loc: Loc) -> str:
    """Where the first definition was, said so that a loop or a helper called twice is recognisable."""
    if first.line == loc.line and first.file == loc.file:
        return "already defined by this same line (in a loop, or a helper called twice)"
    return f"already defined at line {first.line}"


def _names(lab: Lab) -> list[Diagnostic]:
    out = []
    if (p := file_name_problem(lab.name, "lab name")) is not None:
        out.append(_error(p, lab.loc))
    seen_ns: dict[str, Loc] = {}
    for ns in lab.namespaces:
        if (p := file_name_problem(ns.name, "namespace name")) is not None:
            out.append(_error(p, ns.loc))
        elif ns.name == HOST:
            out.append(_error(f"namespace name {HOST!r} is reserved for the root namespace: use lab.host", ns.loc))
        elif ns.name in seen_ns:
            out.append(_error(f"namespace {ns.name!r} is {_again(seen_ns[ns.name], ns.loc)}", ns.loc))
        else:
            seen_ns[ns.name] = ns.loc
    seen_if: dict[tuple[str, str], Loc] = {}
    for iface in sorted(lab.interfaces, key=lambda i: (i.loc.file, i.loc.line)):  # bridges come first in the model
        if iface.kind != "device" and (p := interface_name_problem(iface.name)) is not None:  # a node's: _nodes
            out.append(_error(p, iface.loc))
        elif iface.name == "lo":
            out.append(_error(f"{iface.ref}: 'lo' is the loopback every namespace already has; pick another name",
                              iface.loc))
        elif (iface.ns, iface.name) in seen_if:
            first = seen_if[(iface.ns, iface.name)]
            out.append(_error(f"{iface.ref} is {_again(first, iface.loc)}; names must be unique within a "
                              f"namespace", iface.loc))
        else:
            seen_if[(iface.ns, iface.name)] = iface.loc
    return out


def _veths(lab: Lab) -> list[Diagnostic]:
    return [_error(f"a veth pair needs two different ends; both ends are {v.a[0]}/{v.a[1]}", v.loc)
            for v in lab.veths if v.a == v.b]


def mac_problem(mac: object) -> str | None:
    """Why `mac` cannot be a link's MAC address, or None."""
    if not isinstance(mac, str) or not _MAC.fullmatch(mac):
        return f"mac must look like 02:42:ac:11:00:02, got {mac!r}"
    if int(mac[:2], 16) & 1:
        return f"mac {mac} is a multicast address; the first octet must be even"
    if int(mac.replace(":", ""), 16) == 0:
        return "mac 00:00:00:00:00:00 cannot be assigned"
    return None


def _mtu_problem(mtu: object) -> str | None:
    if isinstance(mtu, int) and not isinstance(mtu, bool) and 68 <= mtu <= 65535:
        return None
    return f"mtu must be a whole number from 68 to 65535, got {mtu!r}"


def _link_settings(lab: Lab) -> list[Diagnostic]:
    out = []
    for iface in lab.interfaces:
        mtu, mac = iface.mtu, iface.mac
        if mtu is not None and (p := _mtu_problem(mtu)) is not None:
            out.append(_error(f"{iface.ref}: {p}", iface.loc))
        if mac is not None and (p := mac_problem(mac)) is not None:
            out.append(_error(f"{iface.ref}: {p}", iface.loc))
        if iface.master is not None and iface.addresses:
            out.append(Diagnostic(
                "warning", f"{iface.ref} is a port of bridge {iface.master} and also has an address; a bridge "
                f"port does not answer on its own address: put the address on {iface.master}", iface.loc))
    return out


# Each address is looked at by several rules, and again by plan; gateways repeat across namespaces.
parse_interface = cache(ipaddress.ip_interface)
parse_address = cache(ipaddress.ip_address)


_CANONICAL_IPV4 = re.compile(r"((?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3})"
                             r"/(3[0-2]|[12]?\d)")


@cache
def ipv4_host(cidr: str) -> bool:
    """Whether `cidr` is an IPv4 address in CIDR form as ipaddress writes it, and one an interface can have: most
    labs' addresses, told apart without ipaddress objects (a 10,000-namespace lab has 10,000 of them)."""
    m = _CANONICAL_IPV4.fullmatch(cidr)
    if m is None:
        return False
    a, b, c, d = map(int, m[1].split("."))
    ip, prefix = a << 24 | b << 16 | c << 8 | d, int(m[2])
    if ip == 0 or a >> 4 == 14:  # unspecified, multicast (224.0.0.0/4)
        return False
    host = (1 << (32 - prefix)) - 1
    return prefix > 30 or ip & host not in (0, host)  # not the network or broadcast address


# ipaddress takes any text after an IPv6 zone's '%' (fe80::1%eth0), spaces and newlines too, which would split the
# words and lines of `ip -batch`: netgen takes no zones (a link-local gateway names its link with dev=).
_NO_ZONE = "has a zone (%...); netgen takes addresses without one"


@cache
def address_problem(cidr: str) -> str | None:
    """Why `cidr` cannot be put on an interface, or None."""
    if ipv4_host(cidr):
        return None
    if "%" in cidr:
        return f"address {cidr!r} {_NO_ZONE}"
    if "/" not in cidr:
        return f"address {cidr!r} has no prefix length; write it in CIDR form, e.g. {cidr}/24"
    try:
        iface = parse_interface(cidr)
    except ValueError:
        return f"address {cidr!r} is not a valid IPv4 or IPv6 address in CIDR form (like 10.0.0.1/24)"
    ip, net = iface.ip, iface.network
    if ip.is_unspecified or ip.is_multicast:
        kind = "unspecified" if ip.is_unspecified else "multicast"
        return f"address {cidr} cannot be assigned to an interface ({kind})"
    if ip.version == 4 and net.prefixlen <= 30:
        if ip == net.network_address:
            return (f"address {cidr} is the network address of {net}; "
                    f"use a host address such as {net[1]}/{net.prefixlen}")
        if ip == net.broadcast_address:
            return (f"address {cidr} is the broadcast address of {net}; "
                    f"use a host address such as {net[1]}/{net.prefixlen}")
    if ip.version == 6 and net.prefixlen <= 126 and ip == net.network_address:
        return f"address {cidr} is the network (subnet-router anycast) address of {net}; use {net[1]}/{net.prefixlen}"
    return None


def _addresses(lab: Lab) -> list[Diagnostic]:
    out = []
    segment = pools.segments(lab)
    used: dict[tuple, tuple[str, Loc]] = {}
    for iface in lab.interfaces:
        for addr in iface.addresses:
            if (p := address_problem(addr.cidr)) is not None:
                out.append(_error(f"{iface.ref}: {p}", addr.loc))
                continue
            ip = addr.cidr.partition("/")[0] if ipv4_host(addr.cidr) else str(parse_interface(addr.cidr).ip)
            key = (segment[(iface.ns, iface.name)], ip)
            if key in used:
                other, loc = used[key]
                out.append(_error(f"{iface.ref}: address {ip} is already used on the same L2 segment by {other} "
                                  f"(line {loc.line})", addr.loc))
            else:
                used[key] = (iface.ref, addr.loc)
    return out


def _routes(lab: Lab) -> list[Diagnostic]:
    out = []
    connected: dict[str, list[tuple[str, ipaddress._BaseNetwork]]] = defaultdict(list)
    devices: dict[str, set[str]] = defaultdict(set)
    routed = {r.ns for r in lab.routes}
    for iface in lab.interfaces:
        devices[iface.ns].add(iface.name)
        for addr in iface.addresses if iface.ns in routed else ():
            if address_problem(addr.cidr) is None:
                connected[iface.ns].append((iface.name, parse_interface(addr.cidr).network))
    seen: dict[tuple[str, int, str], Loc] = {}
    for r in lab.routes:
        where = f"route {r.dest!r} in {r.ns}"
        if r.via is None and r.dev is None:
            out.append(_error(f"{where} needs a gateway (via=) or a device (dev=)", r.loc))
            continue
        zoned = next((v for v in (r.dest, r.via) if v is not None and "%" in v), None)
        if zoned is not None:
            out.append(_error(f"{where}: {zoned!r} {_NO_ZONE} (name the link with dev=)", r.loc))
            continue
        if not (r.family is None or type(r.family) is int and r.family in (4, 6)):  # 6.0 or True would pass `in`
            out.append(_error(f"{where}: family must be 4 or 6, got {r.family!r}", r.loc))
            continue
        if r.dev is not None and r.dev not in devices[r.ns]:
            known = ", ".join(sorted(devices[r.ns])) or "none"
            out.append(_error(f"{where} goes out of device {r.dev!r}, which the lab does not define in {r.ns} "
                              f"(its interfaces: {known})", r.loc))
            continue
        gateway = None
        if r.via is not None:
            try:
                gateway = parse_address(r.via)
            except ValueError:
                out.append(_error(f"{where}: gateway {r.via!r} is not an IP address", r.loc))
                continue
        if r.dest == "default":
            family = gateway.version if gateway is not None else (r.family or 4)
            if r.family is not None and r.family != family:
                out.append(_error(f"{where}: family={r.family} but gateway {gateway} is IPv{family}", r.loc))
                continue
        else:
            try:
                family = ipaddress.ip_network(r.dest, strict=True).version
            except ValueError:
                try:
                    loose = ipaddress.ip_network(r.dest, strict=False)
                    out.append(_error(f"{where}: {r.dest} has host bits set; did you mean {loose}?", r.loc))
                except ValueError:
                    out.append(_error(f"{where}: destination must be 'default' or a prefix like 10.1.0.0/16",
                                      r.loc))
                continue
        if gateway is not None:
            if gateway.version != family:
                out.append(_error(f"{where}: gateway {gateway} is IPv{gateway.version} but the destination is "
                                  f"IPv{family}", r.loc))
                continue
            if gateway.is_link_local and gateway.version == 6:
                if r.dev is None:
                    out.append(_error(f"{where}: link-local gateway {gateway} needs dev= to say which link", r.loc))
                    continue
            # onlink: on its link by the lab's word (nodes.split's routes via another node's VTEP)
            elif not r.onlink and not any(gateway in net and (r.dev is None or r.dev == dev)
                                          for dev, net in connected[r.ns]):
                nets = ", ".join(f"{net} on {dev}" for dev, net in connected[r.ns]) or "none"
                on = f" on {r.dev}" if r.dev else ""
                out.append(_error(f"{where}: gateway {gateway} is not on any connected subnet{on} of {r.ns} "
                                  f"(connected: {nets})", r.loc))
                continue
        dest = r.dest if r.dest == "default" else str(ipaddress.ip_network(r.dest))
        if dest in ("0.0.0.0/0", "::/0"):  # the same route as "default"
            dest = "default"
        key = (r.ns, family, dest)
        if key in seen:
            what = f"a second IPv{family} default route" if dest == "default" else f"a second route to {dest}"
            out.append(_error(f"{r.ns} has {what}; the first is at line {seen[key].line}", r.loc))
        else:
            seen[key] = r.loc
    return out


def _expectations(lab: Lab) -> list[Diagnostic]:
    out = []
    known = {ns.name for ns in lab.namespaces} | {HOST}
    for e in lab.expectations:
        if e.ns not in known:
            names = ", ".join(sorted(known))
            out.append(_error(f"expectation from namespace {e.ns!r}, which the lab does not define "
                              f"(known: {names})", e.loc))
        if "%" in e.target:
            out.append(_error(f"expectation target {e.target!r} {_NO_ZONE}", e.loc))
        else:
            try:
                parse_address(e.target)
            except ValueError:
                out.append(_error(f"expectation target {e.target!r} must be an IP address without a prefix length, "
                                  f"or a namespace of the lab", e.loc))
        if e.tcp is not None and (not isinstance(e.tcp, int) or isinstance(e.tcp, bool)
                                  or not 1 <= e.tcp <= 65535):
            out.append(_error(f"tcp port must be a whole number from 1 to 65535, got {e.tcp!r}", e.loc))
    return out


_SYSCTL = re.compile(r"net(\.[A-Za-z0-9_-]+)+")
_SYSCTL_VALUE = re.compile(r"[A-Za-z0-9_.:-]+")


def _sysctls(lab: Lab) -> list[Diagnostic]:
    out = []
    seen: dict[tuple[str, str], Loc] = {}
    for s in lab.sysctls:
        if not _SYSCTL.fullmatch(s.key):
            out.append(_error(f"sysctl {s.key!r} is not a network sysctl like net.ipv4.ip_forward; only net.* "
                              f"belongs to a network namespace", s.loc))
        elif (s.ns, s.key) in seen:
            out.append(_error(f"sysctl {s.key} is already set in {s.ns} at line {seen[(s.ns, s.key)].line}", s.loc))
        else:
            seen[(s.ns, s.key)] = s.loc
        if (isinstance(s.value, bool) or not isinstance(s.value, (int, str))
                or not _SYSCTL_VALUE.fullmatch(str(s.value))):
            out.append(_error(f"sysctl {s.key} value must be a number or a word like 1 or 0, got {s.value!r}", s.loc))
    return out


def _externals(lab: Lab) -> list[Diagnostic]:
    out = []
    for iface in lab.interfaces:
        if not isinstance(iface.external, bool):
            out.append(_error(f"{iface.ref}: external must be True or False, got {iface.external!r}", iface.loc))
        if not iface.external:
            continue
        if iface.ns != HOST:
            out.append(_error(f"{iface.ref}: only the host has objects that exist before up; a namespace the lab "
                              f"creates starts empty", iface.loc))
        if iface.mtu is not None or iface.mac is not None:
            out.append(_error(f"{iface.ref} is external: the lab uses it as it is, so it cannot set mtu or mac",
                              iface.loc))
    return out


def _taken_over(lab: Lab) -> list[Diagnostic]:
    """external=True and adopt=True: what may exist before up, and what the lab may then do with it."""
    out = []
    external = {ns.name for ns in lab.namespaces if ns.external is True}
    for ns in lab.namespaces:
        for flag in ("external", "adopt"):
            if not isinstance(getattr(ns, flag), bool):
                out.append(_error(f"namespace {ns.name}: {flag} must be True or False, got {getattr(ns, flag)!r}",
                                  ns.loc))
        if ns.external is True and ns.adopt is True:
            out.append(_error(f"namespace {ns.name}: external=True (used as it is) and adopt=True (taken over) "
                              f"cannot both hold; choose one", ns.loc))
    for iface in lab.interfaces:
        if not isinstance(iface.adopt, bool):
            out.append(_error(f"{iface.ref}: adopt must be True or False, got {iface.adopt!r}", iface.loc))
        elif iface.adopt and (iface.kind != "bridge" or iface.ns != HOST):
            out.append(_error(f"{iface.ref}: only a bridge in the host can be adopted (a namespace is adopted "
                              f"whole, with adopt=True on lab.netns)", iface.loc))
        elif iface.adopt and iface.external is True:
            out.append(_error(f"{iface.ref}: external=True (used as it is) and adopt=True (taken over) cannot "
                              f"both hold; choose one", iface.loc))
        if iface.ns in external and iface.kind == "bridge":
            out.append(_error(f"{iface.ref}: namespace {iface.ns} is external, and down never enters it: a bridge "
                              f"there would outlive the lab; put it in a namespace the lab makes", iface.loc))
    for v in lab.veths:
        if v.a[0] in external and v.b[0] in external:
            out.append(_error(f"veth pair {v.a[0]}/{v.a[1]} <-> {v.b[0]}/{v.b[1]} has both ends in external "
                              f"namespaces, which down never enters: one end must be in the host or in a namespace "
                              f"the lab makes", v.loc))
    out += [_error(f"sysctl {s.key} in namespace {s.ns}, which is external: the lab never changes it", s.loc)
            for s in lab.sysctls if s.ns in external]
    return out


def _references(lab: Lab) -> list[Diagnostic]:
    """What the DSL makes true by construction and a lab read from data must be checked for: every object is in a
    namespace of the lab, a master is a bridge beside its port, and each veth end is one end of exactly one pair."""
    out = []
    known = {ns.name for ns in lab.namespaces} | {HOST}
    kinds = {(i.ns, i.name): i.kind for i in lab.interfaces}
    for what, items in (("interface", lab.interfaces), ("route", lab.routes), ("sysctl", lab.sysctls)):
        out += [_error(f"{what} in namespace {x.ns!r}, which the lab does not define", x.loc)
                for x in items if x.ns not in known]
    for iface in lab.interfaces:
        if iface.master is not None and (iface.kind not in ("veth", "vxlan")  # vxlan: an L2 segment's port
                                         or kinds.get((iface.ns, iface.master)) != "bridge"):
            out.append(_error(f"{iface.ref}: master {iface.master!r} must be a bridge of the lab in {iface.ns}, and "
                              f"only a veth end can be its port", iface.loc))
        if iface.external and iface.kind not in ("bridge", "device"):  # device: a node's underlay
            out.append(_error(f"{iface.ref}: only a bridge can be external", iface.loc))
    pairs: dict[tuple[str, str], Loc] = {}
    for v in lab.veths:
        for end in (v.a, v.b):
            if kinds.get(end) != "veth":
                out.append(_error(f"veth pair end {end[0]}/{end[1]} is not a veth interface of the lab", v.loc))
            elif end in pairs and v.a != v.b:
                out.append(_error(f"{end[0]}/{end[1]} is already one end of the veth pair at line "
                                  f"{pairs[end].line}", v.loc))
            pairs.setdefault(end, v.loc)
    out += [_error(f"{i.ref} is a veth end in no veth pair", i.loc)
            for i in lab.interfaces if i.kind == "veth" and (i.ns, i.name) not in pairs]
    return out


def _flags(lab: Lab) -> list[Diagnostic]:
    out = []
    for iface in lab.interfaces:
        for what in ("hairpin", "nodad"):
            if not isinstance(getattr(iface, what), bool):
                out.append(_error(f"{iface.ref}: {what} must be True or False, got {getattr(iface, what)!r}",
                                  iface.loc))
        if iface.hairpin is True and iface.master is None:
            out.append(_error(f"{iface.ref}: hairpin is a setting of a bridge port; make it with bridge.port()",
                              iface.loc))
    return out


def _port_problem(value: object, what: str) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return None
    return f"{what} must be a whole number from 1 to 65535, got {value!r}"


_TABLE_MAX = 255  # bytes nftables allows in a table name


def _nat(lab: Lab) -> list[Diagnostic]:
    """Masquerading and published ports: the host's, on links and to addresses of the lab, each once."""
    out = []
    if not (lab.masquerades or lab.publishes):
        return out
    if len((TABLE_PREFIX + lab.name).encode()) > _TABLE_MAX:
        out.append(_error(f"lab name is too long for its nftables table {TABLE_PREFIX}NAME: at most "
                          f"{_TABLE_MAX - len(TABLE_PREFIX)} bytes", lab.loc))
    links = {(i.ns, i.name): i for i in lab.interfaces}
    seen: dict[tuple, Loc] = {}
    for m in lab.masquerades:
        link = links.get((m.ns, m.link))
        if m.ns != HOST:
            out.append(_error(f"{m.ns}/{m.link}: netgen writes NAT rules in the host only; masquerade a link of "
                              f"lab.host", m.loc))
        elif link is None:
            out.append(_error(f"masquerade of {m.ns}/{m.link}, which is not a link of the lab", m.loc))
        elif not link.addresses:
            out.append(_error(f"{link.ref}: masquerade needs its subnets, and it has no address or pool", m.loc))
        elif (m.ns, m.link) in seen:
            out.append(_error(f"{link.ref} is already masqueraded at line {seen[(m.ns, m.link)].line}", m.loc))
        else:
            seen[(m.ns, m.link)] = m.loc
        for prefix in m.not_to:
            if not _is_prefix(prefix):
                out.append(_error(f"masquerade of {m.ns}/{m.link}: not_to takes prefixes like 10.244.0.0/16, got "
                                  f"{prefix!r}", m.loc))
    published: dict[tuple, Loc] = {}
    for p in lab.publishes:
        problem = None
        if p.ns != HOST:
            problem = f"netgen publishes ports of the host only, not of {p.ns}: use lab.host.publish()"
        elif p.proto not in ("tcp", "udp"):
            problem = f"proto must be \"tcp\" or \"udp\", got {p.proto!r}"
        else:
            problem = _port_problem(p.port, "port") or _port_problem(p.to_port, "target port")
        if problem is None and p.address is not None and (
                not isinstance(p.address, str) or "%" in p.address or not _is_ip(p.address)):
            problem = f"address {p.address!r} must be an IP address of the host without a prefix length"
        elif problem is None and p.address is not None and parse_address(p.address).is_loopback:
            problem = (f"address {p.address} is a loopback address: a connection from it cannot leave the host "
                       f"(it would need route_localnet); publish on every address, or on the host's own")
        if problem is None and not _is_ip(p.target):
            problem = f"target {p.target!r} is neither a namespace of the lab nor an IP address"
        if (problem is None and p.address is not None
                and parse_address(p.address).version != parse_address(p.target).version):
            problem = f"address {p.address} and target {p.target} are of different IP versions"
        if problem is not None:
            out.append(_error(f"published port {p.port}: {problem}", p.loc))
            continue
        key = (p.proto, p.port, parse_address(p.target).version)
        # one address, or every local address (None), per protocol, port and family
        first = published.get(key + (p.address,)) or (published.get(key + (None,)) if p.address else
                                                       next((v for k, v in published.items() if k[:3] == key), None))
        if first is not None:
            out.append(_error(f"{p.proto} port {p.port} of the host is already published at line {first.line}",
                              p.loc))
        else:
            published[key + (p.address,)] = p.loc
    return out


def _command_problem(command: object) -> str | None:
    """Why `command` cannot be a service's command, or None: a non-empty line of printable text (run by `sh -c`),
    or a non-empty list of such words whose first names the program."""
    if isinstance(command, str):
        words = (command,)
    elif isinstance(command, tuple) and command and all(isinstance(w, str) for w in command):
        words = command
    else:
        return f"command must be a string (run by sh -c) or a non-empty list of strings, got {command!r}"
    if not words[0].strip():
        return "command is empty"
    if not all(w.isprintable() for w in words):
        return f"command {command!r} holds a line break or another character that is not printable"
    return None


def _services(lab: Lab) -> list[Diagnostic]:
    """Services run in a namespace the lab makes (the host and an external namespace are not the lab's to run
    processes in), each with a name of its own in its namespace (it names its log file and its line in the
    record)."""
    out = []
    kinds = {ns.name: ns for ns in lab.namespaces}
    seen: dict[tuple[str, str], Loc] = {}
    for s in lab.services:
        problem = file_name_problem(s.name, "service name")
        if problem is None and len(s.name) > IFNAMSIZ:
            problem = f"service name {s.name!r} is {len(s.name)} bytes long; netgen allows at most {IFNAMSIZ}"
        if problem is not None:
            out.append(_error(problem, s.loc))
        elif (s.ns, s.name) in seen:
            out.append(_error(f"service {s.ns}/{s.name} is {_again(seen[(s.ns, s.name)], s.loc)}; service names "
                              f"must be unique within a namespace", s.loc))
        else:
            seen[(s.ns, s.name)] = s.loc
        ns = kinds.get(s.ns)
        if s.ns == HOST:
            out.append(_error(f"service {s.name}: the lab never runs processes in the host; give it a namespace "
                              f"the lab makes", s.loc))
        elif ns is None:
            out.append(_error(f"service {s.name} in namespace {s.ns!r}, which the lab does not define", s.loc))
        elif ns.external is True:
            out.append(_error(f"service {s.name} in namespace {s.ns}, which is external: the lab never runs or "
                              f"ends processes there", s.loc))
        if (problem := _command_problem(s.command)) is not None:
            out.append(_error(f"service {s.name}: {problem}", s.loc))
    return out


def _is_prefix(text: object) -> bool:
    try:
        return isinstance(text, str) and "%" not in text and "/" in text and bool(ipaddress.ip_network(text))
    except ValueError:
        return False


def _is_ip(text: object) -> bool:
    try:
        return isinstance(text, str) and "%" not in text and bool(parse_address(text))
    except ValueError:
        return False


RULES = (_names, _veths, _link_settings, _addresses, _routes, _sysctls, _externals, _taken_over, _expectations,
         _references,
         _flags, _nat, _services)

# A 10,000-namespace star is 30,000 objects and an 18 MB up.sh; past this, scripts run to hundreds of MB, more
# than bash reads well, and compiling takes minutes.
MAX_OBJECTS = 100_000


def _size(lab: Lab) -> list[Diagnostic]:
    objects = [*lab.namespaces, *lab.interfaces, *lab.routes, *lab.sysctls, *lab.expectations, *lab.services]
    if len(objects) <= MAX_OBJECTS:
        return []
    first_too_many = sorted((o.loc for o in objects), key=lambda loc: (loc.file, loc.line))[MAX_OBJECTS]
    return [Diagnostic("error", f"the lab makes {len(objects):,} objects (namespaces, interfaces, routes, sysctls, "
                       f"expectations and services) and netgen compiles at most {MAX_OBJECTS:,}, the first past the "
                       "limit here: split it into smaller labs", first_too_many)]


def validate(lab: Lab) -> list[Diagnostic]:
    """Every problem in `lab`, errors and warnings, in the order of the lab file. A lab too big to compile gets
    that one error, without the rules' time. A lab with nodes is checked as a whole (its nodes, what is on which,
    its overlays), then node by node as the labs its split gives, each like a lab without nodes."""
    found = list(lab.problems) + _size(lab)
    if has_errors(found[len(lab.problems):]):
        return found
    if lab.nodes:
        found += _across_nodes(lab)
    else:
        found += _placed(lab) + [_error(f"{_CALLS.get(o.kind, o.kind)}: joins nodes, and the lab has none: declare "
                                        f"them with lab.node()", o.loc) for o in lab.overlays] + _one_node(lab)
    # A node's lab repeats what belongs to the whole lab (its name, say): each problem is named once.
    return sorted(dict.fromkeys(found), key=lambda d: (d.loc.file, d.loc.line) if d.loc else ("", 0))


def _one_node(lab: Lab) -> list[Diagnostic]:
    found = pools.problems(lab)
    # The rules check the addresses, routes and targets the pools give; or, when those do not work out, what
    # stands without them.
    lab = pools.unresolved_left_out(lab) if found else pools.resolve(lab)
    for rule in RULES:
        found += rule(lab)
    return found


# -- nodes ---------------------------------------------------------------------------------------------------------

_HOST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}")
_CALLS = {HOST_GW: "host_gw", VXLAN: "vxlan_overlay", L2: "l2_segment"}
_VNI_MAX = (1 << 24) - 1


def _across_nodes(lab: Lab) -> list[Diagnostic]:
    found = _nodes(lab) + _placed(lab) + _overlays(lab)
    derive = not has_errors(found)  # an overlay's objects are computed from nodes and bridges that are right
    labs = nodes.split(_without_crossing_veths(lab), derive)
    found += _aimed_elsewhere(lab, labs)
    if derive:
        found += _segments_across(lab, labs)
    for node_lab in labs.values():
        found += _one_node(node_lab)
    return found


def _nodes(lab: Lab) -> list[Diagnostic]:
    """Each node: a name (it names the node's folder of scripts), an IPv4 underlay address of its own with a prefix,
    an underlay device, and the address Ansible connects to."""
    out = []
    names: dict[str, Loc] = {}
    addresses: dict[object, tuple[str, Loc]] = {}
    for n in lab.nodes:
        if (p := file_name_problem(n.name, "node name")) is not None:
            out.append(_error(p, n.loc))
        elif n.name in names:
            out.append(_error(f"node {n.name!r} is {_again(names[n.name], n.loc)}", n.loc))
        else:
            names[n.name] = n.loc
        ip = nodes.underlay(n)
        if ip is not None and ip.ip in addresses:
            other, loc = addresses[ip.ip]
            out.append(_error(f"node {n.name}: underlay address {ip.ip} is already node {other}'s (line {loc.line})",
                              n.loc))
        elif ip is not None:
            addresses[ip.ip] = (n.name, n.loc)
        else:
            out.append(_error(f"node {n.name}: {_underlay_problem(n.underlay)}", n.loc))
        if not isinstance(n.dev, str):
            out.append(_error(f"node {n.name}: dev must be a string like 'eth0', got {n.dev!r}", n.loc))
        elif (p := interface_name_problem(n.dev)) is not None:
            out.append(_error(f"node {n.name}: underlay device: {p}", n.loc))
        if n.ssh is not None and not (isinstance(n.ssh, str) and _HOST_NAME.fullmatch(n.ssh)):
            out.append(_error(f"node {n.name}: ssh must be a host name or address like 192.168.60.11 or "
                              f"node1.example.org, got {n.ssh!r}", n.loc))
        if (p := _mtu_problem(n.mtu)) is not None:
            out.append(_error(f"node {n.name}: underlay {p}", n.loc))
    return out


def _underlay_problem(text: object) -> str:
    """Why `text`, which nodes.underlay() refused, is not a node's underlay address. (An address it takes that no
    interface can have, a network address say, is named as any other by the node's lab.)"""
    if not isinstance(text, str):
        return f"underlay must be a string like '192.168.60.11/24', got {text!r}"
    try:
        version = ipaddress.ip_interface(text).version if "%" not in text else 0
    except ValueError:
        version = 0
    if version == 6:
        return f"underlay {text!r} is IPv6; a node's underlay is IPv4, as flannel's backends use it"
    if version == 4:
        return f"underlay {text!r} has no prefix length; write it in CIDR form, e.g. {text}/24"
    return f"underlay {text!r} is not an IPv4 address in CIDR form (like 192.168.60.11/24)"


def _what(item) -> str:
    """An object of the lab, as messages name it."""
    kind = type(item).__name__
    return {"Namespace": lambda: f"namespace {item.name}",
            "Interface": lambda: item.ref,
            "Veth": lambda: f"veth pair {item.a[0]}/{item.a[1]} <-> {item.b[0]}/{item.b[1]}",
            "Route": lambda: f"route {item.dest!r} in {item.ns}",
            "Sysctl": lambda: f"sysctl {item.key} in {item.ns}",
            "Expectation": lambda: f"expectation from {item.ns}",
            "Masquerade": lambda: f"masquerade of {item.ns}/{item.link}",
            "Publish": lambda: f"published port {item.port}",
            "Service": lambda: f"service {item.ns}/{item.name}"}[kind]()


_PLACED = ("namespaces", "interfaces", "veths", "routes", "sysctls", "expectations", "masquerades", "publishes",
           "services")


def _placed(lab: Lab) -> list[Diagnostic]:
    """Everything is on a node of the lab, the one of its namespace, and a veth pair on one node; in a lab without
    nodes, on no node."""
    out = []
    known = {n.name for n in lab.nodes}
    home = nodes.homes(lab)
    if not known:
        for field in _PLACED:
            out += [_error(f"{_what(x)} is on node {node!r}, and the lab has no nodes: declare it with lab.node()",
                           x.loc) for x in getattr(lab, field) if (node := nodes.node_of(x, home))]
        return out
    names = ", ".join(sorted(known))
    first = lab.nodes[0]
    seen: dict[str, tuple[str, Loc]] = {}
    for ns in lab.namespaces:
        if ns.node and ns.name in seen and seen[ns.name][0] != ns.node:
            out.append(_error(f"namespace {ns.name!r} is already on node {seen[ns.name][0]} (line "
                              f"{seen[ns.name][1].line}); a namespace's name is unique in the lab, on all its nodes",
                              ns.loc))
        seen.setdefault(ns.name, (ns.node, ns.loc))
    for field in _PLACED:
        for x in getattr(lab, field):
            node = nodes.node_of(x, home)
            ns = getattr(x, "ns", None)
            if node in known:
                pass
            elif node:
                out.append(_error(f"{_what(x)} is on node {node!r}, which the lab does not define (its nodes: "
                                  f"{names})", x.loc))
            elif ns is not None and ns != HOST and ns not in home:
                out.append(_error(f"{_what(x)}: namespace {ns!r} is not one of the lab's", x.loc))
            elif ns is None or ns == HOST:  # in a namespace on no node, that namespace is named instead
                out.append(_error(f"{_what(x)} is on no node: a lab with nodes ({first.name} at line "
                                  f"{first.loc.line}) makes everything on one of them: node.netns(...), "
                                  f"node.host...; lab.netns and lab.host are for a lab without nodes", x.loc))
    for v in lab.veths:
        if _crossing(v, home):
            ends = nodes.ends_of(v, home)
            out.append(_error(f"veth pair {v.a[0]}/{v.a[1]} <-> {v.b[0]}/{v.b[1]} joins two nodes ({ends[0]} and "
                              f"{ends[1]}): a veth pair lives inside one machine; join nodes with lab.host_gw(), "
                              f"lab.vxlan_overlay() or lab.l2_segment()", v.loc))
    return out


def _crossing(veth, home: dict[str, str]) -> bool:
    a, b = nodes.ends_of(veth, home)
    return bool(a and b and a != b)


def _without_crossing_veths(lab: Lab) -> Lab:
    """The lab without its veth pairs between nodes (_placed names them) nor their ends: for checking the rest."""
    home = nodes.homes(lab)
    crossing = [v for v in lab.veths if _crossing(v, home)]
    if not crossing:
        return lab
    ends = {(end, node) for v in crossing for end, node in zip((v.a, v.b), nodes.ends_of(v, home))}
    return replace(lab, veths=tuple(v for v in lab.veths if v not in crossing),
                   interfaces=tuple(i for i in lab.interfaces if ((i.ns, i.name), nodes.node_of(i, home)) not in ends))


def _overlays(lab: Lab) -> list[Diagnostic]:
    """Each overlay joins two or more bridges, each in the host of a node of its own; host-gw and vxlan ones give
    each node a pod subnet that overlaps no other node's; host-gw's nodes share an underlay subnet; a vxlan device
    has a VNI and UDP port its node uses once, an MTU and a VTEP MAC of its own."""
    out = []
    nodes_by_name = {n.name: n for n in lab.nodes}
    bridges = {(i.node, i.name): i for i in lab.interfaces if i.ns == HOST and i.kind == "bridge"}
    tunnels: dict[tuple, Loc] = {}  # (node, vni, port) of each vxlan device
    for o in lab.overlays:
        call = _CALLS.get(o.kind, o.kind)

        def bad(message: str) -> None:
            out.append(_error(f"{call}: {message}", o.loc))

        if o.kind not in _CALLS:
            bad(f"kind must be one of {', '.join(map(repr, _CALLS))}")
            continue
        members = {}
        for node, name in o.bridges:
            if node not in nodes_by_name:
                bad(f"node {node!r} is not one of the lab's")
            elif (node, name) not in bridges:
                bad(f"node {node} has no bridge {name!r} in its host")
            elif node in members:
                bad(f"node {node} is joined twice ({members[node].name} and {name}); one bridge per node")
            else:
                members[node] = bridges[(node, name)]
        if len(o.bridges) < 2:
            bad(f"joins nodes: it needs a bridge on each of two nodes or more, got {len(o.bridges)}")
        if o.kind in (HOST_GW, VXLAN):
            out += _pod_subnets(o, call, members, nodes_by_name)
            if not isinstance(o.masquerade, bool):
                bad(f"masquerade must be True or False, got {o.masquerade!r}")
        if o.kind in (VXLAN, L2):
            if not (type(o.vni) is int and 0 <= o.vni <= _VNI_MAX):
                bad(f"vni must be a whole number from 0 to {_VNI_MAX}, got {o.vni!r}")
            if (p := _port_problem(o.port, "port")) is not None:
                bad(p)
            if not isinstance(o.device, str):
                bad(f"device must be a string like 'flannel.1', got {o.device!r}")
            elif (p := interface_name_problem(o.device)) is not None:
                bad(f"device: {p}")
            if o.mtu is not None and (p := _mtu_problem(o.mtu)) is not None:
                bad(p)
            taken = [(node, tunnels[(node, o.vni, o.port)]) for node in members if (node, o.vni, o.port) in tunnels]
            if taken:
                bad(f"{' and '.join(f'node {n}' for n, _ in taken)} already {'has' if len(taken) == 1 else 'have'} a "
                    f"vxlan device with VNI {o.vni} on UDP port {o.port} (line {taken[0][1].line}); give this one "
                    f"another VNI")
            for node in members:
                tunnels.setdefault((node, o.vni, o.port), o.loc)
        if o.kind == VXLAN:
            out += _vtep_macs(o, call, members, nodes_by_name)
        elif o.macs:
            bad("macs= is for vxlan_overlay: an L2 segment's vxlan devices keep the MAC the kernel gives them")
    return out


def _pod_subnets(o, call: str, members: dict, nodes_by_name: dict) -> list[Diagnostic]:
    out = []
    subnets = {}
    for node, bridge in members.items():
        net = nodes.pod_subnet(bridge)
        if net is None:
            out.append(_error(f"{call}: node {node}'s bridge {bridge.name} has no IPv4 subnet to be its pod subnet: "
                              f"give it subnet= (like 10.244.1.0/24) or an address", o.loc))
            continue
        clash = next((m for m, other in subnets.items() if other.overlaps(net)), None)
        if clash is not None:
            out.append(_error(f"{call}: node {node}'s pod subnet {net} (bridge {bridge.name}) overlaps node "
                              f"{clash}'s {subnets[clash]}; each node needs a pod subnet of its own", o.loc))
        subnets[node] = net
    if o.kind == HOST_GW:
        underlays = {node: nodes.underlay(nodes_by_name[node]) for node in members}
        first = next(iter(underlays.items()), None)
        for node, ip in underlays.items():
            if ip is not None and first[1] is not None and ip.network != first[1].network:
                out.append(_error(f"{call}: node {node}'s underlay {ip} is not on node {first[0]}'s underlay subnet "
                                  f"{first[1].network}: host-gw routes pods via the other nodes' underlay "
                                  f"addresses, so its nodes share one subnet (vxlan_overlay crosses routers)", o.loc))
    return out


def _vtep_macs(o, call: str, members: dict, nodes_by_name: dict) -> list[Diagnostic]:
    out = []
    for node, mac in o.macs:
        if node not in members:
            out.append(_error(f"{call}: macs= names node {node!r}, which this overlay does not join", o.loc))
        elif (p := mac_problem(mac)) is not None:
            out.append(_error(f"{call}: node {node}'s VTEP {p}", o.loc))
    if has_errors(out) or len(members) != len(o.bridges) or type(o.vni) is not int \
            or any(nodes.underlay(nodes_by_name[n]) is None for n in members):
        return out  # what is wrong is named; the MACs are compared once they can be told
    owners: dict[str, str] = {}
    pinned = dict(o.macs)
    for node, mac in nodes.vtep_macs(o, nodes_by_name).items():
        key = mac.lower()
        if key in owners:
            how = "pinned" if node in pinned else "derived from its underlay address"
            out.append(_error(f"{call}: node {node}'s VTEP MAC {mac} ({how}) is already node {owners[key]}'s; each "
                              f"VTEP needs a MAC of its own", o.loc))
        owners.setdefault(key, node)
    return out


def _aimed_elsewhere(lab: Lab, labs: dict[str, Lab]) -> list[Diagnostic]:
    """An expectation or published port aimed at a namespace on another node: it has an address to aim at."""
    home = nodes.homes(lab)
    aimed = [x for x in (*lab.expectations, *lab.publishes)
             if isinstance(x.target, str) and x.target in home and home[x.target] != nodes.node_of(x, home)]
    if not aimed:
        return []
    found = nodes.targets(labs)
    return [_error(f"{'expectation' if hasattr(x, 'reach') else f'published port {x.port}'}: namespace {x.target} "
                   f"(on node {home[x.target]}) has no address to reach", x.loc)
            for x in aimed if not found.get(x.target)]


def _segments_across(lab: Lab, labs: dict[str, Lab]) -> list[Diagnostic]:
    """On an L2 segment over nodes, every address is different, on whichever node (a node's own segment is checked
    with the node's lab)."""
    out = []
    for o in lab.overlays:
        if o.kind != L2:
            continue
        used: dict[object, tuple[str, str, Loc]] = {}
        for node, bridge in o.bridges:
            node_lab = pools.with_pools(labs[node])
            segment = pools.segments(node_lab)
            mine = segment.get((HOST, bridge))
            for iface in node_lab.interfaces:
                if segment.get((iface.ns, iface.name)) != mine or mine is None:
                    continue
                for a in iface.addresses:
                    if address_problem(a.cidr) is not None:
                        continue
                    ip = parse_interface(a.cidr).ip
                    if ip in used and used[ip][0] != node:
                        other, ref, loc = used[ip]
                        out.append(_error(f"{iface.ref} on node {node}: address {ip} is already used on the L2 "
                                          f"segment of line {o.loc.line} by {ref} on node {other} (line {loc.line})",
                                          a.loc))
                    used.setdefault(ip, (node, iface.ref, a.loc))
    return out


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.level == "error" for d in diagnostics)
