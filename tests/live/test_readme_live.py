"""The README's commands that build a lab as root, run as a user runs them: its `netgen try` line and the demo's
last command (the README's other commands are tests/golden/test_readme.py)."""

import os
import re
import subprocess

import pytest
from helpers import REPO
from readme import DEMO, TRY, commands, netgen

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
