"""The executor and the commands that run scripts, live: up, verify and down through the CLI in a sandbox, and
try on the machine itself (it makes its own sandbox). Needs root; the rest is tests/unit/test_executor.py."""

import os
import re
import shutil
import signal
import subprocess
import time

import pytest
from helpers import REPO, _machine_state, ok

pytestmark = pytest.mark.live

DOCKER0 = str(REPO / "examples" / "docker0.py")
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

    # the host's batch: each namespace, then its mark (netns set), docker0 (in the lab's link group), then the first
    # veth pair
    result = sandbox.run(FAILING_IP.replace("@K@", "5") + f"cd {tmp_path} && PATH=/run/failing-ip:$PATH "
                         f"netgen up {DOCKER0}")
    assert result.returncode == 1
    assert re.search(r"up\.sh: in host, ip refused: link add name veth-nginx-1 group \d+ type veth peer name eth0 "
                     r"netns nginx-1\n", result.stderr)
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
