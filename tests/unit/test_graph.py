"""The DOT and Mermaid pictures draw every namespace, interface, veth pair and bridge port of a lab, whatever its
names, and Graphviz accepts the DOT."""

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from html import unescape

import pytest
from helpers import EXAMPLES, NODE_EXAMPLES, REPO

from netgen import graph
from netgen.loader import load
from netgen.model import HOST, Address, Interface, Lab, Loc, Namespace, Veth

# The examples, and the test labs that add a bridge inside a namespace, a pair inside one namespace and an
# external bridge.
LABS = {e: REPO / "examples" / f"{e}.py" for e in EXAMPLES} | {
    name: REPO / "tests" / "labs" / f"{name}.py" for name in ("features", "external")}


@pytest.fixture(scope="module")
def labs() -> dict[str, Lab]:
    return {name: load(str(path)) for name, path in LABS.items()}


@dataclass
class Drawing:
    """What a picture says, read back from its text: enough to compare with the lab."""

    clusters: dict[str, list[str]] = field(default_factory=dict)  # namespace label -> its node ids
    labels: dict[str, str] = field(default_factory=dict)  # node id -> label text, lines joined by "\n"
    looks: dict[str, str] = field(default_factory=dict)  # node id -> how it is drawn
    veths: list[frozenset[str]] = field(default_factory=list)  # node ids of each veth pair's ends
    ports: list[tuple[str, str]] = field(default_factory=list)  # (port node id, bridge node id)
    machines: dict[str, list[str]] = field(default_factory=dict)  # a lab with nodes: node -> its namespaces' labels
    overlay: list[tuple[frozenset[str], str]] = field(default_factory=list)  # (node ids, label) between nodes

    def node(self, ns: str, name: str) -> str:
        """The one node in the box of `ns` whose label starts with the line `name`."""
        found = [n for n in self.clusters[ns] if f"{self.labels[n]}\n".startswith(f"{name}\n")]
        assert len(found) == 1, f"{ns}/{name}: {len(found)} nodes in {self.clusters[ns]}"
        return found[0]


_DOT_STR = r'"((?:[^"\\]|\\.)*)"'


def _dot_unquote(text: str) -> str:
    """The text Graphviz draws for a quoted string: escapes undone, and entities, of which to_dot writes `&amp;`."""
    return re.sub(r"\\(.)", lambda m: "\n" if m[1] == "n" else m[1], text).replace("&amp;", "&")


class _Boxes:
    """The boxes a reader is in: a namespace's, inside a node's in a lab with nodes. A namespace inside a node is
    keyed NODE/NAMESPACE."""

    def __init__(self, drawing: Drawing):
        self.drawing, self.open = drawing, []  # [label or None, node ids] of each open box, outermost first

    def start(self):
        self.open.append([None, []])

    def label(self, text: str):
        self.open[-1][0] = text

    def end(self):
        label, members = self.open.pop()
        if self.open:  # a namespace inside a node
            self.drawing.clusters[f"{self.open[-1][0]}/{label}"] = members
            self.drawing.machines.setdefault(self.open[-1][0], []).append(label)
        elif label not in self.drawing.machines:
            self.drawing.clusters[label] = members

    def add(self, node_id: str, line: str):
        assert self.open, f"node outside any namespace: {line}"
        self.open[-1][1].append(node_id)


