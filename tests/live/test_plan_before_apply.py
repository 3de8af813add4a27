"""up.sh --plan and down.sh --plan read the live state, print what a run would do now and change nothing; the
commands they print are the ones the following run writes to its log (STATE_DIR/LAB.log)."""

import re

import pytest
from helpers import EXAMPLES, ok, script

pytestmark = pytest.mark.live

# The state directory's files, as they are: --plan must not touch them (the lock file may be made: it is opened).
STATE = "cd /run/netgen 2>/dev/null && for f in $(ls -A | grep -v '[.]lock$'); do echo \"== $f\"; cat \"$f\"; done"


def commands(text: str) -> list[str]:
    """The ip and sysctl commands of a plan's output, or of a log (its command field), in order."""
    out = []
    for line in text.splitlines():
        logged = re.match(r"^\S+ (?:up|down)\.sh\[\d+\] [^:]+: (.*): [^:]*$", line)
        line = logged.group(1) if logged else line
        if line.startswith(("ip ", "sysctl -w ")):
            # the marks: a new namespace's id and, for a lab not up yet, its link group are drawn by each run
            out.append(re.sub(r"^(ip netns set \S+) \d+$", r"\1 ID", re.sub(r" group \d+", " group GROUP", line)))
    return out


@pytest.mark.parametrize("example", EXAMPLES)
def test_up_plan_changes_nothing_and_lists_what_up_then_logs(sandbox, example):
    before, state = sandbox.snapshot(), sandbox.run(STATE).stdout
    plan = ok(sandbox.run(script(example, "up") + " --plan"))
    assert "(--plan: nothing was changed)" in plan.stdout
    assert sandbox.snapshot() == before and sandbox.run(STATE).stdout == state
    planned = commands(plan.stdout)
    assert planned and planned[0].startswith("ip netns add ")
    ok(sandbox.run(script(example, "up")))
    logged = commands(ok(sandbox.run(f"cat /run/netgen/{example}.log")).stdout)
    assert logged == planned
    again = ok(sandbox.run(script(example, "up") + " --plan"))
    assert f"nothing to do: lab {example} is up as built" in again.stdout and commands(again.stdout) == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_down_plan_changes_nothing_and_lists_what_down_then_logs(sandbox, example):
    ok(sandbox.run(script(example, "up") + " && rm /run/netgen/*.log"))
    before, state = sandbox.settled_snapshot(), sandbox.run(STATE).stdout
    plan = ok(sandbox.run(script(example, "down") + " --plan"))
    assert sandbox.snapshot() == before and sandbox.run(STATE).stdout == state
    planned = commands(plan.stdout)
    assert planned
    ok(sandbox.run(script(example, "down")))
    assert commands(ok(sandbox.run(f"cat /run/netgen/{example}.log")).stdout) == planned
    assert "nothing to do" in ok(sandbox.run(script(example, "down") + " --plan")).stdout


def test_up_plan_names_conflicts_and_exits_1(sandbox):
    ok(sandbox.run("ip link add docker0 type bridge"))
    before = sandbox.snapshot()
    plan = sandbox.run(script("docker0", "up") + " --plan")
    assert plan.returncode == 1
    assert "host/docker0: exists (bridge), not made by this lab" in plan.stderr
    assert "up would refuse and change nothing" in plan.stderr
    assert sandbox.snapshot() == before


def test_down_plan_names_what_it_would_leave(sandbox):
    ok(sandbox.run("ip netns add ns1"))
    plan = ok(sandbox.run(script("veth_pair", "down") + " --plan"))
    assert "# would leave: netns ns1: left alone, not made by this lab" in plan.stdout


@pytest.mark.parametrize("variant", ["up", "down", "verify"])
def test_scripts_refuse_arguments_they_do_not_know(sandbox, variant):
    before = sandbox.snapshot()
    result = sandbox.run(script("veth_pair", variant) + " --bogus")
    assert result.returncode == 2 and "unknown option: --bogus" in result.stderr
    assert sandbox.snapshot() == before
