"""The commands of README.md and docs/ that build a lab as root, run as a user runs them: the front page's lab from
up to down, the CLI page's `netgen try` line and the demo's last command (the other commands are
tests/golden/test_readme.py)."""

import os
import re
import subprocess

import pytest
from helpers import REPO
from readme import DEMO, ONE_LAB, SESSION, TRY, commands, netgen

pytestmark = pytest.mark.live

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: it builds the lab in a sandbox")


@needs_root
def test_try_prints_the_page_of_the_labs_web_service_and_every_check_passes(checkout):
    """Issue 17: the lab starts its own web server (a service), so verify passes whole before the command runs."""
    from helpers import _machine_state

    command = TRY
    assert command == "sudo netgen try examples/docker0.py -- ip netns exec nginx-2 curl -s 172.17.0.2"
    before = _machine_state()
    result = netgen(command.removeprefix("sudo "), checkout)  # already root (a fresh machine may have no sudo)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "up.sh: nginx-1: service web started (pid " in out
    assert "ok   nginx-1 service web: running" in out and "ok   nginx-2 tcp 172.17.0.2:80: open" in out
    assert re.search(r"verify\.sh: lab docker0: \d+ checks passed, 0 failed", out), out
    assert "verify found differences" not in out and "FAIL" not in out
    assert "\nhello from nginx-1\n" in out and "netgen try: removing the lab" in out
    assert _machine_state() == before


@needs_root
def test_the_demo_runs_end_to_end_in_its_sandbox():
    """The demo command's last part, with netgen installed (as the tests run): build, verify, ping, curl, down."""
    from helpers import _machine_state

    before = _machine_state()
    result = subprocess.run(commands(DEMO)[-1], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for line in ("up.sh: lab docker0 is up (", "verify.sh: lab docker0: ", "2 received", "hello from nginx-1",
                 "down.sh: lab docker0 is down ("):
        assert line in out, line
    assert re.search(r"verify\.sh: lab docker0: \d+ checks passed, 0 failed", out)
    assert _machine_state() == before


@needs_root
def test_the_front_pages_lab_runs_as_shown_from_up_to_down(sandbox, checkout):
    """README.md's "One lab, from file to down": each command, in a sandbox, prints the lines shown ("  ...": some
    left out), in that order; and the sentence after it holds: up again changes nothing, and verify names a
    difference in the words it shows."""
    def run(command):
        result = sandbox.run(f"cd {checkout} && {command}")
        return result.returncode, (result.stderr + result.stdout).splitlines()

    assert [command for command, _ in SESSION] == [f"sudo netgen {verb} examples/veth_pair.py"
                                                   for verb in ("up", "verify", "down")]
    for command, shown in SESSION:
        if command.startswith("sudo netgen down"):  # first, what the sentence after the session says
            code, printed = run("netgen up examples/veth_pair.py")
            assert code == 0 and "up.sh: lab veth_pair is already up; nothing changed" in printed, printed
            fail = re.search(r"`(FAIL [^`]+)`", " ".join(ONE_LAB.split())).group(1)
            assert sandbox.run("ip -n ns1 addr del 192.168.10.200/24 dev veth0").returncode == 0
            code, printed = run("netgen verify examples/veth_pair.py")
            assert code == 1 and fail in printed, printed
        code, printed = run(command.removeprefix("sudo "))  # already root (a fresh machine may have no sudo)
        assert code == 0, printed
        shown = [line for line in shown if line != "  ..."]
        assert [line for line in printed if line in shown] == shown, printed