def read_dot(text: str) -> Drawing:
    drawing = Drawing()
    boxes = _Boxes(drawing)
    for line in text.splitlines():
        if re.fullmatch(r'graph "[^\n]*" \{|\s*//.*|\s*graph \[.*\];|\s*style=bold;', line):
            continue
        if re.fullmatch(r"\s*subgraph cluster_\w+ \{", line):
            boxes.start()
        elif boxes.open and (m := re.fullmatch(rf"\s*label={_DOT_STR};", line)):
            boxes.label(_dot_unquote(m[1]))
        elif m := re.fullmatch(rf"\s*(n\d+) \[label={_DOT_STR}, (.*)\];", line):
            boxes.add(m[1], line)
            drawing.labels[m[1]], drawing.looks[m[1]] = _dot_unquote(m[2]), m[3]
        elif re.fullmatch(r"\s*}", line):
            if boxes.open:
                boxes.end()
        elif m := re.fullmatch(r"\s*(n\d+) -- (n\d+) \[(.*)\];", line):
            if m[3] == "style=dotted":
                drawing.ports.append((m[1], m[2]))
            elif o := re.fullmatch(rf"style=dashed, label={_DOT_STR}", m[3]):
                drawing.overlay.append((frozenset((m[1], m[2])), _dot_unquote(o[1])))
            else:
                assert m[3] == "penwidth=2", line
                drawing.veths.append(frozenset((m[1], m[2])))
        else:
            raise AssertionError(f"a line that is none of the picture's own: {line!r}")
    return drawing


def _mermaid_unquote(text: str) -> str:
    text = text.replace("<br/>", "\n").replace("#quot;", '"')
    return re.sub(r"#(\d+);", lambda m: chr(int(m[1])), text)


def read_mermaid(text: str) -> Drawing:
    drawing = Drawing()
    boxes = _Boxes(drawing)
    for line in text.splitlines():
        if re.fullmatch(r"flowchart LR|\s*%%.*|\s*classDef \w+ .*", line):
            continue
        # Labels are never empty (Mermaid refuses `[""]`; an empty name is written " ") and hold no `"`.
        if m := re.fullmatch(r'\s*subgraph c\d+ \["([^"]+)"\]', line):
            boxes.start()
            boxes.label("" if m[1] == " " else _mermaid_unquote(m[1]))
        elif m := re.fullmatch(r'\s*(n\d+)([(\[]/?)"([^"]+)"/?[)\]](:::\w+)?', line):
            boxes.add(m[1], line)
            drawing.labels[m[1]], drawing.looks[m[1]] = _mermaid_unquote(m[3]), m[2] + (m[4] or "")
        elif re.fullmatch(r"\s*end", line):
            boxes.end()
        elif m := re.fullmatch(r"\s*(n\d+) === (n\d+)", line):
            drawing.veths.append(frozenset((m[1], m[2])))
        elif m := re.fullmatch(r"\s*(n\d+) -\.- (n\d+)", line):
            drawing.ports.append((m[1], m[2]))
        elif m := re.fullmatch(r'\s*(n\d+) -\.-\|"([^"]+)"\| (n\d+)', line):
            drawing.overlay.append((frozenset((m[1], m[3])), _mermaid_unquote(m[2])))
        else:
            raise AssertionError(f"a line that is none of the picture's own: {line!r}")
    return drawing


PICTURES = {"dot": (graph.to_dot, read_dot), "mermaid": (graph.to_mermaid, read_mermaid)}


def check_topology(lab: Lab, drawing: Drawing) -> None:
    """Every namespace, interface, veth pair and bridge port of `lab` is in `drawing`, and nothing else is."""
    assert set(drawing.clusters) == {HOST} | {ns.name for ns in lab.namespaces}
    for iface in lab.interfaces:
        label = drawing.labels[drawing.node(iface.ns, iface.name)]
        for address in iface.addresses:
            assert f"\n{address.cidr}\n" in f"\n{label}\n", f"{iface.ref}: {address.cidr} not in its label {label!r}"
    assert len(drawing.labels) == len(lab.interfaces) + sum(
        not any(i.ns == ns for i in lab.interfaces) for ns in drawing.clusters), "a node too many or too few"
    assert sorted(map(sorted, drawing.veths)) == sorted(
        sorted((drawing.node(*v.a), drawing.node(*v.b))) for v in lab.veths)
    assert sorted(drawing.ports) == sorted(
        (drawing.node(i.ns, i.name), drawing.node(i.ns, i.master)) for i in lab.interfaces if i.master)


