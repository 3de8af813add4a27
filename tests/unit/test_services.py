"""Issue 17, services: a process a lab runs in one of its namespaces. Unit tests of the DSL, validation, the JSON
format and the scripts; live tests, each in a sandbox with its own PID namespace (they start and end processes),
of what up, verify and down do with them."""

import json
import os
import re

import pytest
from helpers import HEADER, assert_reports, compiles

from netgen.labjson import from_json, to_json

# --- validation: one bad input per rule ----------------------------------------------------------------------------


@pytest.mark.parametrize("call, fragments", [
    ('ns.service("a b", "sleep 1")', ("service name 'a b' contains ' '",)),
    ('ns.service("", "sleep 1")', ("service name is empty",)),
    ('ns.service("-web", "sleep 1")', ("starts with '-'",)),
    ('ns.service("a" * 16, "sleep 1")', ("is 16 bytes long; netgen allows at most 15",)),
    ('ns.service(7, "sleep 1")', ("service name must be a string, got 7",)),
    ('lab.host.service("web", "sleep 1")', ("service web: the lab never runs processes in the host",)),
    ('lab.netns("ctr", external=True).service("web", "sleep 1")', ("service web in namespace ctr, which is external",)),
    ('ns.service("web", "")', ("service web: command is empty",)),
    ('ns.service("web", "   ")', ("service web: command is empty",)),
    ('ns.service("web", [])', ("service web: command must be a string (run by sh -c) or a non-empty list",)),
    ('ns.service("web", ["sleep", 1])', ("command must be a string (run by sh -c) or a non-empty list of strings",)),
    ('ns.service("web", "sleep 1\\nrm -rf /")', ("holds a line break or another character that is not printable",)),
    ('ns.service("web", None)', ("command must be a string",)),
])
def test_a_bad_service_is_reported_at_its_line(tmp_path, call, fragments):
    assert_reports(tmp_path, HEADER + call + "\n", 4, *fragments)


def test_a_service_name_is_unique_in_its_namespace(tmp_path):
    assert_reports(tmp_path, HEADER + 'ns.service("web", "sleep 1")\nns.service("web", "sleep 2")\n', 5,
                   "service ns1/web is already defined at line 4; service names must be unique within a namespace")
    compiles(tmp_path, HEADER + 'ns.service("web", "sleep 1")\nlab.netns("ns2").service("web", "sleep 1")\n')


def test_a_service_in_a_namespace_the_lab_does_not_make_is_reported_from_json(tmp_path):
    path = tmp_path / "lab.json"
    path.write_text(json.dumps({"format": 1, "name": "t", "namespaces": [{"name": "ns1"}],
                                "services": [{"ns": "ns9", "name": "web", "command": "sleep 1"}]}))
    from netgen.pipeline import CompileError, compile_lab
    with pytest.raises(CompileError) as e:
        compile_lab(str(path))
    assert "service web in namespace 'ns9', which the lab does not define" in str(e.value)


# --- the scripts -----------------------------------------------------------------------------------------------------

LAB = HEADER + 'ns.service("web", "python3 -m http.server 80 --bind \'127.0.0.1\'")\nns.service("idle", ["sleep", "600"])\n'


def test_the_scripts_show_each_command_quoted_under_its_lab_line(tmp_path):
    compiled = compiles(tmp_path, LAB)
    path = str(tmp_path / "lab.py")
    up, verify = compiled.script("up"), compiled.script("verify")
    web = (f"  # ns1: service web ({path}:4)\n"
           "  service 'ns1' 'web' sh -c 'python3 -m http.server 80 --bind '\\''127.0.0.1'\\'''\n")
    idle = f"  # ns1: service idle ({path}:5)\n  service 'ns1' 'idle' 'sleep' '600'\n"
    for script in (up, verify):
        assert web + idle in script
    assert "#   2 services: ns1/web, ns1/idle\n" in up
    # down stops what the record names, whatever the lab says now: it needs no list
    assert "service 'ns1'" not in compiled.script("down") and "stop_services\n" in compiled.script("down")


def test_json_keeps_both_forms_of_a_command(tmp_path):
    compiled = compiles(tmp_path, LAB)
    exported = to_json(compiled.lab)
    services = json.loads(exported)["services"]
    assert [s["command"] for s in services] == ["python3 -m http.server 80 --bind '127.0.0.1'", ["sleep", "600"]]
    again = from_json(exported, "lab.json")
    assert again.services == compiled.lab.services and to_json(again) == exported


# --- live ------------------------------------------------------------------------------------------------------------


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


def recorded(box, key: str = "service/ns1/idle") -> str:
    record = ok(box.run("cat /run/netgen/svc.made")).stdout
    found = re.search(rf"^{re.escape(key)} ([0-9]+):([0-9]+)$", record, re.M)
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
    assert f"service/ns1/idle {pid}:{start}\n" in ok(box.run("cat /run/netgen/svc.made")).stdout
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
    ok(box.run(f"sed -i 's|^service/ns1/idle .*|service/ns1/idle {foreign}:1|' /run/netgen/svc.made"))
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
