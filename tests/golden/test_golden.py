"""The committed scripts in out/ are what netgen compiles today, and they meet the script contract."""

import os
import re
import subprocess

import pytest
from helpers import EXAMPLES, REPO

from netgen.pipeline import compile_lab
from netgen.render import VARIANTS

SCRIPTS = [(e, v) for e in EXAMPLES for v in VARIANTS]


@pytest.fixture(scope="module")
def compiled():
    cwd = os.getcwd()
    os.chdir(REPO)  # the examples are named as a user in the repo root names them
    try:
        return {e: compile_lab(f"examples/{e}.py") for e in EXAMPLES}
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("example,variant", SCRIPTS)
def test_out_is_up_to_date(compiled, example, variant):
    committed = (REPO / "out" / example / f"{variant}.sh").read_text()
    assert compiled[example].script(variant) == committed, \
        f"out/{example}/{variant}.sh is stale: run `python tools/regen.py` and review the diff"


@pytest.mark.parametrize("example", EXAMPLES)
def test_manifest_matches_the_committed_scripts(example):
    directory = REPO / "out" / example
    result = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=directory, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("example,variant", SCRIPTS)
def test_compiling_twice_gives_identical_bytes(compiled, example, variant):
    again = compile_lab(str(REPO / "examples" / f"{example}.py"))
    first = compiled[example].script(variant)
    # Only the source name differs (absolute here, relative in out/), nothing else: no timestamps.
    assert again.script(variant).replace(str(REPO) + "/", "") == first


@pytest.mark.parametrize("example,variant", SCRIPTS)
def test_scripts_pass_bash_n_and_shellcheck(example, variant):
    path = REPO / "out" / example / f"{variant}.sh"
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    result = subprocess.run(["shellcheck", "--severity=style", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("example,variant", SCRIPTS)
def test_header_names_lab_source_hash_and_version(compiled, example, variant):
    text = (REPO / "out" / example / f"{variant}.sh").read_text()
    lab = compiled[example].plan.lab
    head = text.split("set -euo pipefail")[0]
    assert head.startswith("#!/usr/bin/env bash\n")
    assert f"for lab {lab.name}:" in head and f"from examples/{example}.py" in head
    assert f"sha256: {lab.sha256}" in head and "netgen 0.1.0" in head
    assert str(REPO) not in text, "no absolute path of the compiling machine"


@pytest.mark.parametrize("example,variant", SCRIPTS)
def test_every_user_value_is_quoted(compiled, example, variant):
    """Outside comments and single-quoted strings, no name or address of the lab appears in the script."""
    lab = compiled[example].plan.lab
    values = {ns.name for ns in lab.namespaces} | {i.name for i in lab.interfaces}
    values |= {a.cidr.split("/")[0] for i in lab.interfaces for a in i.addresses}
    code = "\n".join(line for line in (REPO / "out" / example / f"{variant}.sh").read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    bare = re.sub(r"'[^']*'", "''", code)
    for value in values:
        assert not re.search(rf"(?<![\w.-]){re.escape(value)}(?![\w.-])", bare), f"{value} appears unquoted"


@pytest.mark.parametrize("example", EXAMPLES)
def test_every_step_names_its_lab_line(example):
    """Each step of up.sh is preceded by a comment that ends with (examples/NAME.py:LINE)."""
    lines = (REPO / "out" / example / "up.sh").read_text().splitlines()
    steps = [i for i, line in enumerate(lines) if line.startswith(("  step ", "  expect ", "  service "))]
    assert steps
    for i in steps:
        assert re.fullmatch(rf"  # .+ \(examples/{example}\.py:\d+\)", lines[i - 1]), lines[i - 1]


def test_the_manual_shows_the_current_docker0_picture(compiled):
    from readme import ALL

    from netgen.graph import to_mermaid

    assert "```mermaid\n" + to_mermaid(compiled["docker0"].plan.lab) + "```" in ALL
