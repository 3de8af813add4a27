"""Labs as data: the model as JSON, and JSON back into the model without running anything.

`netgen export lab.py` prints `to_json`; `netgen compile lab.json` reads with `from_json`, which checks only the
shape (keys and JSON types, each problem named by its JSON path) and leaves the meaning (names, addresses,
references) to validate, as for a Python lab. lab.schema.json publishes the same shape; a test keeps the two equal.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import json.decoder
import json.scanner
import re
from dataclasses import dataclass
from importlib.resources import files
from typing import Callable

from . import model
from .model import HOST_GW, L2, VXLAN, Diagnostic, Loc

FORMAT = 1
OVERLAYS = (HOST_GW, VXLAN, L2)
_REQUIRED = object()
_AT = re.compile(r"(.+):([0-9]{1,9})")  # FILE:LINE, as Loc prints itself
_SHA256 = re.compile(r"[0-9a-f]{64}")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class JSONLabError(Exception):
    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("\n".join(map(str, diagnostics)))
        self.diagnostics = diagnostics


def _printable(value: str) -> str | None:
    # source and the file of `at` are shown in script comments and messages as they are: no line breaks or escapes
    if value and value.isprintable():
        return None
    return "must be non-empty printable text (no line breaks or control characters)"


def _at(value: str) -> str | None:
    return _printable(value) or (None if _AT.fullmatch(value) else 'must be "FILE:LINE", like "lab.py:12"')


@dataclass(frozen=True)
class Field:
    types: tuple[str, ...]  # JSON Schema type names
    default: object = _REQUIRED
    of: str | None = None  # the object kind of an object, or of a list's items
    check: Callable[[object], str | None] | None = None  # a rule on the value beyond its type


_AT_FIELD = Field(("string",), None, check=_at)
_TEXT = Field(("string",))
_MAYBE_TEXT = Field(("string", "null"), None)
_NODE = Field(("string",), "")  # "" in a lab without nodes, and for an object in a namespace: its namespace's
_MAYBE_INT = Field(("integer", "null"), None)
_STRINGS = Field(("array",), [], check=lambda v: None if all(isinstance(x, str) for x in v)
                 else "must be a list of strings")

# Every object kind, its keys in the order export writes them, and what each takes. Keys with a default may be
# left out (export leaves out those at their default); `at` defaults to the JSON file and the object's line.
KINDS: dict[str, dict[str, Field]] = {
    "lab": {
        "format": Field(("integer",), check=lambda v: None if v == FORMAT else f"this netgen reads format {FORMAT}"),
        "name": _TEXT,
        "source": Field(("string",), None, check=_printable),
        "sha256": Field(("string",), None, check=lambda v: None if _SHA256.fullmatch(v)
                        else "must be 64 lowercase hexadecimal digits"),
        "at": _AT_FIELD,
        "nodes": Field(("array",), [], "node"),
        "namespaces": Field(("array",), [], "namespace"),
        "interfaces": Field(("array",), [], "interface"),
        "veths": Field(("array",), [], "veth"),
        "routes": Field(("array",), [], "route"),
        "sysctls": Field(("array",), [], "sysctl"),
        "expectations": Field(("array",), [], "expectation"),
        "masquerades": Field(("array",), [], "masquerade"),
        "publishes": Field(("array",), [], "publish"),
        "services": Field(("array",), [], "service"),
        "overlays": Field(("array",), [], "overlay"),
    },
    "node": {"name": _TEXT, "underlay": _TEXT, "dev": _TEXT, "ssh": _MAYBE_TEXT, "mtu": Field(("integer",), 1500),
             "at": _AT_FIELD},
    "namespace": {"node": _NODE, "name": _TEXT, "external": Field(("boolean",), False),
                  "adopt": Field(("boolean",), False), "at": _AT_FIELD},
    "interface": {
        "node": _NODE,
        "ns": _TEXT,
        "name": _TEXT,
        "kind": Field(("string",), check=lambda v: None if v in ("veth", "bridge") else 'must be "veth" or "bridge"'),
        "addresses": Field(("array",), [], "address"),
        "mtu": Field(("integer", "null"), None),
        "mac": _MAYBE_TEXT,
        "master": _MAYBE_TEXT,
        "external": Field(("boolean",), False),
        "pools": Field(("array",), [], check=lambda v: None if all(isinstance(x, str) for x in v)
                       else "must be a list of subnets (strings)"),
        "hairpin": Field(("boolean",), False),
        "nodad": Field(("boolean",), False),
        "adopt": Field(("boolean",), False),
        "at": _AT_FIELD,
    },
    "address": {"cidr": _TEXT, "at": _AT_FIELD},
    "veth": {"a": Field(("object",), of="end"), "b": Field(("object",), of="end"), "at": _AT_FIELD},
    "end": {"node": _NODE, "ns": _TEXT, "name": _TEXT},
    "route": {"node": _NODE, "ns": _TEXT, "dest": _TEXT, "via": _MAYBE_TEXT, "dev": _MAYBE_TEXT,
              "family": Field(("integer", "null"), None),
              "via_link": Field(("string", "null"), None, check=lambda v: None if "/" in v else 'must be "NS/LINK"'),
              "at": _AT_FIELD},
    "sysctl": {"node": _NODE, "ns": _TEXT, "key": _TEXT, "value": Field(("integer", "string")), "at": _AT_FIELD},
    "expectation": {"node": _NODE, "ns": _TEXT, "target": _TEXT, "reach": Field(("boolean",), True),
                    "tcp": Field(("integer", "null"), None), "at": _AT_FIELD},
    "masquerade": {"node": _NODE, "ns": _TEXT, "link": _TEXT, "not_to": _STRINGS, "at": _AT_FIELD},
    "publish": {"node": _NODE, "ns": _TEXT, "port": Field(("integer",)), "target": _TEXT,
                "to_port": Field(("integer",)), "proto": Field(("string",), "tcp"), "address": _MAYBE_TEXT,
                "at": _AT_FIELD},
    "service": {"node": _NODE, "ns": _TEXT, "name": _TEXT,
                "command": Field(("string", "array"), check=lambda v: None if isinstance(v, str) or all(
                    isinstance(x, str) for x in v) else "must be a string or a list of strings"),
                "at": _AT_FIELD},
    "overlay": {
        "kind": Field(("string",), check=lambda v: None if v in OVERLAYS else
                      "must be " + " or ".join(f'"{k}"' for k in OVERLAYS)),
        "bridges": Field(("array",), of="member"),
        "vni": _MAYBE_INT,
        "port": _MAYBE_INT,
        "device": _MAYBE_TEXT,
        "mtu": _MAYBE_INT,
        "masquerade": Field(("boolean",), False),
        "macs": Field(("array",), [], "vtep"),
        "at": _AT_FIELD,
    },
    "member": {"node": _TEXT, "name": _TEXT},
    "vtep": {"node": _TEXT, "mac": _TEXT},
}

_IS = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}
_NAMED = {"string": "a string", "integer": "an integer", "boolean": "true or false", "null": "null",
          "array": "a list", "object": "an object"}


# -- model to JSON -----------------------------------------------------------------------------------------------

def _lab_fields(lab: model.Lab) -> dict:
    return {"format": FORMAT, "name": lab.name, "source": lab.source, "sha256": lab.sha256, "at": str(lab.loc),
            "nodes": [{"name": n.name, "underlay": n.underlay, "dev": n.dev, "ssh": n.ssh, "mtu": n.mtu,
                       "at": str(n.loc)} for n in lab.nodes],
            "namespaces": [{"node": n.node, "name": n.name, "external": n.external, "adopt": n.adopt,
                            "at": str(n.loc)} for n in lab.namespaces],
            "interfaces": [{"node": i.node, "ns": i.ns, "name": i.name, "kind": i.kind,
                            "addresses": [{"cidr": a.cidr, "at": str(a.loc)} for a in i.addresses],
                            "mtu": i.mtu, "mac": i.mac, "master": i.master, "external": i.external,
                            "pools": list(i.pools), "hairpin": i.hairpin, "nodad": i.nodad, "adopt": i.adopt,
                            "at": str(i.loc)}
                           for i in lab.interfaces],
            "veths": [{"a": {"node": v.nodes[0], "ns": v.a[0], "name": v.a[1]},
                       "b": {"node": v.nodes[1], "ns": v.b[0], "name": v.b[1]}, "at": str(v.loc)}
                      for v in lab.veths],
            "routes": [{"node": r.node, "ns": r.ns, "dest": r.dest, "via": r.via, "dev": r.dev, "family": r.family,
                        "via_link": None if r.via_link is None else "/".join(r.via_link), "at": str(r.loc)}
                       for r in lab.routes],
            "sysctls": [{"node": s.node, "ns": s.ns, "key": s.key, "value": s.value, "at": str(s.loc)}
                        for s in lab.sysctls],
            "expectations": [{"node": e.node, "ns": e.ns, "target": e.target, "reach": e.reach, "tcp": e.tcp,
                              "at": str(e.loc)} for e in lab.expectations],
            "masquerades": [{"node": m.node, "ns": m.ns, "link": m.link, "not_to": list(m.not_to), "at": str(m.loc)}
                            for m in lab.masquerades],
            "publishes": [{"node": p.node, "ns": p.ns, "port": p.port, "target": p.target, "to_port": p.to_port,
                           "proto": p.proto, "address": p.address, "at": str(p.loc)} for p in lab.publishes],
            "services": [{"node": s.node, "ns": s.ns, "name": s.name,
                          "command": list(s.command) if isinstance(s.command, tuple) else s.command,
                          "at": str(s.loc)} for s in lab.services],
            "overlays": [{"kind": o.kind, "bridges": [{"node": n, "name": b} for n, b in o.bridges], "vni": o.vni,
                          "port": o.port, "device": o.device, "mtu": o.mtu, "masquerade": o.masquerade,
                          "macs": [{"node": n, "mac": m} for n, m in o.macs], "at": str(o.loc)}
                         for o in lab.overlays]}


def _drop_defaults(value: dict, kind: str) -> dict:
    out = {}
    for key, field in KINDS[kind].items():
        item = value[key]
        if field.default is not _REQUIRED and item == field.default:
            continue
        if field.of is not None and isinstance(item, list):
            item = [_drop_defaults(x, field.of) for x in item]
        elif field.of is not None:
            item = _drop_defaults(item, field.of)
        out[key] = item
    return out


def to_json(lab: model.Lab) -> str:
    """The lab as JSON text: keys in a fixed order, defaults left out, indent 2, one trailing newline."""
    return json.dumps(_drop_defaults(_lab_fields(lab), "lab"), indent=2) + "\n"


# -- JSON to model -----------------------------------------------------------------------------------------------

class _Object(dict):
    """A JSON object that remembers keys given twice (json keeps the last; a reviewer may have read the first),
    and, when parsed by _located, the line it starts on."""

    twice: tuple[str, ...] = ()
    line = 0


def _object(pairs: list[tuple[str, object]]) -> _Object:
    obj = _Object(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        obj.twice = tuple(k for k, _ in pairs if k in seen or seen.add(k))
    return obj


def _located(text: str) -> _Object:
    """The document parsed again, each object knowing its line. Only for objects without `at` (hand-written):
    json's C parser cannot tell positions, so this uses its pure-Python scanner, about ten times slower."""
    newlines = [m.start() for m in re.finditer("\n", text)]
    decoder = json.JSONDecoder(object_pairs_hook=_object)

    def parse_object(s_and_end, *args):
        line = bisect.bisect(newlines, s_and_end[1] - 1) + 1  # s_and_end[1] is just after the object's "{"
        obj, end = json.decoder.JSONObject(s_and_end, *args)
        obj.line = line
        return obj, end

    decoder.parse_object = parse_object
    decoder.scan_once = json.scanner.py_make_scanner(decoder)
    return decoder.decode(text)


