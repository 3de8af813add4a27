"""Pictures of a lab's topology, as Graphviz DOT and as a Mermaid flowchart.

Both are pure functions of the model: the same lab always gives byte-identical text. A lab with nodes is drawn as
its nodes' labs (nodes.split, pools given out): a box per node around its namespaces, with its underlay and vxlan
devices, and the overlays' links between the nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from . import nodes as node_labs
from . import pools
from .model import HOST, HOST_GW, VXLAN, Lab

EMPTY = "(no interfaces)"  # stands in an empty namespace, whose box would otherwise not be drawn at all
EXTERNAL = "(external)"
UNDERLAY = "(underlay)"


@dataclass(frozen=True)
class _Node:
    id: str
    lines: tuple[str, ...]  # the label: the name, then the external mark and addresses; all user text is here
    kind: str  # "veth", "bridge", "vxlan", "device" (a node's underlay), or "empty" for a placeholder
    external: bool = False


@dataclass(frozen=True)
class _Topology:
    clusters: tuple[tuple[str, tuple[_Node, ...]], ...]  # (namespace name, its nodes), the host first
    veths: tuple[tuple[str, str], ...]  # node ids of the two ends of each pair
    ports: tuple[tuple[str, str], ...]  # (port node id, bridge node id)
    # A lab with nodes: (node name, the indexes of its clusters), and the overlays' (id, id, label) between nodes
    machines: tuple[tuple[str, tuple[int, ...]], ...] = ()
    overlay: tuple[tuple[str, str, str], ...] = ()


class _Drawn:
    """The clusters, veths and ports of one lab (or node's lab) as they are found, with ids from a shared counter."""

    def __init__(self, lab: Lab, counter):
        self.members: dict[str, list[_Node]] = {HOST: []}
        for ns in lab.namespaces:
            self.members.setdefault(ns.name, [])
        self.ids: dict[tuple[str, str], str] = {}
        self.counter = counter
        for iface in lab.interfaces:
            self.node(iface.ns, iface.name, iface.kind, tuple(a.cidr for a in iface.addresses), iface.external)
        # A hand-built model may name ends the lab does not define; they are drawn rather than dropped.
        self.veths = tuple((self.node(*v.a, "veth"), self.node(*v.b, "veth")) for v in lab.veths)
        self.ports = tuple((self.ids[i.ns, i.name], self.node(i.ns, i.master, "bridge"))
                           for i in lab.interfaces if i.master is not None)
        for members in self.members.values():
            if not members:
                members.append(_Node(f"n{next(counter)}", (EMPTY,), "empty"))

    def node(self, ns: str, name: str, kind: str, addresses: tuple[str, ...] = (), external: bool = False) -> str:
        # The first interface of a name wins: validation reports duplicates, the picture need not.
        if (ns, name) not in self.ids:
            self.ids[ns, name] = f"n{next(self.counter)}"
            mark = (UNDERLAY,) if kind == "device" else (EXTERNAL,) if external else ()
            self.members.setdefault(ns, []).append(_Node(self.ids[ns, name], (name, *mark, *addresses), kind,
                                                         external))
        return self.ids[ns, name]


def _topology(lab: Lab) -> _Topology:
    """What both pictures draw, with ids n0, n1... so no user text ever has to be an id."""
    counter = count()
    if not lab.nodes:
        one = _Drawn(lab, counter)
        return _Topology(tuple((ns, tuple(m)) for ns, m in one.members.items()), one.veths, one.ports)
    drawn = {name: _Drawn(pools.resolve(node_lab), counter) for name, node_lab in node_labs.split(lab).items()}
    clusters, machines = [], []
    for name, one in drawn.items():
        machines.append((name, tuple(range(len(clusters), len(clusters) + len(one.members)))))
        clusters += [(ns, tuple(m)) for ns, m in one.members.items()]
    by_node = {n.name: n for n in lab.nodes}
    overlay = []
    for o in lab.overlays:
        if o.kind == HOST_GW:  # the pods' packets go as they are, from underlay device to underlay device
            ends = {node: drawn[node].ids[HOST, by_node[node].dev] for node, _ in o.bridges}
            label = "host-gw"
        else:
            ends = {node: drawn[node].ids[HOST, o.device] for node, _ in o.bridges}
            label = f"{'vxlan' if o.kind == VXLAN else 'L2 segment, vxlan'} {o.vni}, udp/{o.port}"
        members = list(ends)
        overlay += [(ends[a], ends[b], label) for i, a in enumerate(members) for b in members[i + 1:]]
    return _Topology(tuple(clusters), tuple(v for one in drawn.values() for v in one.veths),
                     tuple(p for one in drawn.values() for p in one.ports), tuple(machines), tuple(overlay))


def _dot_quote(text: str) -> str:
    # Graphviz reads `&amp;` in any string as `&`, so a name with `&` in it needs `&amp;` to come out as written.
    text = text.replace("&", "&amp;").replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\n", "\\n").replace("\r", "\\r") + '"'


_DOT_LOOK = {
    "veth": "shape=ellipse",
    "bridge": 'shape=box, style="rounded,filled", fillcolor=gray90',
    "vxlan": 'shape=parallelogram, style=filled, fillcolor=lightblue',
    "external": 'shape=box, style="rounded,dashed"',  # the lab never makes it: drawn like something outside
    "empty": "shape=plaintext, fontcolor=gray50",
}


def _grouped(topo: _Topology) -> list[tuple[str | None, list[int]]]:
    """The clusters as drawn: inside a box per node (name), or, in a lab without nodes, as they are (None)."""
    if not topo.machines:
        return [(None, list(range(len(topo.clusters))))]
    return [(name, list(indexes)) for name, indexes in topo.machines]


def to_dot(lab: Lab) -> str:
    """The lab as an undirected Graphviz graph: a cluster per namespace (inside one per node), a node per
    interface."""
    topo = _topology(lab)
    out = [
        f"graph {_dot_quote(lab.name)} {{",
        "  // Bold lines are veth pairs; dotted lines join a bridge port to its bridge"
        + ("; dashed lines are the overlays between nodes." if topo.machines else "."),
        "  graph [rankdir=LR];",
    ]
    boxes = count(len(topo.clusters))
    for machine, indexes in _grouped(topo):
        pad = "  " if machine is None else "    "
        if machine is not None:
            out.append(f"  subgraph cluster_{next(boxes)} {{")
            out.append(f"    label={_dot_quote(machine)};")
            out.append("    style=bold;")
        for i in indexes:
            ns, nodes = topo.clusters[i]
            out.append(f"{pad}subgraph cluster_{i} {{")
            out.append(f"{pad}  label={_dot_quote(ns)};")
            for n in nodes:
                label = _dot_quote("\n".join(n.lines))
                out.append(f"{pad}  {n.id} [label={label}, {_DOT_LOOK['external' if n.external else n.kind]}];")
            out.append(f"{pad}}}")
        if machine is not None:
            out.append("  }")
    out += [f"  {a} -- {b} [penwidth=2];" for a, b in topo.veths]
    out += [f"  {port} -- {bridge} [style=dotted];" for port, bridge in topo.ports]
    out += [f"  {a} -- {b} [style=dashed, label={_dot_quote(label)}];" for a, b, label in topo.overlay]
    out.append("}")
    return "\n".join(out) + "\n"


# Characters that pass into a quoted Mermaid label as they are; anything else becomes an entity code, since
# Mermaid reads `#...;` as an entity, `"` as the end of the label, and `<`, `>`, `&` as HTML.
_MERMAID_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_./:,+=@()%")


def _mermaid_quote(lines: tuple[str, ...]) -> str:
    def escape(text: str) -> str:
        return "".join(c if c in _MERMAID_PLAIN else "#quot;" if c == '"' else f"#{ord(c)};" for c in text)

    return '"' + ("<br/>".join(map(escape, lines)) or " ") + '"'  # Mermaid refuses an empty label


_MERMAID_SHAPE = {"veth": "({})", "bridge": "[{}]", "vxlan": "[/{}/]", "device": "[{}]", "empty": "[{}]:::empty"}


def to_mermaid(lab: Lab) -> str:
    """The lab as a Mermaid flowchart: a subgraph per namespace (inside one per node), a node per interface."""
    topo = _topology(lab)
    out = [
        "flowchart LR",
        "  %% Thick lines are veth pairs; dotted lines join a bridge port to its bridge"
        + ("; labelled dotted lines are the overlays between nodes." if topo.machines else "."),
        "  classDef external stroke-dasharray: 5 5",
        "  classDef empty fill:none,stroke:none",
    ]
    boxes = count(len(topo.clusters))
    for machine, indexes in _grouped(topo):
        pad = "  " if machine is None else "    "
        if machine is not None:
            out.append(f"  subgraph c{next(boxes)} [{_mermaid_quote((machine,))}]")
        for i in indexes:
            ns, nodes = topo.clusters[i]
            out.append(f"{pad}subgraph c{i} [{_mermaid_quote((ns,))}]")
            for n in nodes:
                shape = _MERMAID_SHAPE[n.kind].format(_mermaid_quote(n.lines))
                out.append(f"{pad}  {n.id}{shape}" + (":::external" if n.external else ""))
            out.append(f"{pad}end")
        if machine is not None:
            out.append("  end")
    out += [f"  {a} === {b}" for a, b in topo.veths]
    out += [f"  {port} -.- {bridge}" for port, bridge in topo.ports]
    out += [f"  {a} -.-|{_mermaid_quote((label,))}| {b}" for a, b, label in topo.overlay]
    return "\n".join(out) + "\n"
