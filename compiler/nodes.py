"""A lab over nodes, split into one plain lab per node: what each node's scripts build.

Each node's lab holds the node's own objects, its underlay device (kind "device", external: checked, never made or
changed), and its part of the lab's overlays, computed here as the real systems' daemons write it: routes to the
other nodes' pod subnets via their underlay addresses (flannel host-gw); a vxlan device with one neighbour, fdb
entry and onlink route per other node (flannel vxlan); a vxlan port on the bridge with one flood entry per other
node (an L2 segment). plan and render then compile each node like a lab without nodes. Expectations and published
ports aimed at a namespace on another node get that namespace's addresses. Reads the model, and pools for the
addresses pools give out.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from . import pools
from .model import (
    HOST,
    HOST_GW,
    L2,
    VXLAN,
    Address,
    Fdb,
    Interface,
    Lab,
    Masquerade,
    Namespace,
    Neighbour,
    Node,
    Overlay,
    Route,
    Sysctl,
    Veth,
    Vxlan,
)

VXLAN_OVERHEAD = 50  # bytes a vxlan device's MTU is below its underlay's (outer IPv4, UDP, VXLAN and inner Ethernet)
FLOOD = "00:00:00:00:00:00"  # the fdb MAC of a vxlan device's flood list


def underlay(node: Node) -> ipaddress.IPv4Interface | None:
    """The node's underlay address, if it is an IPv4 address with a prefix (validate says what else is wrong)."""
    if not isinstance(node.underlay, str) or "/" not in node.underlay:
        return None
    try:
        found = ipaddress.ip_interface(node.underlay)
    except ValueError:
        return None
    return found if isinstance(found, ipaddress.IPv4Interface) else None


def pod_subnet(bridge: Interface) -> ipaddress.IPv4Network | None:
    """A bridge's IPv4 subnet: its pool's, or that of its first IPv4 address."""
    for text in (*bridge.pools, *(a.cidr for a in bridge.addresses)):
        try:
            net = ipaddress.ip_network(text, strict=False) if isinstance(text, str) else None
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            return net
    return None


def vtep_mac(address: ipaddress.IPv4Address, vni: int) -> str:
    """A VTEP MAC fixed at compile time: locally administered, the VNI's low byte, then the underlay address
    (192.168.60.11 with VNI 1: 02:01:c0:a8:3c:0b), so a reviewer can tell whose it is."""
    return ":".join(f"{b:02x}" for b in (2, vni & 0xFF, *address.packed))


def vtep_macs(overlay: Overlay, nodes: dict[str, Node]) -> dict[str, str]:
    """Each member node's VTEP MAC: pinned, or derived from its underlay address."""
    pinned = dict(overlay.macs)
    return {node: pinned[node] if node in pinned else vtep_mac(underlay(nodes[node]).ip, overlay.vni)
            for node, _ in overlay.bridges}


def homes(lab: Lab) -> dict[str, str]:
    """Each namespace of the lab and its node."""
    return {ns.name: ns.node for ns in lab.namespaces}


def ends_of(veth: Veth, home: dict[str, str]) -> tuple[str, str]:
    """The node of each end of a veth pair."""
    return veth.nodes[0] or home.get(veth.a[0], ""), veth.nodes[1] or home.get(veth.b[0], "")


def node_of(item, home: dict[str, str]) -> str:
    """The node an object is on: its own, or that of the namespace it is in (a lab read from JSON may leave it out
    there); a veth's is that of its first end."""
    if isinstance(item, Veth):
        return ends_of(item, home)[0]
    if isinstance(item, Namespace):
        return item.node
    if item.node or item.ns == HOST:
        return item.node
    return home.get(item.ns, "")


class _Part:
    """One node's objects, as they are collected."""

    def __init__(self):
        self.namespaces, self.interfaces, self.veths, self.routes, self.sysctls = [], [], [], [], []
        self.expectations, self.masquerades, self.publishes, self.services = [], [], [], []
        self.neighbours, self.fdbs = [], []


