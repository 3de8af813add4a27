"""Labs as JSON data: export, compile without running code, the schema, and bad input named by its JSON path."""

import hashlib
import json
import os

import jsonschema
import pytest
from helpers import REPO
from typer.testing import CliRunner

from netgen.cli import app
from netgen.labjson import _IS, _REQUIRED, KINDS, from_json, schema, to_json
from netgen.pipeline import CompileError, compile_lab
from netgen.render import STYLES, VARIANTS

LABS = sorted(str(p.relative_to(REPO)) for p in [*REPO.glob("examples/*.py"), *REPO.glob("tests/labs/*.py")])
runner = CliRunner()


@pytest.fixture
def in_repo(monkeypatch):
    """Labs are named as a user in the repository root names them, as in out/."""
    monkeypatch.chdir(REPO)


@pytest.mark.parametrize("lab", LABS)
def test_json_compiles_to_the_same_scripts_and_exports_to_itself(lab, in_repo, tmp_path):
    from_python = compile_lab(lab)
    exported = to_json(from_python.lab)
    path = tmp_path / "lab.json"
    path.write_text(exported)
    from_data = compile_lab(str(path))
    # a lab with nodes: the same scripts for each node
    pairs = [(from_data.nodes[n], one) for n, one in from_python.nodes.items()] or [(from_data, from_python)]
    assert len(pairs) == max(1, len(from_data.nodes))
    for data, python in pairs:
        for variant in VARIANTS:
            for style in STYLES:
                assert data.script(variant, style) == python.script(variant, style), (variant, style)
    assert to_json(from_data.lab) == exported
    assert exported.endswith("}\n") and json.loads(exported)["source"] == lab


@pytest.mark.parametrize("lab", LABS)
def test_exported_json_matches_the_published_schema(lab, in_repo):
    published = json.loads(schema())
    jsonschema.Draft202012Validator.check_schema(published)
    exported = json.loads(to_json(compile_lab(lab).lab))
    errors = list(jsonschema.Draft202012Validator(published).iter_errors(exported))
    assert not errors, [e.message for e in errors]


def test_the_schema_takes_exactly_what_the_reader_takes():
    """Per object kind: the same keys in the same order, the same required keys, types, defaults and nesting."""
    published = json.loads(schema())
    assert published["$ref"] == "#/$defs/lab" and set(published["$defs"]) == set(KINDS)
    for kind, fields in KINDS.items():
        definition = published["$defs"][kind]
        assert definition["type"] == "object" and definition["additionalProperties"] is False
        assert list(definition["properties"]) == list(fields), kind
        assert definition["required"] == [k for k, f in fields.items() if f.default is _REQUIRED], kind
        for key, field in fields.items():
            prop = definition["properties"][key]
            if "$ref" in prop:  # a nested object
                assert field.types == ("object",) and prop["$ref"] == f"#/$defs/{field.of}", (kind, key)
                continue
            types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
            assert tuple(types) == field.types, (kind, key)
            if field.of is not None:
                assert prop["items"] == {"$ref": f"#/$defs/{field.of}"}, (kind, key)
            if field.default is not _REQUIRED and any(_IS[t](field.default) for t in field.types):
                assert prop["default"] == field.default, (kind, key)
            else:
                assert "default" not in prop, (kind, key)


HAND_WRITTEN = """\
{
  "format": 1,
  "name": "pair",
  "namespaces": [{"name": "a"}, {"name": "b"}],
  "interfaces": [
    {"ns": "a", "name": "e0", "kind": "veth", "addresses": [{"cidr": "10.0.0.1/24"}]},
    {
      "ns": "b", "name": "e0", "kind": "veth",
      "addresses": [{"cidr": "10.0.0.2/24", "at": "design.txt:3"}]
    }
  ],
  "veths": [{"a": {"ns": "a", "name": "e0"}, "b": {"ns": "b", "name": "e0"}}],
  "expectations": [{"ns": "a", "target": "10.0.0.2"}]
}
"""


def test_hand_written_objects_without_at_point_at_their_line_in_the_json_file(tmp_path):
    path = tmp_path / "pair.json"
    path.write_text(HAND_WRITTEN)
    compiled = compile_lab(str(path))
    lab = compiled.plan.lab
    where = [str(x.loc) for x in (lab, *lab.namespaces, *lab.interfaces, *lab.veths, *lab.expectations)]
    assert where == [f"{path}:{n}" for n in (1, 4, 4, 6, 7, 12, 13)]
    assert [str(a.loc) for i in lab.interfaces for a in i.addresses] == [f"{path}:6", "design.txt:3"]
    up = compiled.script("up")
    assert f"from {path}\n" in up and f"sha256: {hashlib.sha256(HAND_WRITTEN.encode()).hexdigest()}" in up
    assert f"# veth pair a/e0 <-> b/e0, ifindexes 1000000 and 1000001 ({path}:6)" in up
    # Exported, it names every location and compiles to the same scripts.
    again = tmp_path / "again.json"
    again.write_text(to_json(lab))
    assert compile_lab(str(again)).script("up") == up


