"""The executor and the commands that run scripts: up, down, verify, run, try; here what needs no root (dry runs,
refusals, streamed output), and tests/live/test_executor_live.py runs them."""

import os
import subprocess
import sys
import time

import pytest
from helpers import REPO
from typer.testing import CliRunner

from netgen.cli import app

runner = CliRunner()
DOCKER0 = str(REPO / "examples" / "docker0.py")


def test_down_force_is_passed_to_down_sh_and_its_help_says_what_it_risks(tmp_path):
    result = runner.invoke(app, ["down", DOCKER0, "-o", str(tmp_path), "--force", "--dry-run"])
    assert f"would run: bash {tmp_path}/down.sh --force" in result.stderr
    assert "whoever made it" in " ".join(runner.invoke(app, ["down", "--help"]).stdout.split())


def test_up_dry_run_compiles_and_runs_nothing(tmp_path):
    result = runner.invoke(app, ["up", DOCKER0, "--out", str(tmp_path / "d"), "--dry-run"])
    assert result.exit_code == 0
    assert result.stdout == ""
    assert f"would run: bash {tmp_path}/d/up.sh" in result.stderr
    assert sorted(os.listdir(tmp_path / "d")) == ["SHA256SUMS", "down.sh", "up.sh", "verify.sh"]


def test_verify_passes_its_options_to_the_script(tmp_path):
    result = runner.invoke(app, ["verify", DOCKER0, "-o", str(tmp_path), "--absent", "--tap", "--dry-run"])
    assert f"would run: bash {tmp_path}/verify.sh --absent --tap" in result.stderr


@pytest.fixture
def compiled(tmp_path):
    assert runner.invoke(app, ["compile", DOCKER0, "-o", str(tmp_path)]).exit_code == 0
    return tmp_path


def test_run_refuses_a_script_edited_since_it_was_compiled(compiled):
    script = compiled / "up.sh"
    script.write_text(script.read_text().replace("set -euo pipefail", "set -euo pipefail\nrm -rf /tmp/x"))
    result = runner.invoke(app, ["run", str(script), "--dry-run"])
    assert result.exit_code == 2
    assert f"refused: {script} has changed since netgen compiled it" in result.stderr
    assert "--allow-modified" in result.stderr
    allowed = runner.invoke(app, ["run", str(script), "--allow-modified", "--dry-run"])
    assert allowed.exit_code == 0 and f"would run: bash {script}" in allowed.stderr


def test_run_refuses_a_script_without_a_manifest(compiled):
    (compiled / "SHA256SUMS").unlink()
    result = runner.invoke(app, ["run", str(compiled / "up.sh")])
    assert result.exit_code == 2 and "SHA256SUMS is missing" in result.stderr


def test_run_accepts_the_compiled_script(compiled):
    result = runner.invoke(app, ["run", str(compiled / "down.sh"), "--dry-run"])
    assert result.exit_code == 0


def test_output_is_streamed_as_it_comes_and_the_exit_code_kept(tmp_path):
    script = tmp_path / "slow.sh"
    script.write_text("echo first\nsleep 2\necho second\nexit 3\n")
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from pathlib import Path; "
                             "from netgen.executor import run_script; sys.exit(run_script(Path(sys.argv[1])))",
                             str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "first\n"
    assert time.monotonic() - started < 1.8, "the first line came only at the end"
    assert proc.stdout.read() == "second\n"
    assert proc.wait() == 3