def split(lab: Lab, derive: bool = True) -> dict[str, Lab]:
    """One lab without nodes per node of `lab`, in the order of the nodes. Objects on no node of the lab are left
    out (validate names them). `derive=False`: the overlays are left out too, for checking the rest of a lab whose
    nodes or overlays are wrong."""
    nodes: dict[str, Node] = {}
    for node in lab.nodes:
        nodes.setdefault(node.name, node)  # a name given twice: validate names the second
    parts = {name: _Part() for name in nodes}
    for node in nodes.values():
        if underlay(node) is not None:
            parts[node.name].interfaces.append(Interface(HOST, node.dev, "device", node.loc,
                                                         (Address(node.underlay, node.loc),), external=True,
                                                         node=node.name))
    home = homes(lab)
    for field in ("namespaces", "interfaces", "veths", "routes", "sysctls", "expectations", "masquerades",
                  "publishes", "services"):
        for item in getattr(lab, field):
            node = node_of(item, home)
            if node in parts:
                getattr(parts[node], field).append(item)
    if derive:
        for overlay in lab.overlays:
            _derive(overlay, nodes, parts)
    labs = {name: Lab(lab.name, lab.source, lab.sha256, lab.loc, tuple(p.namespaces), tuple(p.interfaces),
                      tuple(p.veths), tuple(p.routes), tuple(p.sysctls), tuple(p.expectations),
                      tuple(p.masquerades), tuple(p.publishes), tuple(p.services), neighbours=tuple(p.neighbours),
                      fdbs=tuple(p.fdbs))
            for name, p in parts.items()}
    labs = _aim(labs, home)
    # Each node's up waits for its services to answer the TCP expectations of the other nodes too
    return {name: replace(lab, answers=tuple(e for other, o in labs.items() if other != name
                                             for e in o.expectations if e.reach and e.tcp is not None))
            for name, lab in labs.items()}


def targets(labs: dict[str, Lab]) -> dict[str, dict[int, str]]:
    """Each namespace of the nodes' labs and the first address of each family it has, pools given out."""
    found = {}
    for lab in labs.values():
        lab = pools.with_pools(lab)
        for ns in lab.namespaces:
            found[ns.name] = pools.first_addresses([i for i in lab.interfaces if i.ns == ns.name])
    return found


def _aim(labs: dict[str, Lab], home: dict[str, str]) -> dict[str, Lab]:
    """Expectations and published ports aimed at a namespace on another node get its addresses, one per family
    (none: left out, and validate says so)."""
    def elsewhere(target: object, node: str) -> bool:
        return isinstance(target, str) and home.get(target, node) != node

    if not any(elsewhere(x.target, node) for node, lab in labs.items() for x in (*lab.expectations, *lab.publishes)):
        return labs
    found = targets(labs)
    out = {}
    for node, lab in labs.items():
        aimed = {}
        for field in ("expectations", "publishes"):
            aimed[field] = tuple(
                y for x in getattr(lab, field)
                for y in ([replace(x, target=t) for _, t in sorted(found[x.target].items())]
                          if elsewhere(x.target, node) else [x]))
        out[node] = replace(lab, **aimed)
    return out


def _derive(overlay: Overlay, nodes: dict[str, Node], parts: dict[str, _Part]) -> None:
    """The overlay's objects on each of its nodes. The lab must have passed validate's node rules."""
    loc = overlay.loc
    bridges = {node: next(i for i in parts[node].interfaces if i.ns == HOST and i.name == name)
               for node, name in overlay.bridges}
    subnets = {node: pod_subnet(bridge) for node, bridge in bridges.items()}
    ips = {node: underlay(nodes[node]).ip for node in bridges}
    macs = vtep_macs(overlay, nodes) if overlay.kind == VXLAN else {}
    for node, bridge in bridges.items():
        part, me = parts[node], nodes[node]
        others = [m for m in bridges if m != node]
        if overlay.kind in (HOST_GW, VXLAN):
            if not any(s.ns == HOST and s.key == pools.FORWARDING[4] for s in part.sysctls):
                part.sysctls.append(Sysctl(HOST, pools.FORWARDING[4], 1, loc, node))
            if overlay.masquerade:
                part.masquerades.append(Masquerade(HOST, bridge.name, loc, tuple(map(str, subnets.values())), node))
        mtu = me.mtu - VXLAN_OVERHEAD if overlay.mtu is None else overlay.mtu
        device = overlay.device
        if overlay.kind == HOST_GW:
            part.routes += [Route(HOST, str(subnets[m]), str(ips[m]), me.dev, loc, node=node) for m in others]
        elif overlay.kind == VXLAN:
            vtep = Vxlan(overlay.vni, str(ips[node]), me.dev, overlay.port, learning=False)
            part.interfaces.append(Interface(HOST, device, "vxlan", loc,
                                             (Address(f"{subnets[node].network_address}/32", loc),), mtu,
                                             macs[node], node=node, vxlan=vtep))
            for m in others:
                gateway = str(subnets[m].network_address)
                part.neighbours.append(Neighbour(HOST, device, gateway, macs[m], loc, node))
                part.fdbs.append(Fdb(HOST, device, macs[m], str(ips[m]), loc, node=node))
                part.routes.append(Route(HOST, str(subnets[m]), gateway, device, loc, node=node, onlink=True))
        elif overlay.kind == L2:
            vtep = Vxlan(overlay.vni, str(ips[node]), me.dev, overlay.port, learning=True)
            part.interfaces.append(Interface(HOST, device, "vxlan", loc, (), mtu, master=bridge.name, node=node,
                                             vxlan=vtep))
            part.fdbs += [Fdb(HOST, device, FLOOD, str(ips[m]), loc, append=True, node=node) for m in others]
