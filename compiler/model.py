"""The lab as plain data: what every back end reads. Imports nothing else from netgen.

Values are kept as the user wrote them; validate decides whether they are acceptable and plan normalises them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HOST = "host"  # how the root namespace is named in scripts and messages


@dataclass(frozen=True)
class Loc:
    """Where in the user's lab file an object was made."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Diagnostic:
    level: str  # "error" or "warning"
    message: str
    loc: Loc | None = None

    def __str__(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        prefix = "warning: " if self.level == "warning" else ""
        return f"{where}{prefix}{self.message}"


@dataclass(frozen=True)
class Address:
    cidr: str
    loc: Loc
    note: str = ""  # where an address from a pool came from, for the scripts' comments (pools.resolve sets it)


@dataclass(frozen=True)
class Node:
    """A machine of the lab. Its underlay address and device exist before the lab and are never changed by it."""

    name: str
    underlay: str  # the node's underlay address with prefix, e.g. "192.168.60.11/24"
    dev: str  # the underlay device: exists on the node before the lab, never changed by it
    loc: Loc
    ssh: str | None = None  # address Ansible connects to (issue 19); None: the underlay address
    mtu: object = 1500  # the underlay device's MTU, as it is: a vxlan device on it gets 50 less


# Every object below says which node it is on: "" is the only node of a lab without nodes.


@dataclass(frozen=True)
class Namespace:
    name: str
    loc: Loc
    host: bool = False
    external: bool = False  # exists before up; the lab puts links in it but never makes, changes or removes it
    adopt: bool = False  # may exist before up: up takes it over (if it holds only what the lab names), down removes it
    node: str = ""


@dataclass(frozen=True)
class Vxlan:
    """What a vxlan device is made with: `type vxlan id VNI local LOCAL dev DEV dstport PORT [no]learning`."""

    vni: int
    local: str  # the node's underlay address, without prefix
    dev: str  # the underlay device
    port: int  # the UDP port
    learning: bool


@dataclass(frozen=True)
class Interface:
    """A link the lab creates: one end of a veth pair, or a bridge. A lab's split per node (nodes.split) also
    makes vxlan devices, and names the node's underlay device (kind "device", external: never made or changed)."""

    ns: str
    name: str
    kind: str  # "veth" or "bridge"; from nodes.split, "vxlan" or "device"
    loc: Loc
    addresses: tuple[Address, ...] = ()
    mtu: object = None
    mac: object = None
    master: str | None = None  # a bridge in the same namespace
    external: bool = False  # exists before up; the lab uses it and never makes, changes or removes it
    pools: tuple[str, ...] = ()  # subnets: this link takes the first host address, its segment the next ones
    hairpin: object = False  # a bridge port that sends frames back out the port they came in on
    nodad: object = False  # its IPv6 addresses skip duplicate address detection
    adopt: object = False  # a bridge that may exist before up: up takes it over, down removes it
    node: str = ""
    vxlan: Vxlan | None = None  # for kind "vxlan"

    @property
    def ref(self) -> str:
        return f"{self.ns}/{self.name}"


@dataclass(frozen=True)
class Veth:
    """A veth pair: `a` and `b` are (namespace, name) of its two ends."""

    a: tuple[str, str]
    b: tuple[str, str]
    loc: Loc
    nodes: tuple[str, str] = ("", "")  # the node of each end: one and the same, as a veth lives inside one machine


@dataclass(frozen=True)
class Route:
    ns: str
    dest: str  # a prefix or "default"
    via: str | None
    dev: str | None
    loc: Loc
    family: int | None = None  # 4 or 6 for "default"; None means "from via", else IPv4
    via_link: tuple[str, str] | None = None  # (namespace, link): the gateway is that link's address of each family
    node: str = ""
    onlink: bool = False  # the gateway is on the link though no subnet of it says so (flannel's routes via VTEPs)


@dataclass(frozen=True)
class Sysctl:
    ns: str
    key: str  # dotted, e.g. net.ipv4.ip_forward
    value: object
    loc: Loc
    node: str = ""


@dataclass(frozen=True)
class Neighbour:
    """A permanent neighbour entry: `ip neigh replace ADDRESS lladdr MAC dev DEV nud permanent`."""

    ns: str
    dev: str
    address: str
    mac: str
    loc: Loc
    node: str = ""


@dataclass(frozen=True)
class Fdb:
    """A permanent forwarding entry of a vxlan device: frames for `mac` go to the VTEP at `dst`
    (`bridge fdb replace MAC dev DEV dst DST self permanent`; `append` for the flood list's 00:00:00:00:00:00,
    which holds one entry per remote VTEP)."""

    ns: str
    dev: str
    mac: str
    dst: str
    loc: Loc
    append: bool = False
    node: str = ""


@dataclass(frozen=True)
class Masquerade:
    """Outbound NAT: traffic from the link's subnets leaving by another link gets the address it leaves by."""

    ns: str
    link: str
    loc: Loc
    not_to: tuple[str, ...] = ()  # destination prefixes left alone (flannel's pod network: pod-to-pod traffic)
    node: str = ""


@dataclass(frozen=True)
class Publish:
    """A published port: `port` on the host's local addresses (or on `address`) forwarded to `target`:`to_port`."""

    ns: str
    port: object
    target: str  # a namespace of the lab, or an address
    to_port: object
    proto: object
    address: str | None
    loc: Loc
    node: str = ""


@dataclass(frozen=True)
class Service:
    """A process up starts detached inside namespace `ns`, verify checks runs, and down stops."""

    ns: str
    name: str
    command: object  # a string, run by `sh -c`; or the words of an argv (a tuple of strings)
    loc: Loc
    node: str = ""


@dataclass(frozen=True)
class Expectation:
    ns: str
    target: str  # an address, or a namespace of the lab (each of its addresses' families is checked)
    reach: bool  # False: "must not reach"
    tcp: object  # a port number, or None for ICMP
    loc: Loc
    node: str = ""  # of the namespace it is checked from; "" for a named namespace: that namespace's node


HOST_GW, VXLAN, L2 = "host-gw", "vxlan", "l2"  # the kinds of Overlay


@dataclass(frozen=True)
class Overlay:
    """What joins bridges on different nodes, one per node in the node's host (nodes.split derives each node's part):

    host-gw: flannel's host-gw backend; each bridge's IPv4 subnet is its node's pod subnet, routed by the other
      nodes via the node's underlay address.
    vxlan: flannel's vxlan backend; a vxlan device per node (`device`, VTEP MAC derived or pinned in `macs`), with a
      neighbour, fdb entry and onlink route per other node.
    l2: one L2 segment: a vxlan port on each bridge, with a flood entry per other node.
    """

    kind: str
    bridges: tuple[tuple[str, str], ...]  # (node, bridge name in that node's host)
    loc: Loc
    vni: object = None
    port: object = None  # UDP
    device: object = None  # the vxlan device's name
    mtu: object = None  # of the vxlan device; None: 50 below the node's underlay MTU
    masquerade: object = False  # pod traffic leaving the cluster is masqueraded (not pod-to-pod traffic)
    macs: tuple[tuple[str, str], ...] = ()  # (node, VTEP MAC) pinned; the others are derived


@dataclass(frozen=True)
class Lab:
    name: str
    source: str  # the lab file as the user named it
    sha256: str
    loc: Loc
    namespaces: tuple[Namespace, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    veths: tuple[Veth, ...] = ()
    routes: tuple[Route, ...] = ()
    sysctls: tuple[Sysctl, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    masquerades: tuple[Masquerade, ...] = ()
    publishes: tuple[Publish, ...] = ()
    services: tuple[Service, ...] = ()
    nodes: tuple[Node, ...] = ()  # none: the lab is one node, everything on it
    overlays: tuple[Overlay, ...] = ()
    neighbours: tuple[Neighbour, ...] = ()  # made by nodes.split
    fdbs: tuple[Fdb, ...] = ()  # made by nodes.split
    answers: tuple[Expectation, ...] = ()  # made by nodes.split: other nodes' TCP expectations, aimed at addresses
    problems: tuple[Diagnostic, ...] = field(default=())  # misuse the DSL noticed while recording