def test_a_json_lab_is_never_run(tmp_path):
    """Python in a .json file is a JSON syntax error, not a program."""
    marker = tmp_path / "ran"
    path = tmp_path / "lab.json"
    path.write_text(f'__import__("pathlib").Path({str(marker)!r}).touch()\n')
    with pytest.raises(CompileError) as e:
        compile_lab(str(path))
    assert str(e.value).startswith(f"{path}:1:1: invalid JSON: Expecting value")
    assert not marker.exists()


def lab_json(**fields) -> str:
    """A valid hand-written lab, with `fields` replacing its top-level keys (None removes one)."""
    lab = json.loads(HAND_WRITTEN) | fields
    return json.dumps({k: v for k, v in lab.items() if v is not None}, indent=2)


BAD = [
    pytest.param('{"format": 1,\n  "name": "x",,\n}', ["lab.json:2:15: invalid JSON: Expecting property name"],
                 id="invalid-json"),
    pytest.param('{"format": 1, "name": "x"', ["lab.json:1:26: invalid JSON: Expecting ',' delimiter"],
                 id="truncated-json"),
    pytest.param("[]", ["lab.json: $: expected an object, got a list"], id="not-an-object"),
    pytest.param(lab_json(colour="red"), ["lab.json: $.colour: unknown key; lab objects take format, name,"],
                 id="unknown-key"),
    pytest.param(lab_json(namespaces=[{"name": "a", "nmae": "b"}]),
                 ['lab.json: $.namespaces[0].nmae: unknown key; namespace objects take node, name, external, adopt, '
                  'at'],
                 id="unknown-nested-key"),
    pytest.param(lab_json(namespaces=[{"name": "a", "a b": 1}]), ['lab.json: $.namespaces[0]["a b"]: unknown key'],
                 id="unknown-key-quoted-in-the-path"),
    pytest.param(lab_json(name=None), ['lab.json: $: missing required key "name"'], id="missing-name"),
    pytest.param(lab_json(format=None), ['lab.json: $: missing required key "format"'], id="missing-format"),
    pytest.param(lab_json(veths=[{"a": {"ns": "a"}, "b": {"ns": "b", "name": "e0"}}]),
                 ['lab.json: $.veths[0].a: missing required key "name"'], id="missing-nested-key"),
    pytest.param(lab_json(namespaces=[{"name": "a"}, {"name": "b"}, {"name": 12}]),
                 ["lab.json: $.namespaces[2].name: expected a string, got 12"], id="int-for-string"),
    pytest.param(lab_json(namespaces="a"), ['lab.json: $.namespaces: expected a list, got "a"'],
                 id="string-for-list"),
    pytest.param(lab_json(namespaces=["a"]), ['lab.json: $.namespaces[0]: expected an object, got "a"'],
                 id="string-for-object"),
    pytest.param(lab_json(interfaces=[{"ns": "a", "name": "e0", "kind": "veth", "mtu": True}]),
                 ["lab.json: $.interfaces[0].mtu: expected an integer or null, got true"], id="bool-for-int"),
    pytest.param(lab_json(interfaces=[{"ns": "a", "name": "e0", "kind": "veth", "mtu": 1400.0}]),
                 ["lab.json: $.interfaces[0].mtu: expected an integer or null, got 1400.0"], id="float-for-int"),
    pytest.param(lab_json(expectations=[{"ns": "a", "target": "10.0.0.2", "reach": "yes"}]),
                 ['lab.json: $.expectations[0].reach: expected true or false, got "yes"'], id="string-for-bool"),
    pytest.param(lab_json(sysctls=[{"ns": "a", "key": "net.ipv4.ip_forward", "value": [1]}]),
                 ["lab.json: $.sysctls[0].value: expected an integer or a string, got a list"], id="list-for-value"),
    pytest.param(lab_json(interfaces=[{"ns": "a", "name": "t0", "kind": "tun"}]),
                 ['lab.json: $.interfaces[0].kind: must be "veth" or "bridge", got "tun"'], id="unknown-kind"),
    pytest.param(lab_json(format=2), ["lab.json: $.format: this netgen reads format 1, got 2"], id="format-2"),
    pytest.param(lab_json(sha256="abc"), ['lab.json: $.sha256: must be 64 lowercase hexadecimal digits, got "abc"'],
                 id="bad-sha256"),
    pytest.param(lab_json(source="lab.py\nrm -rf /"),
                 ['lab.json: $.source: must be non-empty printable text (no line breaks or control characters), '
                  'got "lab.py\\nrm -rf /"'],
                 id="source-with-a-newline"),
    pytest.param(lab_json(source=""), ['lab.json: $.source: must be non-empty printable text'], id="empty-source"),
    pytest.param(lab_json(namespaces=[{"name": "a", "at": "line 3"}]),
                 ['lab.json: $.namespaces[0].at: must be "FILE:LINE", like "lab.py:12", got "line 3"'], id="bad-at"),
    pytest.param(lab_json(namespaces=[{"name": "a", "at": "x:" + "9" * 5000}]),
                 ['lab.json: $.namespaces[0].at: must be "FILE:LINE"'], id="at-with-a-huge-line"),
    pytest.param('{"format": 1, "name": "a", "name": "b"}', ["lab.json: $.name: is given twice in one object"],
                 id="duplicate-key"),
    pytest.param('{"format": 1, "name": "x", "namespaces": [{"name": "a", "at": "x:1", "mtu": ' + "9" * 5000 + "}]}",
                 ["lab.json: invalid JSON: Exceeds the limit (4300 digits)"], id="huge-integer"),
    pytest.param('{"format": 1, "name": "x", "extra": ' + "[" * 100000 + "]" * 100000 + "}",
                 ["lab.json: invalid JSON: nested too deeply"], id="deeply-nested"),
    pytest.param(lab_json(name=12, format="1", namespaces={"a": 1}, veths=[{"a": 1, "b": 2, "c": 3}]),
                 ["lab.json: $.name: expected a string, got 12", 'lab.json: $.format: expected an integer, got "1"',
                  "lab.json: $.namespaces: expected a list, got an object", "lab.json: $.veths[0].c: unknown key",
                  "lab.json: $.veths[0].a: expected an object, got 1",
                  "lab.json: $.veths[0].b: expected an object, got 2", "6 errors; nothing was written"],
                 id="every-problem-at-once"),
]


