"""The executor and the commands that run scripts: up, down, verify, run, try."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO, _machine_state, ok
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


needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                reason="netgen try needs root and unshare")


@needs_root
@pytest.mark.parametrize("example", ["veth_pair", "bridge", "docker0"])
def test_up_verify_down_through_the_cli_in_a_sandbox(sandbox, tmp_path, example):
    lab = REPO / "examples" / f"{example}.py"
    before = sandbox.snapshot()
    up = sandbox.run(f"cd {tmp_path} && netgen up {lab}")
    assert up.returncode == 0 and f"lab {example} is up" in up.stdout
    assert (tmp_path / "out" / example / "up.sh").exists()  # compiled to out/LAB by default
    if example == "docker0":  # its services serve port 80; with nginx-1's stopped, verify names it
        ok(sandbox.run("pkill -f 'hello from nginx-[1]'"))
        failed = sandbox.run(f"cd {tmp_path} && NETGEN_VERIFY_WAIT=0 netgen verify {lab}")
        assert failed.returncode == 1
        assert "FAIL nginx-1 service web: want running, have stopped" in failed.stdout
        assert "FAIL nginx-2 tcp 172.17.0.2:80: want open, have refused" in failed.stdout
        ok(sandbox.run(f"cd {tmp_path} && netgen up {lab}"))  # up starts it again
    ok(sandbox.run(f"cd {tmp_path} && netgen verify {lab}"))
    ok(sandbox.run(f"netgen run {tmp_path}/out/{example}/down.sh"))
    assert sandbox.snapshot() == before
    ok(sandbox.run(f"cd {tmp_path} && netgen verify {lab} --absent"))


@needs_root
def test_progress_on_a_terminal(sandbox, tmp_path):
    star = REPO / "tests" / "labs" / "star.py"
    result = sandbox.run(f"STAR_N=20 script -qec 'netgen up {star} --out {tmp_path}' /dev/null")
    assert result.returncode == 0, result.stdout
    assert "netgen: 21 of 21 namespaces done" in result.stdout  # the pseudo-terminal carries both streams
    plain = sandbox.run(f"STAR_N=20 netgen down {star} --out {tmp_path}")
    assert plain.returncode == 0 and "namespaces done" not in plain.stdout + plain.stderr


@needs_root
def test_up_failure_shows_the_command_the_message_and_the_rollback(sandbox, tmp_path):
    from helpers import FAILING_IP

    result = sandbox.run(FAILING_IP.replace("@K@", "3") + f"cd {tmp_path} && PATH=/run/failing-ip:$PATH "
                         f"netgen up {DOCKER0}")
    assert result.returncode == 1
    assert "up.sh: in host, ip refused: link add name veth-nginx-1 type veth peer name eth0 netns nginx-1" in result.stderr
    assert "Operation not permitted (injected)" in result.stderr
    assert "undoing the 3 changes this run made" in result.stderr and "undo in host: netns del nginx-1" in result.stderr


@needs_root
def test_try_builds_runs_and_removes_the_lab():
    before = _machine_state()
    result = subprocess.run(["netgen", "try", DOCKER0, "--", "ip", "netns", "exec", "nginx-2", "ping", "-c1",
                             "172.17.0.2"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "1 received" in result.stdout and "netgen try: removing the lab" in result.stdout
    assert _machine_state() == before


@needs_root
def test_try_passes_on_the_failure_of_its_command_and_still_cleans_up():
    before = _machine_state()
    result = subprocess.run(["netgen", "try", str(REPO / "examples" / "veth_pair.py"), "--", "bash", "-c",
                             "exit 7"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 7
    assert _machine_state() == before


@needs_root
def test_try_interrupted_leaves_the_machine_as_it_was():
    before = _machine_state()
    proc = subprocess.Popen(["netgen", "try", str(REPO / "examples" / "bridge.py"), "--", "sleep", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while "netgen try: running sleep" not in (line := proc.stdout.readline()):
        assert line and time.monotonic() < deadline, "try did not reach its command"
    # The line comes just before the sandbox starts sleep. A Ctrl-C before that reaches only the sandbox's first
    # process, which (as a PID namespace's init) ignores it, and sleep would then run its full minute.
    while subprocess.run(["pgrep", "-g", str(proc.pid), "-x", "sleep"], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline, "try did not start its command"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # as Ctrl-C does: the whole process group
    proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert _machine_state() == before


@needs_root
def test_try_adds_nothing_to_the_machines_run():
    """On a machine whose /run has no /run/mount yet (util-linux's mount makes it to record mounts), try leaves
    /run as it found it. The machine's /run is stood in for by a fresh tmpfs in a mount namespace of the test's."""
    result = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c",
                             "mount -n -t tmpfs fresh-run /run && mkdir /run/lock && "
                             f"netgen try {REPO}/examples/veth_pair.py -- true >/dev/null && ls -A /run"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["lock"]
