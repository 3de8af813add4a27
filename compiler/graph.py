"""Pictures of a lab's topology, as Graphviz DOT and as a Mermaid flowchart.

Both are pure functions of the model: the same lab always gives byte-identical text.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import count

from .model import HOST, Lab

EMPTY = "(no interfaces)"  # stands in an empty namespace, whose box would otherwise not be drawn at all
EXTERNAL = "(external)"


@dataclass(frozen=True)
class _Node:
    id: str
    lines: tuple[str, ...]  # the label: the name, then the external mark and addresses; all user text is here
    kind: str  # "veth", "bridge", or "empty" for a placeholder
    external: bool = False


@dataclass(frozen=True)
class _Topology:
    clusters: tuple[tuple[str, tuple[_Node, ...]], ...]  # (namespace name, its nodes), the host first
    veths: tuple[tuple[str, str], ...]  # node ids of the two ends of each pair
    ports: tuple[tuple[str, str], ...]  # (port node id, bridge node id)


def _topology(lab: Lab) -> _Topology:
    """What both pictures draw, with ids n0, n1... so no user text ever has to be an id."""
    members: dict[str, list[_Node]] = {HOST: []}
    for ns in lab.namespaces:
        members.setdefault(ns.name, [])
    ids: dict[tuple[str, str], str] = {}
    counter = count()

    def node(ns: str, name: str, kind: str, addresses: tuple[str, ...] = (), external: bool = False) -> str:
        # The first interface of a name wins: validation reports duplicates, the picture need not.
        if (ns, name) not in ids:
            ids[ns, name] = f"n{next(counter)}"
            lines = (name,) + ((EXTERNAL,) if external else ()) + addresses
            members.setdefault(ns, []).append(_Node(ids[ns, name], lines, kind, external))
        return ids[ns, name]

    for iface in lab.interfaces:
        node(iface.ns, iface.name, iface.kind, tuple(a.cidr for a in iface.addresses), iface.external)
    # A hand-built model may name ends the lab does not define; they are drawn rather than dropped.
    veths = tuple((node(*v.a, "veth"), node(*v.b, "veth")) for v in lab.veths)
    ports = tuple((ids[i.ns, i.name], node(i.ns, i.master, "bridge"))
                  for i in lab.interfaces if i.master is not None)
    for nodes in members.values():
        if not nodes:
            nodes.append(_Node(f"n{next(counter)}", (EMPTY,), "empty"))
    return _Topology(tuple((ns, tuple(nodes)) for ns, nodes in members.items()), veths, ports)


def _dot_quote(text: str) -> str:
    # Graphviz reads `&amp;` in any string as `&`, so a name with `&` in it needs `&amp;` to come out as written.
    text = text.replace("&", "&amp;").replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\n", "\\n").replace("\r", "\\r") + '"'


_DOT_LOOK = {
    "veth": "shape=ellipse",
    "bridge": 'shape=box, style="rounded,filled", fillcolor=gray90',
    "external": 'shape=box, style="rounded,dashed"',  # the lab never makes it: drawn like something outside
    "empty": "shape=plaintext, fontcolor=gray50",
}


def to_dot(lab: Lab) -> str:
    """The lab as an undirected Graphviz graph: a cluster per namespace, a node per interface."""
    topo = _topology(lab)
    out = [
        f"graph {_dot_quote(lab.name)} {{",
        "  // Bold lines are veth pairs; dotted lines join a bridge port to its bridge.",
        "  graph [rankdir=LR];",
    ]
    for i, (ns, nodes) in enumerate(topo.clusters):
        out.append(f"  subgraph cluster_{i} {{")
        out.append(f"    label={_dot_quote(ns)};")
        for n in nodes:
            label = _dot_quote("\n".join(n.lines))
            out.append(f"    {n.id} [label={label}, {_DOT_LOOK['external' if n.external else n.kind]}];")
        out.append("  }")
    out += [f"  {a} -- {b} [penwidth=2];" for a, b in topo.veths]
    out += [f"  {port} -- {bridge} [style=dotted];" for port, bridge in topo.ports]
    out.append("}")
    return "\n".join(out) + "\n"


# Characters that pass into a quoted Mermaid label as they are; anything else becomes an entity code, since
# Mermaid reads `#...;` as an entity, `"` as the end of the label, and `<`, `>`, `&` as HTML.
_MERMAID_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -_./:,+=@()%")


def _mermaid_quote(lines: tuple[str, ...]) -> str:
    def escape(text: str) -> str:
        return "".join(c if c in _MERMAID_PLAIN else "#quot;" if c == '"' else f"#{ord(c)};" for c in text)

    return '"' + ("<br/>".join(map(escape, lines)) or " ") + '"'  # Mermaid refuses an empty label


_MERMAID_SHAPE = {"veth": "({})", "bridge": "[{}]", "empty": "[{}]:::empty"}


def to_mermaid(lab: Lab) -> str:
    """The lab as a Mermaid flowchart: a subgraph per namespace, a node per interface."""
    topo = _topology(lab)
    out = [
        "flowchart LR",
        "  %% Thick lines are veth pairs; dotted lines join a bridge port to its bridge.",
        "  classDef external stroke-dasharray: 5 5",
        "  classDef empty fill:none,stroke:none",
    ]
    for i, (ns, nodes) in enumerate(topo.clusters):
        out.append(f"  subgraph c{i} [{_mermaid_quote((ns,))}]")
        for n in nodes:
            shape = _MERMAID_SHAPE[n.kind].format(_mermaid_quote(n.lines))
            out.append(f"    {n.id}{shape}" + (":::external" if n.external else ""))
        out.append("  end")
    out += [f"  {a} === {b}" for a, b in topo.veths]
    out += [f"  {port} -.- {bridge}" for port, bridge in topo.ports]
    return "\n".join(out) + "\n"
