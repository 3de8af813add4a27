"""What a lab file calls. It only records: it never renders and never touches the host.

Every object remembers the lab-file line that made it, so that validation and the generated scripts can point
back at it. Misuse that cannot be recorded as a value (a wrong type, a port joined twice) is noted as a problem
and reported with the other diagnostics, rather than raised, so one run shows every mistake.
"""

from __future__ import annotations

import os
import sys
from functools import cache

from . import model
from .model import HOST, Diagnostic, Loc

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

# Labs made since the loader last looked; the loader reads and clears this.
made: list["Lab"] = []


@cache  # one lookup per file, not one per object a big lab makes
def _in_netgen(filename: str) -> bool:
    return os.path.dirname(os.path.abspath(filename)) == _PACKAGE_DIR


_loc = cache(Loc)  # one Loc per line of the lab, shared by the objects a loop makes there


def _caller() -> Loc:
    """The innermost frame outside netgen: the user's line, even inside their own helper functions."""
    frame = sys._getframe(1)
    while frame is not None and _in_netgen(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return Loc("<unknown>", 0)
    return _loc(frame.f_code.co_filename, frame.f_lineno)


class Lab:
    """A lab: named namespaces, the host, and what connects them; or nodes (machines), each with its own.

    lab = Lab("docker0")
    """

    def __init__(self, name: str):
        self._loc = _caller()
        self._problems: list[Diagnostic] = []
        self.name = self._text(name, "lab name", self._loc)
        self.host = Netns(self, HOST, self._loc, host=True)
        self._namespaces: list[Netns] = []
        self._ports: list[Port] = []
        self._bridges: list[Bridge] = []
        self._veths: list[model.Veth] = []
        self._routes: list[model.Route] = []
        self._sysctls: list[model.Sysctl] = []
        self._expectations: list[model.Expectation] = []
        self._masquerades: list[model.Masquerade] = []
        self._publishes: list[model.Publish] = []
        self._services: list[model.Service] = []
        self._nodes: list[model.Node] = []
        self._overlays: list[model.Overlay] = []
        made.append(self)

    def netns(self, name: str, external: bool = False, adopt: bool = False) -> "Netns":
        """A network namespace the lab creates (and down deletes). In a lab with nodes, make it on a node instead:
        `node.netns(...)`.

        `external=True`: it exists before up; the lab puts its links in it but never makes, changes or removes the
        namespace itself. `adopt=True`: if it exists before up, up takes it over (only when it holds nothing the
        lab does not name: no other link, address or route, no process) and down deletes it like one it made.
        """
        return self._netns(name, external, adopt, "")

    def _netns(self, name: object, external: object, adopt: object, node: str) -> "Netns":
        loc = _caller()
        ns = Netns(self, self._text(name, "namespace name", loc), loc, node=node)
        ns.external, ns.adopt = external, adopt
        self._namespaces.append(ns)
        return ns

    def node(self, name: str, underlay: str, dev: str, ssh: str | None = None, mtu: int = 1500) -> "Node":
        """A machine of the lab: `n1 = lab.node("node1", underlay="192.168.60.11/24", dev="eth0")`.

        `underlay` is the node's own address (IPv4, with its prefix) on the device `dev`; both exist on the node
        before the lab, which checks them and never changes them. `ssh`: the address Ansible connects to (default:
        the underlay address). `mtu`: the underlay device's MTU, as it is (a vxlan device on it gets 50 less).
        Everything is then made on a node: `n1.netns("pod-1")`, `n1.host.bridge("cni0", ...)`; `lab.netns` and
        `lab.host` are for a lab without nodes. Each node gets scripts of its own (`netgen compile LAB -o DIR`
        writes DIR/NODE/up.sh...).
        """
        loc = _caller()
        node = Node(self, self._text(name, "node name", loc))
        self._nodes.append(model.Node(node.name, underlay, dev, loc, ssh, mtu))
        return node

    def host_gw(self, *bridges: "Bridge", masquerade: bool = True) -> None:
        """Pods on different nodes reach each other as flannel's host-gw backend routes them: one bridge per node
        (cni0, in the node's host) holds that node's pod subnet, its IPv4 subnet=; every other node routes it via
        the node's underlay address (`ip route replace 10.244.2.0/24 via 192.168.60.12 dev eth0`) and forwards
        (ip_forward on). The nodes must share one underlay subnet: the routes' gateways are on it.

        `masquerade=True` (flannel's --ip-masq, on in its manifest): what pods send out of the cluster leaves with
        the node's address; what they send to pods on any node keeps theirs.
        """
        self._overlay(model.HOST_GW, "host_gw", bridges, masquerade=masquerade)

    def vxlan_overlay(self, *bridges: "Bridge", vni: int = 1, port: int = 8472, device: str = "flannel.1",
                      mtu: int | None = None, macs: dict | None = None, masquerade: bool = True) -> None:
        """Pods on different nodes reach each other as flannel's vxlan backend carries them: one bridge per node
        (cni0, in the node's host) holds that node's pod subnet, its IPv4 subnet=, 10.244.N.0/24 say. Each node
        gets a vxlan device (`type vxlan id 1 local NODE_IP dev eth0 dstport 8472 nolearning`) with a fixed MAC, the
        address 10.244.N.0/32 and an MTU 50 below the underlay's; and for each other node M, netgen computes what
        flannel's daemon would write: a permanent neighbour (10.244.M.0 is M's MAC), a forwarding entry (M's MAC
        is at M's underlay address) and a route (10.244.M.0/24 via 10.244.M.0 onlink). Nothing is learned.

        Flannel's defaults: VNI 1, UDP port 8472, device flannel.1. `mtu`: the vxlan device's (default: the node's
        underlay MTU less 50). `macs`: the VTEP MAC of some nodes, `{n1: "0e:..."}`; the others are derived from the
        VNI and the node's underlay address (02, the VNI's low byte, the address: 02:01:c0:a8:3c:0b for VNI 1 and
        192.168.60.11). `masquerade`: as for host_gw.
        """
        self._overlay(model.VXLAN, "vxlan_overlay", bridges, vni=vni, port=port, device=device, mtu=mtu,
                      macs=macs, masquerade=masquerade)

    def l2_segment(self, *bridges: "Bridge", vni: int = 4097, port: int = 4789, device: str = "vx0",
                   mtu: int | None = None) -> None:
        """One L2 segment over nodes, like a Docker overlay network: each bridge (one per node, in the node's
        host) gets a vxlan port `device`, and one flood entry per other node (`bridge fdb append 00:00:00:00:00:00
        dev vx0 dst NODE_M self permanent`): a frame for an unknown MAC goes to every other node, whose vxlan
        device learns where each MAC lives. Every address on the segment, on whichever node, is different.

        Docker's defaults: VNI 4097 (its first overlay network's), UDP port 4789. `mtu`: the vxlan device's (default:
        the node's underlay MTU less 50; give the ports on the segment the same).
        """
        self._overlay(model.L2, "l2_segment", bridges, vni=vni, port=port, device=device, mtu=mtu)

    def _overlay(self, kind: str, call: str, bridges: tuple, macs: dict | None = None, **settings) -> None:
        loc = _caller()
        members = []
        for bridge in bridges:
            if isinstance(bridge, Bridge) and bridge.ns.host and bridge.ns.node:
                members.append((bridge.ns.node, bridge.name))
            else:
                self._problem(f"{call}() takes bridges in the nodes' hosts (node.host.bridge(...)), got {bridge!r}",
                              loc)
        if macs is not None and not isinstance(macs, dict):
            self._problem(f"macs= takes a dict of node to MAC, like {{n1: \"02:01:c0:a8:3c:0b\"}}, got {macs!r}", loc)
            macs = None
        pinned = tuple((node.name if isinstance(node, Node) else self._text(node, "node name", loc), mac)
                       for node, mac in (macs or {}).items())
        self._overlays.append(model.Overlay(kind, tuple(members), loc, macs=pinned, **settings))

    def veth(self, a: "Port", b: "Port") -> tuple["Port", "Port"]:
        """Join two ports, made with `ns.port()` or `bridge.port()`, as the two ends of one veth pair."""
        loc = _caller()
        for end in (a, b):
            if not isinstance(end, Port):
                self._problem(f"veth() takes two ports made with ns.port() or bridge.port(), got {end!r}", loc)
            elif end._joined is not None:
                self._problem(f"port {end.ref} is already one end of the veth pair made at line "
                              f"{end._joined.line}; make a new port for each pair", loc)
            else:
                continue
            for other in (a, b):  # the user did pass the other end to veth(): "never joined" would be wrong
                if isinstance(other, Port):
                    other._offered = True
            return a, b
        a._joined = b._joined = loc
        self._veths.append(model.Veth((a.ns.name, a.name), (b.ns.name, b.name), loc, (a.ns.node, b.ns.node)))
        return a, b

    def _pools(self, subnet: object, subnet6: object, loc: Loc) -> tuple:
        """The subnets given as subnet= (IPv4) and subnet6= (IPv6); one of the wrong family is a problem."""
        for value, colon, word in ((subnet, False, "subnet"), (subnet6, True, "subnet6")):
            if isinstance(value, str) and (":" in value) != colon:
                self._problem(f"{word}= takes an {'IPv6' if colon else 'IPv4'} prefix, got {value!r}; give it "
                              f"as {'subnet' if colon else 'subnet6'}=", loc)
        return tuple(v for v in (subnet, subnet6) if v is not None)

    def expect(self, ns: "Netns | str") -> "Expect":
        """What should (or must not) be reachable from namespace `ns`: `lab.expect("ns1").reaches("10.0.0.2")`.
        Across nodes, it is checked by the verify of the node `ns` is on."""
        if isinstance(ns, Netns):
            return Expect(self, ns.name, ns.node)
        return Expect(self, self._text(ns, "namespace name", _caller()), "")

    # -- recording helpers -------------------------------------------------------------------------------------

    def _problem(self, message: str, loc: Loc) -> None:
        self._problems.append(Diagnostic("error", message, loc))

    def _text(self, value: object, what: str, loc: Loc) -> str:
        if not isinstance(value, str):
            self._problem(f"{what} must be a string, got {value!r}", loc)
            return str(value)
        return value

    def _addresses(self, values: tuple, loc: Loc) -> list[model.Address]:
        """Addresses that are strings; anything else is reported once here and left out."""
        return [model.Address(v, loc) for v in values
                if isinstance(v, str) or self._problem(f"address must be a string like '10.0.0.1/24', got {v!r}", loc)]

    def to_model(self, source: str, sha256: str) -> model.Lab:
        problems = list(self._problems)
        for port in self._ports:
            if port._joined is None and not port._offered:
                problems.append(Diagnostic(
                    "error", f"port {port.ref} is never joined: pass it to lab.veth(...)", port._loc))
        interfaces = [b._model() for b in self._bridges]
        interfaces += [p._model() for p in self._ports if p._joined is not None]
        return model.Lab(
            name=self.name, source=source, sha256=sha256, loc=self._loc,
            namespaces=tuple(model.Namespace(ns.name, ns._loc, external=ns.external, adopt=ns.adopt, node=ns.node)
                             for ns in self._namespaces),
            interfaces=tuple(interfaces), veths=tuple(self._veths), routes=tuple(self._routes),
            sysctls=tuple(self._sysctls), expectations=tuple(self._expectations),
            masquerades=tuple(self._masquerades), publishes=tuple(self._publishes),
            services=tuple(self._services), nodes=tuple(self._nodes), overlays=tuple(self._overlays),
            problems=tuple(problems))


class Node:
    """A machine of the lab (lab.node()): `node.netns(...)` makes a namespace on it, `node.host` is its root
    namespace."""

    def __init__(self, lab: Lab, name: str):
        self.lab, self.name = lab, name
        self.host = Netns(lab, HOST, lab._loc, host=True, node=name)

    def __repr__(self) -> str:
        return f"<node {self.name}>"

    def netns(self, name: str, external: bool = False, adopt: bool = False) -> "Netns":
        """A network namespace on this node; as lab.netns() for a lab without nodes."""
        return self.lab._netns(name, external, adopt, self.name)


class Netns:
    """A network namespace; `lab.host` (or `node.host`) is the root namespace, which the lab uses but never creates
    or deletes."""

    def __init__(self, lab: Lab, name: str, loc: Loc, host: bool = False, node: str = ""):
        self.lab, self.name, self._loc, self.host, self.node = lab, name, loc, host, node
        self.external = self.adopt = False

    def __repr__(self) -> str:  # shown in messages, e.g. when a namespace is passed where a port belongs
        where = f"{self.node}/" if self.node else ""
        return f"<namespace {where}{self.name}>"

    def port(self, name: str, *addresses: str, mtu: int | None = None, mac: str | None = None,
             nodad: bool = False, subnet: str | None = None, subnet6: str | None = None) -> "Port":
        """An interface in this namespace that becomes one end of a veth pair: `ns.port("eth0", "10.0.0.2/24")`.

        Without an address of a family, a port on a segment with a pool of that family gets the next free one.
        `nodad=True`: its IPv6 addresses skip duplicate address detection (usable at once). `subnet=`/`subnet6=`
        make this port's segment a pool, as for a bridge.
        """
        loc = _caller()
        port = Port(self, self.lab._text(name, "interface name", loc), addresses, mtu, mac, None, loc)
        port.nodad, port.pools = nodad, self.lab._pools(subnet, subnet6, loc)
        return port

    def bridge(self, name: str, *addresses: str, mtu: int | None = None, mac: str | None = None,
               external: bool = False, subnet: str | None = None, subnet6: str | None = None,
               nodad: bool = False, adopt: bool = False) -> "Bridge":
        """A bridge (virtual switch) in this namespace, optionally with addresses of its own.

        `subnet="172.17.0.0/16"`, `subnet6="fd00:17::/64"`: address pools, as Docker gives docker0. The bridge
        takes the first host address (the gateway); each interface on its segment without an address of that
        family takes the next free one. `external=True`: the bridge exists before up (Docker's docker0, say); the
        lab attaches ports to it and verify checks it and its addresses, but up never makes or changes it and down
        never removes it. `adopt=True`: if it exists before up, up takes it over (only when it carries nothing the
        lab does not name: no other port, address or route) and down removes it like one it made.
        """
        loc = _caller()
        bridge = Bridge(self, self.lab._text(name, "bridge name", loc), addresses, mtu, mac, loc)
        bridge.external, bridge.nodad, bridge.adopt = external, nodad, adopt
        bridge.pools = self.lab._pools(subnet, subnet6, loc)
        self.lab._bridges.append(bridge)
        return bridge

    def publish(self, port: int, target: "Netns | str", to_port: int | None = None, proto: str = "tcp",
                address: str | None = None) -> None:
        """Publish a port of the host, like `docker run -p 8080:80`: `lab.host.publish(8080, nginx, 80)`.

        Connections to `port` on every local address of the host (or on `address` alone), from outside and from
        the host itself, go to `target` (a namespace: its first address of each family; or an address) on
        `to_port` (default: the same). `proto` is "tcp" or "udp". Not on 127.0.0.1 or ::1 (docs/writing-labs.md).
        """
        loc = _caller()
        name = target.name if isinstance(target, Netns) else self.lab._text(target, "publish target", loc)
        self.lab._publishes.append(model.Publish(self.name, port, name, port if to_port is None else to_port, proto,
                                                 address, loc, self.node))

    def service(self, name: str, command: "str | list[str]") -> None:
        """A process that runs inside this namespace: `nginx.service("web", "python3 -m http.server 80")`.

        `command` is a string, run by `sh -c`, or a list of words run as they are (`["python3", "-m", ...]`).
        up starts it detached once the namespace is built (in `/`, its output appended to the log
        STATE_DIR/LAB.NS.NAME.log) and records its pid and start time; verify checks that it runs; down stops it
        first. It runs with what the host has: a service needs what its command needs (python3 here).
        """
        loc = _caller()
        if isinstance(command, list):
            command = tuple(command)
        self.lab._services.append(model.Service(self.name, self.lab._text(name, "service name", loc), command, loc,
                                                self.node))

    def sysctl(self, key: str, value: int | str) -> None:
        """A network sysctl in this namespace, e.g. `router.sysctl("net.ipv4.ip_forward", 1)`. In the host, up
        records the value it replaces and down puts it back."""
        loc = _caller()
        self.lab._sysctls.append(model.Sysctl(self.name, self.lab._text(key, "sysctl name", loc), value, loc,
                                              self.node))

    def route(self, dest: str, via: "str | Port | Bridge | None" = None, dev: "str | Port | Bridge | None" = None,
              family: int | None = None) -> None:
        """A route in this namespace: `ns.route("default", via="172.17.0.1")` or `ns.route("10.1.0.0/16", dev=p)`.

        `family=6` makes a gateway-less `default` an IPv6 route; with a gateway the family follows it.
        `via=docker0` (a bridge or port): its addresses are the gateways, one route per family it has (both for a
        dual-stack pool), or the one of `family`.
        """
        loc = _caller()
        lab = self.lab
        if isinstance(dev, (Port, Bridge)):
            dev = dev.name
        via_link = None
        if isinstance(via, (Port, Bridge)):
            via, via_link = None, (via.ns.name, via.name)
        self.lab._routes.append(model.Route(
            self.name, lab._text(dest, "route destination", loc),
            None if via is None else lab._text(via, "gateway", loc),
            None if dev is None else lab._text(dev, "device", loc), loc, family, via_link, self.node))


class _Link:
    nodad: object = False
    adopt: object = False
    pools: tuple = ()

    def __init__(self, ns: Netns, name: str, addresses: tuple, mtu, mac, loc: Loc):
        self.ns, self.name, self.mtu, self.mac, self._loc = ns, name, mtu, mac, loc
        self._addresses = ns.lab._addresses(addresses, loc)

    @property
    def ref(self) -> str:
        return f"{self.ns.name}/{self.name}"

    def __repr__(self) -> str:  # shown in messages: <bridge host/br0>, <port ns1/eth0>, <bridge node1/host/cni0>
        where = f"{self.ns.node}/" if self.ns.node else ""
        return f"<{type(self).__name__.lower()} {where}{self.ref}>"

    def addr(self, *addresses: str):
        """Add more addresses (CIDR, IPv4 or IPv6) to this interface."""
        self._addresses += self.ns.lab._addresses(addresses, _caller())
        return self

    def masquerade(self, not_to: "str | list[str] | None" = None) -> "_Link":
        """Outbound NAT, like Docker's for docker0: traffic from this link's subnets that leaves the namespace by
        another link gets the address it leaves by. The rules live in the lab's own nftables table.

        `not_to`: destinations (a prefix, or a list of them) that keep the sender's address, as flannel leaves
        pod-to-pod traffic alone: `cni0.masquerade(not_to="10.244.0.0/16")`."""
        loc = _caller()
        if not_to is None:
            ends = ()
        elif isinstance(not_to, (list, tuple)):
            ends = tuple(not_to)
        else:
            ends = (not_to,)  # validate names whatever is not a prefix
        self.ns.lab._masquerades.append(model.Masquerade(self.ns.name, self.name, loc, ends, self.ns.node))
        return self


class Port(_Link):
    """One end of a veth pair, possibly a port of a bridge in the same namespace."""

    def __init__(self, ns: Netns, name: str, addresses: tuple, mtu, mac, master: str | None, loc: Loc):
        super().__init__(ns, name, addresses, mtu, mac, loc)
        self.master = master
        self.hairpin = False
        self._joined: Loc | None = None
        self._offered = False  # passed to a veth() call that failed
        ns.lab._ports.append(self)

    def _model(self) -> model.Interface:
        return model.Interface(self.ns.name, self.name, "veth", self._loc, tuple(self._addresses),
                               self.mtu, self.mac, self.master, pools=self.pools, hairpin=self.hairpin,
                               nodad=self.nodad, node=self.ns.node)


class Bridge(_Link):
    def port(self, name: str, *addresses: str, mtu: int | None = None, mac: str | None = None,
             hairpin: bool = False) -> Port:
        """A veth end in the bridge's namespace, enslaved to this bridge. `hairpin=True`: the bridge may send a
        frame back out of this port (a container reaching itself through a published port)."""
        loc = _caller()
        port = Port(self.ns, self.ns.lab._text(name, "interface name", loc), addresses, mtu, mac, self.name, loc)
        port.hairpin = hairpin
        return port

    def _model(self) -> model.Interface:
        return model.Interface(self.ns.name, self.name, "bridge", self._loc, tuple(self._addresses),
                               self.mtu, self.mac, external=self.external, pools=self.pools, nodad=self.nodad,
                               adopt=self.adopt, node=self.ns.node)


class Expect:
    def __init__(self, lab: Lab, ns: str, node: str):
        self.lab, self.ns, self.node = lab, ns, node

    def reaches(self, address: "str | Netns", tcp: int | None = None) -> "Expect":
        """The namespace gets an answer from `address`: an ICMP echo reply, or a TCP connection to port `tcp`.
        A namespace stands for its first address of each family (IPv4 and IPv6: one check each)."""
        return self._add(address, True, tcp)

    def cannot_reach(self, address: "str | Netns", tcp: int | None = None) -> "Expect":
        """The namespace must get no answer from `address` (isolation)."""
        return self._add(address, False, tcp)

    def _add(self, address: "str | Netns", reach: bool, tcp) -> "Expect":
        loc = _caller()
        target = address.name if isinstance(address, Netns) else self.lab._text(address, "address", loc)
        self.lab._expectations.append(model.Expectation(self.ns, target, reach, tcp, loc, self.node))
        return self