@pytest.mark.parametrize("picture", PICTURES)
@pytest.mark.parametrize("name", LABS)
def test_picture_draws_the_whole_topology(labs, name, picture):
    draw, read = PICTURES[picture]
    text = draw(labs[name])
    assert text.endswith("\n") and not text.endswith("\n\n")
    check_topology(labs[name], read(text))


@pytest.mark.parametrize("picture", PICTURES)
def test_docker0_ports_hang_off_the_bridge_in_the_host(labs, picture):
    draw, read = PICTURES[picture]
    drawing = read(draw(labs["docker0"]))
    bridge = drawing.node(HOST, "docker0")
    assert drawing.labels[bridge] == "docker0\n172.17.0.1/16"
    ports = {drawing.node(HOST, f"veth-nginx-{i}") for i in (1, 2)}
    assert sorted(drawing.ports) == sorted((p, bridge) for p in ports)
    # Each port is the host end of the pair whose other end is a container's eth0.
    assert set(drawing.veths) == {frozenset((drawing.node(f"nginx-{i}", "eth0"), drawing.node(HOST, f"veth-nginx-{i}")))
                                  for i in (1, 2)}
    # A bridge is drawn unlike a veth end.
    assert drawing.looks[bridge] != drawing.looks[drawing.node("nginx-1", "eth0")]


@pytest.mark.parametrize("picture", PICTURES)
def test_external_bridge_is_marked(labs, picture):
    draw, read = PICTURES[picture]
    drawing = read(draw(labs["external"]))
    bridge = drawing.node(HOST, "br-ext")
    assert graph.EXTERNAL in drawing.labels[bridge].split("\n")
    assert "dashed" in drawing.looks[bridge] or "external" in drawing.looks[bridge]


@pytest.mark.parametrize("picture", PICTURES)
def test_an_empty_namespace_still_gets_its_box(labs, picture):
    draw, read = PICTURES[picture]
    drawing = read(draw(labs["veth_pair"]))  # the host holds nothing in this lab
    assert [drawing.labels[n] for n in drawing.clusters[HOST]] == [graph.EMPTY]


@pytest.mark.parametrize("picture", PICTURES)
@pytest.mark.parametrize("name", LABS)
def test_picture_is_deterministic(name, picture):
    draw, _ = PICTURES[picture]
    assert draw(load(str(LABS[name]))) == draw(load(str(LABS[name])))


def test_pictures_do_not_depend_on_hash_seeds(labs):
    program = ("import sys; from netgen import graph, loader\n"
               "for path in sys.argv[1:]:\n"
               "    lab = loader.load(path); print(graph.to_dot(lab) + graph.to_mermaid(lab), end='')\n")
    here = "".join(graph.to_dot(labs[n]) + graph.to_mermaid(labs[n]) for n in LABS)
    for seed in ("1", "2"):
        result = subprocess.run([sys.executable, "-c", program, *map(str, LABS.values())], capture_output=True,
                                text=True, check=True, env=dict(os.environ, PYTHONHASHSEED=seed))
        assert result.stdout == here


L = Loc("hostile.py", 1)
# Names that validation refuses but the model holds: quotes, backslashes (a trailing one would swallow a closing
# quote), DOT and Mermaid syntax, a Graphviz escape (\N is "the node's name"), HTML, Mermaid entity codes.
HOSTILE = ['a"b', "back\\", '\\"}; x -- y [label="z"', "\\N\\G", "end", "<b>&amp;</b>", "#quot;#35;", "sub graph {}",
           "ns\nline", ""]


def hostile_lab() -> Lab:
    bridge = Interface(HOST, 'br"\\', "bridge", L, (Address('10.0.0.1/24"\\', L),), external=True)
    interfaces, veths = [bridge], []
    for i, name in enumerate(HOSTILE):
        inside = Interface(name, f'{name}"{i}\\', "veth", L, (Address(f'"{name}"', L),))
        port = Interface(HOST, f"p\\{i}\"", "veth", L, master=bridge.name)
        interfaces += [inside, port]
        veths.append(Veth((inside.ns, inside.name), (port.ns, port.name), L))
    return Lab('lab "x" \\', "hostile.py", "0" * 64, L, tuple(Namespace(n, L) for n in HOSTILE), tuple(interfaces),
               tuple(veths))