@pytest.mark.parametrize("text, messages", BAD)
def test_bad_json_is_reported_with_its_json_path_and_nothing_is_written(tmp_path, monkeypatch, text, messages):
    (tmp_path / "lab.json").write_text(text)
    monkeypatch.chdir(tmp_path)  # the file is named as the user named it: lab.json
    result = runner.invoke(app, ["compile", "lab.json", "-o", "out"])
    assert result.exit_code == 1
    assert result.stdout == ""
    for message in messages:
        assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_not_utf8(tmp_path):
    (tmp_path / "lab.json").write_bytes(b'{"format": 1, "name": "\xff"}')
    result = runner.invoke(app, ["check", str(tmp_path / "lab.json")])
    assert result.exit_code == 1
    assert f"{tmp_path}/lab.json: not UTF-8 text (at byte offset 23)" in result.stderr


# What the DSL guarantees by construction, a data lab can get wrong: validate reports it at the object's line.
REFERENCES = [
    ({"interfaces": [{"ns": "nowhere", "name": "e0", "kind": "bridge"}], "veths": []},
     "interface in namespace 'nowhere', which the lab does not define"),
    ({"routes": [{"ns": "nowhere", "dest": "default", "dev": "e0"}]},
     "route in namespace 'nowhere', which the lab does not define"),
    ({"sysctls": [{"ns": "nowhere", "key": "net.ipv4.ip_forward", "value": 1}]},
     "sysctl in namespace 'nowhere', which the lab does not define"),
    ({"interfaces": [{"ns": "a", "name": "e0", "kind": "veth", "master": "br0"},
                     {"ns": "b", "name": "e0", "kind": "veth"}]},
     "a/e0: master 'br0' must be a bridge of the lab in a, and only a veth end can be its port"),
    ({"interfaces": [{"ns": "host", "name": "br0", "kind": "veth", "external": True}], "veths": []},
     "host/br0: only a bridge can be external"),
    ({"veths": [{"a": {"ns": "a", "name": "e0"}, "b": {"ns": "b", "name": "e9"}}]},
     "veth pair end b/e9 is not a veth interface of the lab"),
    ({"veths": []}, "a/e0 is a veth end in no veth pair"),
    ({"veths": [{"a": {"ns": "a", "name": "e0"}, "b": {"ns": "b", "name": "e0"}, "at": "lab.json:20"},
                {"a": {"ns": "b", "name": "e0"}, "b": {"ns": "a", "name": "e0"}, "at": "lab.json:21"}]},
     "lab.json:21: b/e0 is already one end of the veth pair at line 20"),
]


