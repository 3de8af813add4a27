"""Issue 17, services: a process a lab runs in one of its namespaces. Unit tests of the DSL, validation, the JSON
format and the scripts (tests/live/test_services_live.py runs them)."""

import json

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

LAB = HEADER + ('ns.service("web", "python3 -m http.server 80 --bind \'127.0.0.1\'")\n'
                'ns.service("idle", ["sleep", "600"])\n')


def test_the_scripts_show_each_command_quoted_under_its_lab_line(tmp_path):
    compiled = compiles(tmp_path, LAB)
    path = str(tmp_path / "lab.py")
    up, verify = compiled.script("up"), compiled.script("verify")
    web = (f"  # ns1: service web ({path}:4)\n"
           "  service 'ns1' 'web' sh -c 'python3 -m http.server 80 --bind '\\''127.0.0.1'\\'''\n")
    idle = f"  # ns1: service idle ({path}:5)\n  service 'ns1' 'idle' 'sleep' '600'\n"
    # down lists them too: it stops only a service the lab declares, whatever the record says
    for script in (up, verify, compiled.script("down")):
        assert web + idle in script
    assert "#   2 services: ns1/web, ns1/idle\n" in up


def test_json_keeps_both_forms_of_a_command(tmp_path):
    compiled = compiles(tmp_path, LAB)
    exported = to_json(compiled.lab)
    services = json.loads(exported)["services"]
    assert [s["command"] for s in services] == ["python3 -m http.server 80 --bind '127.0.0.1'", ["sleep", "600"]]
    again = from_json(exported, "lab.json")
    assert again.services == compiled.lab.services and to_json(again) == exported
