"""Issue 17, services, live: each test in a sandbox with its own PID namespace (they start and end processes),
of what up, verify and down do with them (the unit tests are tests/unit/test_services.py)."""

import os
import re

import pytest

pytestmark = pytest.mark.live


@pytest.fixture
def box():
    if os.geteuid() != 0:
        pytest.skip("live tests need root")
    from sandbox import Sandbox

    sandbox = Sandbox(pid=True)
    yield sandbox
    sandbox.close()


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


SLEEPER = 'from netgen import Lab\nlab = Lab("svc")\nns = lab.netns("ns1")\nns.service("idle", "exec sleep 600")\n'


def scripts(tmp_path, text: str = SLEEPER, name: str = "svc"):
    from netgen.pipeline import compile_lab, write_scripts

    (tmp_path / f"{name}.py").write_text(text)
    write_scripts(compile_lab(str(tmp_path / f"{name}.py")), str(tmp_path / name))
    return {v: f"bash {tmp_path / name}/{v}.sh" for v in ("up", "down", "verify")}


def recorded(box, key: str = "service ns1 idle") -> str:
    record = ok(box.run("cat /run/netgen/svc.made")).stdout
    found = re.search(rf"^{re.escape(key)} ([0-9]+) ([0-9]+)$", record, re.M)
    assert found, record
    return found.group(1)


def pids_of(box, pattern: str = "sleep 600") -> list[str]:
    return box.run(f"pgrep -f '^{pattern}$'").stdout.split()


def test_up_starts_it_in_its_namespace_detached_without_the_lock_and_records_it(box, tmp_path):
    s = scripts(tmp_path)
    up = ok(box.run(s["up"]))
    pid = recorded(box)
    assert f"up.sh: ns1: service idle started (pid {pid}, output in /run/netgen/svc.ns1.idle.log)" in up.stdout
    assert pids_of(box) == [pid]
    # in ns1, its own session, in /, its start time recorded
    ok(box.run(f'[[ $(stat -L -c %d:%i /proc/{pid}/ns/net) == $(stat -L -c %d:%i /run/netns/ns1) ]]'))
    ok(box.run(f'[[ $(ps -o sid= -p {pid}) -eq {pid} && $(readlink /proc/{pid}/cwd) == / ]]'))
    start = ok(box.run(f"cut -d' ' -f22 /proc/{pid}/stat")).stdout.strip()
    assert f"service ns1 idle {pid} {start}\n" in ok(box.run("cat /run/netgen/svc.made")).stdout
    # the lab's lock is free: the service did not inherit it
    ok(box.run("flock -n -x /run/netgen/svc.lock true"))
    assert not ok(box.run(f"ls -l /proc/{pid}/fd")).stdout.count("svc.lock")
    ok(box.run("[[ -f /run/netgen/svc.ns1.idle.log ]]"))


def test_up_again_leaves_it_and_verify_names_one_that_was_killed(box, tmp_path):
    s = scripts(tmp_path)
    ok(box.run(s["up"]))
    pid = recorded(box)
    again = ok(box.run(s["up"]))
    assert "lab svc is already up; nothing changed" in again.stdout
    assert recorded(box) == pid and pids_of(box) == [pid]
    verify = ok(box.run(s["verify"]))
    assert "ok   ns1 service idle: running" in verify.stdout
    ok(box.run(f"kill {pid}"))
    verify = box.run(s["verify"])
    assert verify.returncode == 1 and "FAIL ns1 service idle: want running, have stopped" in verify.stdout
    # up starts it again
    ok(box.run(s["up"]))
    assert recorded(box) != pid and len(pids_of(box)) == 1
    ok(box.run(s["verify"]))


def test_down_stops_it_first_then_verify_absent_passes(box, tmp_path):
    s = scripts(tmp_path)
    ok(box.run(s["up"]))
    pid = recorded(box)
    down = ok(box.run(s["down"]))
    assert f"down.sh: ns1: stopping service idle (pid {pid})" in down.stdout
    assert "ending pid" not in down.stdout  # stopped by its identity, before the namespace's processes are ended
    assert pids_of(box) == []
    assert box.run("test -e /run/netgen/svc.made").returncode == 1
    absent = ok(box.run(s["verify"] + " --absent"))
    assert "ok   ns1 service idle: stopped" in absent.stdout


def test_down_never_signals_a_pid_whose_start_time_is_not_the_recorded_one(box, tmp_path):
    s = scripts(tmp_path)
    ok(box.run(s["up"]))
    pid = recorded(box)
    # a process outside the lab's namespaces, and the record naming its pid with another start time (a reused pid)
    ok(box.run("(setsid sleep 700 >/dev/null 2>&1 &)"))
    foreign = pids_of(box, "sleep 700")[0]
    ok(box.run(f"sed -i 's|^service ns1 idle .*|service ns1 idle {foreign} 1|' /run/netgen/svc.made"))
    down = ok(box.run(s["down"]))
    assert f"pid {foreign}" not in down.stdout
    assert pids_of(box, "sleep 700") == [foreign]  # untouched
    assert f"ns1: ending pid {pid} (sleep 600)" in down.stdout  # the service went with its namespace
    assert pids_of(box) == []


def test_a_rolled_back_up_stops_the_services_it_started(box, tmp_path):
    lab = SLEEPER + 'ns.service("broken", "exit 3")\n'
    s = scripts(tmp_path, lab)
    up = box.run(s["up"])
    assert up.returncode == 1, up.stdout + up.stderr
    assert "FAIL ns1 service broken: want running, have stopped" in up.stderr
    assert "undo: stop service service/ns1/idle" in up.stderr
    assert pids_of(box) == []
    assert box.run("ip netns list").stdout == ""
    assert box.run("test -e /run/netgen/svc.made").returncode == 1