@pytest.mark.parametrize("fields, message", REFERENCES)
def test_broken_references_are_reported_by_validate(tmp_path, monkeypatch, fields, message):
    (tmp_path / "lab.json").write_text(lab_json(**fields))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["check", "lab.json"])
    assert result.exit_code == 1
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_semantic_errors_come_from_validate_at_the_objects_line(tmp_path, monkeypatch):
    (tmp_path / "lab.json").write_text(HAND_WRITTEN.replace('"b"}]', '"a;reboot"}]').replace("10.0.0.2/24", "10.0.0"))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["compile", "lab.json"])
    assert result.exit_code == 1
    assert "lab.json:4: namespace name 'a;reboot' contains ';'" in result.stderr
    assert "design.txt:3: b/e0: address '10.0.0' has no prefix length" in result.stderr  # where its `at` says


def test_messages_show_control_characters_escaped(tmp_path):
    (tmp_path / "lab.json").write_text(lab_json(name="\u001b[2Jx"))
    result = runner.invoke(app, ["check", str(tmp_path / "lab.json")])
    assert result.exit_code == 1
    assert "\x1b" not in result.stderr and "\\x1b[2Jx" in result.stderr


def test_export_prints_json_and_writes_a_file_whole(in_repo, tmp_path):
    printed = runner.invoke(app, ["export", "examples/docker0.py"])
    assert printed.exit_code == 0 and printed.stderr == ""
    assert printed.stdout == to_json(compile_lab("examples/docker0.py").lab)
    written = runner.invoke(app, ["export", "examples/docker0.py", "-o", str(tmp_path / "docker0.json")])
    assert written.exit_code == 0 and written.stdout == ""
    assert (tmp_path / "docker0.json").read_text() == printed.stdout
    assert os.listdir(tmp_path) == ["docker0.json"]  # no temporary file left
    compiled = runner.invoke(app, ["compile", str(tmp_path / "docker0.json")])
    assert compiled.exit_code == 0 and compiled.stdout == (REPO / "out" / "docker0" / "up.sh").read_text()


def test_export_refuses_a_lab_that_does_not_compile(tmp_path):
    lab = tmp_path / "lab.py"
    lab.write_text('from netgen import Lab\nlab = Lab("x")\nlab.netns("a/b")\n')
    result = runner.invoke(app, ["export", str(lab), "-o", str(tmp_path / "lab.json")])
    assert result.exit_code == 1
    assert f"{lab}:3: namespace name 'a/b'" in result.stderr
    assert not (tmp_path / "lab.json").exists()


def test_schema_command_prints_the_shipped_schema():
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    assert result.stdout == (REPO / "compiler" / "lab.schema.json").read_text()
    assert json.loads(result.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("command", ["compile", "check", "export", "up", "down", "verify", "try", "graph", "inspect"])
def test_every_lab_command_takes_json(command):
    assert "LAB.py|LAB.json" in runner.invoke(app, [command, "--help"]).stdout


def test_from_json_reads_text():
    lab = from_json(HAND_WRITTEN, "pair.json")
    assert (lab.name, lab.source, [n.name for n in lab.namespaces]) == ("pair", "pair.json", ["a", "b"])


HOSTILE = [12, -1, True, None, 1.5, "", "x;reboot", "a\nb", "fe80::1%a\nb/64", "$(id)", [], {}]


def _leaves(value, at=()):
    """Every place in a JSON document that holds a scalar, as a path of keys and indexes."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _leaves(v, at + (k,))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _leaves(v, at + (i,))]
    return [at]


def test_any_hostile_value_anywhere_compiles_or_is_reported_never_an_exception(in_repo, tmp_path):
    """Each scalar of the features lab replaced, one at a time, by each hostile value."""
    document = json.loads(to_json(compile_lab("tests/labs/features.py").lab))
    path = tmp_path / "lab.json"
    for leaf in _leaves(document):
        for value in HOSTILE:
            mutated = json.loads(json.dumps(document))
            *parents, last = leaf
            target = mutated
            for key in parents:
                target = target[key]
            target[last] = value
            path.write_text(json.dumps(mutated))
            try:
                compiled = compile_lab(str(path))
            except CompileError as e:
                assert e.diagnostics, (leaf, value)
                continue
            for variant in VARIANTS:
                assert compiled.script(variant).startswith("#!/usr/bin/env bash\n"), (leaf, value)
