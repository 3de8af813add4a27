"""The layout a reviewer relies on: the lab's part first, then one engine, byte-identical in every script of every
lab; `netgen audit` proves it for a folder, `netgen engine` publishes it."""

import hashlib
import re
import shutil

import pytest
from helpers import EXAMPLES, NODE_EXAMPLES, REPO
from typer.testing import CliRunner

from netgen import render
from netgen.cli import app

runner = CliRunner()
SCRIPTS = ("up.sh", "down.sh", "verify.sh")


def invoke(*args):
    return runner.invoke(app, list(args))


def _engine_of(text: str) -> str:
    at = text.index("\n" + render.ENGINE_MARKER)
    return text[at + 1:]


def _folders(example):
    """The folders of compiled scripts of an example: out/NAME, or out/NAME/NODE for each node."""
    top = REPO / "out" / example
    return [top] if (top / "up.sh").exists() else sorted(p for p in top.iterdir() if p.is_dir())


@pytest.mark.parametrize("example", EXAMPLES + NODE_EXAMPLES)
def test_every_script_ends_with_the_one_engine_and_names_its_hash(example):
    engine = render.engine()
    digest = hashlib.sha256(engine.encode()).hexdigest()
    for folder, name in ((f, n) for f in _folders(example) for n in SCRIPTS):
        text = (folder / name).read_text()
        assert _engine_of(text) == engine, f"{folder}/{name}: its engine is not netgen's"
        assert text.count("\n" + render.ENGINE_MARKER) == 1
        assert re.search(rf"^# engine sha256: {digest}$", text.split(render.ENGINE_MARKER)[0], re.M)


def test_the_engine_holds_nothing_of_any_lab():
    engine = render.engine()
    assert engine.startswith(render.ENGINE_MARKER)
    assert "{{" not in engine and "{%" not in engine
    for example in EXAMPLES:  # no lab's name or namespace
        assert f"'{example}'" not in engine
    for value in ("'ns1'", "nginx-1", "'docker0'", "192.168.10.", "172.17."):  # values a lab's part quotes
        assert value not in engine


def test_the_lab_part_of_veth_pair_up_is_at_most_80_lines():
    text = (REPO / "out" / "veth_pair" / "up.sh").read_text()
    lab_part = text[:text.index("\n" + render.ENGINE_MARKER) + 1]
    assert lab_part.count("\n") <= 80
    assert "lab_steps() {" in lab_part and "step addr 'ns1' '192.168.10.200/24' 'veth0'" in lab_part


@pytest.mark.parametrize("example", EXAMPLES + NODE_EXAMPLES)
def test_audit_passes_on_the_committed_scripts_and_prints_what_up_makes(example):
    result = invoke("audit", str(REPO / "out" / example), "--lab", str(REPO / "examples" / f"{example}.py"))
    assert result.exit_code == 0, result.stderr
    assert "## host\nip netns add" in result.stdout


def test_audit_of_a_lab_with_nodes_checks_each_node_folder_against_its_node():
    result = invoke("audit", str(REPO / "out" / "flannel_vxlan"), "--lab", str(REPO / "examples" / "flannel_vxlan.py"))
    assert result.exit_code == 0, result.stderr
    assert "6 scripts, inventory.yml and site.yml as netgen" in result.stderr
    assert "bridge fdb replace 02:01:c0:a8:3c:0c dev flannel.1 dst 192.168.60.12 self permanent" in result.stdout


def test_audit_checks_the_playbook_and_inventory_beside_the_node_folders(tmp_path):
    """They run every node's scripts as root: an edit is named as one in a script is."""
    directory = tmp_path / "flannel_vxlan"
    shutil.copytree(REPO / "out" / "flannel_vxlan", directory)
    site = directory / "site.yml"
    lines = site.read_text().split("\n")
    at = lines.index("    - name: up.sh") + 2  # its script line
    lines[at - 1] = lines[at - 1].replace("/up.sh", "/up.sh --force")
    site.write_text("\n".join(lines))
    result = invoke("audit", str(directory), "--lab", str(REPO / "examples" / "flannel_vxlan.py"))
    assert result.exit_code == 1
    assert f"{site}: its sha256 is not the one SHA256SUMS records" in result.stderr
    assert f"{site}:{at}: differs from what compiling the lab gives" in result.stderr
    (directory / "SHA256SUMS").unlink()
    (directory / "inventory.yml").unlink()
    result = invoke("audit", str(directory))
    assert result.exit_code == 1 and "2 differences" in result.stderr
    assert f"{directory / 'SHA256SUMS'}: missing" in result.stderr
    assert f"{directory / 'inventory.yml'}: missing" in result.stderr