@pytest.mark.parametrize("picture", PICTURES)
def test_hostile_names_are_only_text(picture):
    draw, read = PICTURES[picture]
    lab = hostile_lab()
    # Every line is one the picture itself writes, and every name comes back out of its label as it went in.
    check_topology(lab, read(draw(lab)))


def test_mermaid_writes_quotes_as_entities():
    assert '["a#quot;b"]' in graph.to_mermaid(hostile_lab())


def need_dot() -> str:
    dot = shutil.which("dot")
    if dot is None:
        reason = "Graphviz `dot` is not installed (apt-get install graphviz)"
        if os.environ.get("CI"):
            pytest.fail(reason + " (and CI must run the graph tests)")
        pytest.skip(reason)
    return dot


def svg(dot_text: str) -> str:
    result = subprocess.run([need_dot(), "-Tsvg"], input=dot_text, capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr, result.stderr
    return result.stdout


def svg_texts(svg_text: str) -> list[str]:
    return [unescape(t) for t in re.findall(r"<text\b[^>]*>([^<]*)</text>", svg_text)]


def test_graphviz_accepts_hostile_names():
    texts = svg_texts(svg(graph.to_dot(hostile_lab())))
    # Graphviz draws each line of a label as one text; so every name shows as written (the newline breaks a line).
    for name in HOSTILE:
        for line in filter(None, name.split("\n")):
            assert line in texts, f"{line!r} not drawn: {texts}"


@pytest.mark.parametrize("name", LABS)
def test_graphviz_renders_every_namespace(labs, name):
    texts = svg_texts(svg(graph.to_dot(labs[name])))
    for ns in [HOST] + [ns.name for ns in labs[name].namespaces]:
        assert ns in texts


# Labs over nodes: a box per node around its namespaces, its underlay and vxlan devices, and the overlay's links.
NODE_LABS = {e: REPO / "examples" / f"{e}.py" for e in NODE_EXAMPLES}
OVERLAY_ENDS = {"host_gw": ("eth0", "host-gw"), "flannel_vxlan": ("flannel.1", "vxlan 1, udp/8472"),
                "overlay_l2": ("vx0", "L2 segment, vxlan 4097, udp/4789")}


@pytest.mark.parametrize("picture", PICTURES)
@pytest.mark.parametrize("name", NODE_LABS)
def test_nodes_are_boxes_around_their_namespaces_joined_by_the_overlay(name, picture):
    from netgen.nodes import split

    lab = load(str(NODE_LABS[name]))
    draw, read = PICTURES[picture]
    drawing = read(draw(lab))
    labs = split(lab)
    assert drawing.machines == {node: [HOST] + [ns.name for ns in node_lab.namespaces]
                                for node, node_lab in labs.items()}
    for node, node_lab in labs.items():  # each node drawn as its own lab is, devices made by the split included
        for iface in node_lab.interfaces:
            assert drawing.node(f"{node}/{iface.ns}", iface.name)
        underlay = drawing.labels[drawing.node(f"{node}/host", "eth0")].split("\n")
        assert underlay[1] == graph.UNDERLAY and underlay[2] == next(n.underlay for n in lab.nodes if n.name == node)
    device, label = OVERLAY_ENDS[name]
    assert drawing.overlay == [(frozenset(drawing.node(f"{n}/host", device) for n in labs), label)]
    assert len(drawing.veths) == len(lab.veths)
    assert len(drawing.ports) == sum(1 for node_lab in labs.values() for i in node_lab.interfaces if i.master)


@pytest.mark.parametrize("name", NODE_LABS)
def test_graphviz_renders_every_node(name):
    lab = load(str(NODE_LABS[name]))
    texts = svg_texts(svg(graph.to_dot(lab)))
    assert {n.name for n in lab.nodes} | {ns.name for ns in lab.namespaces} <= set(texts)