def _step(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _KEY.fullmatch(key) else f"{path}[{json.dumps(key)}]"


def _show(value: object) -> str:
    if isinstance(value, (dict, list)):
        return _NAMED["object" if isinstance(value, dict) else "array"]
    text = json.dumps(value[:40] if isinstance(value, str) else value)  # escapes control characters
    return text if len(text) <= 40 else text[:37] + "..."


class _Reader:
    """Checks the parsed document against KINDS, collecting every problem, then builds the model."""

    def __init__(self, text: str, path: str):
        self.text, self.path = text, path
        self.problems: list[Diagnostic] = []
        self.unplaced: list[tuple[dict, tuple]] = []  # objects without `at`, and where they are in the document

    def problem(self, jpath: str, message: str) -> None:
        self.problems.append(Diagnostic("error", f"{self.path}: {jpath}: {message}"))

    def shape(self, value: object, jpath: str, kind: str, keys: tuple = ()) -> dict | None:
        """`value` with defaults filled in and nested objects checked; None where something was wrong.
        `keys` is where the object is in the document, to find its line if it has no `at`."""
        spec = KINDS[kind]
        if not isinstance(value, dict):
            self.problem(jpath, f"expected an object, got {_show(value)}")
            return None
        for key in getattr(value, "twice", ()):
            self.problem(_step(jpath, key), "is given twice in one object")
        for key in value:
            if key not in spec:
                self.problem(_step(jpath, key), f"unknown key; {kind} objects take {', '.join(spec)}")
        out: dict = {}
        for key, field in spec.items():
            where = _step(jpath, key)
            if key not in value:
                if field.default is _REQUIRED:
                    self.problem(jpath, f"missing required key {json.dumps(key)}")
                elif key == "at":
                    self.unplaced.append((out, keys))
                else:
                    out[key] = field.default
                continue
            item = value[key]
            if not any(_IS[t](item) for t in field.types):
                expected = " or ".join(_NAMED[t] for t in field.types)
                self.problem(where, f"expected {expected}, got {_show(item)}")
            elif field.check is not None and (message := field.check(item)) is not None:
                self.problem(where, f"{message}, got {_show(item)}")
            elif field.of is not None and isinstance(item, list):
                out[key] = [self.shape(x, _step(where, i), field.of, keys + (key, i)) for i, x in enumerate(item)]
            elif field.of is not None:
                out[key] = self.shape(item, where, field.of, keys + (key,))
            elif key == "at":
                file, line = _AT.fullmatch(item).groups()
                out[key] = Loc(file, int(line))
            else:
                out[key] = item
        return out

    def place(self) -> None:
        """Give objects without `at` the JSON file and their line. Only once the shape is right: then the document
        is as shallow as the format, which the pure-Python parser handles."""
        if self.unplaced:
            document = _located(self.text)
            for obj, keys in self.unplaced:
                found = document
                for key in keys:
                    found = found[key]
                obj["at"] = Loc(self.path, found.line)


def _build(lab: dict, path: str, sha256: str) -> model.Lab:
    def interface(i: dict) -> model.Interface:
        return model.Interface(i["ns"], i["name"], i["kind"], i["at"],
                               tuple(model.Address(a["cidr"], a["at"]) for a in i["addresses"]),
                               i["mtu"], i["mac"], i["master"], i["external"], tuple(i["pools"]), i["hairpin"],
                               i["nodad"], i["adopt"], i["node"])

    def overlay(o: dict) -> model.Overlay:
        return model.Overlay(o["kind"], tuple((b["node"], b["name"]) for b in o["bridges"]), o["at"], o["vni"],
                             o["port"], o["device"], o["mtu"], o["masquerade"],
                             tuple((m["node"], m["mac"]) for m in o["macs"]))

    return model.Lab(
        name=lab["name"], source=path if lab["source"] is None else lab["source"],
        sha256=sha256 if lab["sha256"] is None else lab["sha256"], loc=lab["at"],
        namespaces=tuple(model.Namespace(n["name"], n["at"], external=n["external"], adopt=n["adopt"], node=n["node"])
                         for n in lab["namespaces"]),
        interfaces=tuple(map(interface, lab["interfaces"])),
        veths=tuple(model.Veth((v["a"]["ns"], v["a"]["name"]), (v["b"]["ns"], v["b"]["name"]), v["at"],
                               (v["a"]["node"], v["b"]["node"])) for v in lab["veths"]),
        routes=tuple(model.Route(r["ns"], r["dest"], r["via"], r["dev"], r["at"], r["family"],
                                 None if r["via_link"] is None else tuple(r["via_link"].split("/", 1)), r["node"])
                     for r in lab["routes"]),
        sysctls=tuple(model.Sysctl(s["ns"], s["key"], s["value"], s["at"], s["node"]) for s in lab["sysctls"]),
        expectations=tuple(model.Expectation(e["ns"], e["target"], e["reach"], e["tcp"], e["at"], e["node"])
                           for e in lab["expectations"]),
        masquerades=tuple(model.Masquerade(m["ns"], m["link"], m["at"], tuple(m["not_to"]), m["node"])
                          for m in lab["masquerades"]),
        publishes=tuple(model.Publish(p["ns"], p["port"], p["target"], p["to_port"], p["proto"], p["address"], p["at"],
                                      p["node"]) for p in lab["publishes"]),
        services=tuple(model.Service(s["ns"], s["name"], s["command"] if isinstance(s["command"], str)
                                     else tuple(s["command"]), s["at"], s["node"]) for s in lab["services"]),
        nodes=tuple(model.Node(n["name"], n["underlay"], n["dev"], n["at"], n["ssh"], n["mtu"]) for n in lab["nodes"]),
        overlays=tuple(map(overlay, lab["overlays"])))


def _fail(message: str) -> JSONLabError:
    return JSONLabError([Diagnostic("error", message)])


def from_json(text: str, path: str) -> model.Lab:
    """The lab in the JSON document `text` read from `path`; raise JSONLabError with every problem of its shape.

    A lab without `source` and `sha256` is named by `path` and the hash of `text`, as a Python lab would be."""
    try:
        document = json.loads(text, object_pairs_hook=_object)
    except json.JSONDecodeError as e:
        raise _fail(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    except RecursionError:
        raise _fail(f"{path}: invalid JSON: nested too deeply") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise _fail(f"{path}: invalid JSON: {e}") from None
    reader = _Reader(text, path)
    lab = reader.shape(document, "$", "lab")
    if reader.problems:
        raise JSONLabError(reader.problems)
    reader.place()
    return _build(lab, path, hashlib.sha256(text.encode()).hexdigest())


def load(path: str) -> model.Lab:
    """Read the JSON lab at `path` (nothing in it is run); raise JSONLabError with what is wrong."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise _fail(f"cannot read lab file {path}: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _fail(f"{path}: not UTF-8 text (at byte offset {e.start})") from None
    return from_json(text, path)


def schema() -> str:
    """The JSON Schema of the format, as shipped in the package."""
    return files("netgen").joinpath("lab.schema.json").read_text(encoding="utf-8")