def test_a_node_folder_is_audited_against_its_own_node(tmp_path):
    lab = str(REPO / "examples" / "flannel_vxlan.py")
    assert invoke("audit", str(REPO / "out" / "flannel_vxlan" / "node2"), "--lab", lab).exit_code == 0
    swapped = tmp_path / "node2"  # node1's scripts, in node2's folder: each passes all but the lab's check
    shutil.copytree(REPO / "out" / "flannel_vxlan" / "node1", swapped)
    result = invoke("audit", str(swapped), "--lab", lab)
    assert result.exit_code == 1
    assert f"{swapped / 'up.sh'}:" in result.stderr and "the lab's part differs" in result.stderr


def test_audit_prints_each_namespace_commands_as_typed():
    result = invoke("audit", str(REPO / "out" / "veth_pair"))
    assert result.exit_code == 0, result.stderr
    assert "## ns1\nip -n ns1 link set dev lo up\nip -n ns1 link set dev veth0 up\n" \
           "ip -n ns1 addr add 192.168.10.200/24 dev veth0\n" in result.stdout


@pytest.fixture
def docker0(tmp_path):
    directory = tmp_path / "docker0"
    shutil.copytree(REPO / "out" / "docker0", directory)
    return directory


def _change_byte(path, line_no):
    """Change one byte on line `line_no` (1-based) of `path`."""
    lines = path.read_bytes().split(b"\n")
    line = lines[line_no - 1]
    lines[line_no - 1] = line[:-1] + bytes([line[-1] ^ 1]) if line else b"#"
    path.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize("name", SCRIPTS)
def test_one_byte_changed_in_an_engine_fails_audit_naming_the_script_and_line(docker0, name):
    path = docker0 / name
    lines = path.read_text().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith(render.ENGINE_MARKER)) + 1
    target = start + 200
    _change_byte(path, target)
    result = invoke("audit", str(docker0))
    assert result.exit_code == 1
    assert f"{path}:{target}: the engine differs from netgen's" in result.stderr
    assert f"{path}: its sha256 is not the one SHA256SUMS records" in result.stderr
    assert f"{path}:5: the header's engine sha256 is not that of the engine below it" in result.stderr
    others = [n for n in SCRIPTS if n != name]
    assert not any(str(docker0 / n) in result.stderr for n in others)


def test_a_changed_lab_part_fails_audit_with_the_lab_naming_its_line(docker0):
    path = docker0 / "up.sh"
    text = path.read_text()
    line = text.split("\n").index("  section 'nginx-1'") + 1
    path.write_text(text.replace("  section 'nginx-1'", "  section 'nginx-9'"))
    (docker0 / "SHA256SUMS").write_text((docker0 / "SHA256SUMS").read_text().replace(
        hashlib.sha256(text.encode()).hexdigest(), hashlib.sha256(path.read_bytes()).hexdigest()))
    assert invoke("audit", str(docker0)).exit_code == 0  # SHA256SUMS made to match: only the lab can tell
    result = invoke("audit", str(docker0), "--lab", str(REPO / "examples" / "docker0.py"))
    assert result.exit_code == 1
    assert f"{path}:{line}: the lab's part differs from what compiling the lab gives" in result.stderr


def test_audit_of_a_folder_without_scripts_is_a_usage_error(tmp_path):
    result = invoke("audit", str(tmp_path))
    assert result.exit_code == 2
    assert "holds no compiled scripts" in result.stderr


def test_audit_names_a_missing_script_and_manifest(docker0):
    (docker0 / "down.sh").unlink()
    (docker0 / "SHA256SUMS").unlink()
    result = invoke("audit", str(docker0))
    assert result.exit_code == 1
    assert f"{docker0 / 'down.sh'}: missing" in result.stderr
    assert f"{docker0 / 'SHA256SUMS'}: missing" in result.stderr


def test_engine_prints_the_engine_and_its_hash():
    result = invoke("engine")
    assert result.exit_code == 0
    assert result.stdout == render.engine()
    assert render.engine_sha256() in result.stderr
    hashed = invoke("engine", "--sha256")
    assert hashed.stdout == hashlib.sha256(render.engine().encode()).hexdigest() + "\n"


def test_the_manual_lists_the_current_engine_hash():
    """The hash reviewers pin is in the block after "The engine of this version" (docs/reviewing.md), which
    tools/regen.py keeps current."""
    from readme import after, blocks, page_of

    where = page_of("The engine of this version")
    assert blocks(after("The engine of this version"), "")[0] == render.engine_sha256() + "\n", \
        f"{where} must list the engine's sha256 (netgen engine --sha256): run `python tools/regen.py`"
