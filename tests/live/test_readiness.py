"""Issue 25: a service is ready before up says the lab is up, and one whose program is not on the host is refused
before any change. Unit tests of what the compiler writes (SERVICES: NS NAME PROGRAM LOC PORTS); live tests, each in
a sandbox with its own PID namespace."""

import os
import re

import pytest
from helpers import REPO

from netgen.pipeline import compile_lab, write_scripts


@pytest.mark.parametrize("command, found", [
    (("python3", "-c", "pass"), "python3"),
    (("/usr/bin/env", "x"), "/usr/bin/env"),
    ("python3 -m http.server 80", "python3"),
    ("exec sleep 600", "sleep"),
    ("PORT=80 exec nc -l $PORT", "nc"),
    ("exit 3", "sh"),
    ("echo hi; sleep 1", "sh"),
    ("$HOME/bin/x", "sh"),
    ("  ", "sh"),
])
def test_the_program_of_a_command(command, found):
    from netgen.plan import program

    assert program(command) == found


def services_line(example: str, node: str = "") -> list[str]:
    text = (REPO / "out" / example / node / "up.sh").read_text()
    block = re.search(r"^SERVICES=\(\n(.*?)^\)\n", text, re.M | re.S)
    return [line.strip() for line in block.group(1).splitlines()] if block else []


def test_up_lists_each_service_with_its_program_line_and_the_ports_the_expectations_name():
    assert services_line("docker0") == ["'nginx-1' 'web' 'python3' 'examples/docker0.py:23' '172.17.0.2:80'",
                                        "'nginx-2' 'web' 'python3' 'examples/docker0.py:23' ''"]
    # with nodes, the other node's expectations count: node2's pod-2-2 reaches pod-1-2 on tcp/80
    assert services_line("host_gw", "node1") == ["'pod-1-1' 'web' 'python3' 'examples/host_gw.py:28' ''",
                                                 "'pod-1-2' 'web' 'python3' 'examples/host_gw.py:28' '10.244.1.3:80'"]
    assert services_line("host_gw", "node2")[0] == "'pod-2-1' 'web' 'python3' 'examples/host_gw.py:28' '10.244.2.2:80'"
    assert "SERVICES=() # no services\n" in (REPO / "out" / "veth_pair" / "up.sh").read_text()


def test_an_ipv6_port_is_written_in_brackets(tmp_path):
    lab = tmp_path / "six.py"
    lab.write_text('from netgen import Lab\nlab = Lab("six")\na, b = lab.netns("a"), lab.netns("b")\n'
                   'lab.veth(a.port("eth0", "fd00::1/64", nodad=True), b.port("eth0", "fd00::2/64", nodad=True))\n'
                   'b.service("web", "python3 -m http.server 80")\n'
                   'lab.expect(a).reaches("fd00::2", tcp=80)\nlab.expect(a).reaches("fd00::2", tcp=80)\n'
                   'lab.expect(a).cannot_reach("fd00::2", tcp=81)\n')
    plan = compile_lab(str(lab)).plan
    assert [tuple(r) for r in plan.readiness] == [("b", "web", "python3", f"{lab}:5", "[fd00::2]:80")]


# --- live ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def box():
    if os.geteuid() != 0:
        pytest.skip("live tests need root")
    from sandbox import Sandbox

    sandbox = Sandbox(pid=True)
    yield sandbox
    sandbox.close()


def scripts(tmp_path, text: str, name: str = "ready"):
    (tmp_path / f"{name}.py").write_text(text)
    write_scripts(compile_lab(str(tmp_path / f"{name}.py")), str(tmp_path / name))
    return {v: f"bash {tmp_path / name}/{v}.sh" for v in ("up", "down", "verify")}


# A server that binds at once and listens only after DELAY seconds (as HTTPServer does when it looks the host's name
# up first): the port refuses connections until then.
LATE = ('import socket, sys, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); '
        's.bind(("", 80)); print("bound", flush=True); time.sleep(float(sys.argv[1])); s.listen(); '
        'print("listening", flush=True); [s.accept()[0].close() for _ in iter(int, 1)]')


def late_lab(delay: float) -> str:
    return ("from netgen import Lab\nlab = Lab('ready')\na, b = lab.netns('a'), lab.netns('b')\n"
            "lab.veth(a.port('eth0', '10.9.0.1/24'), b.port('eth0', '10.9.0.2/24'))\n"
            f"b.service('web', ['python3', '-c', {LATE!r}, '{delay}'])\n"
            "lab.expect(a).reaches('10.9.0.2', tcp=80)\n")


def test_up_waits_until_the_service_answers_on_the_port_its_expectation_names(box, tmp_path):
    s = scripts(tmp_path, late_lab(2))
    up = box.run(s["up"], env={"NETGEN_VERIFY_WAIT": "10"})
    assert up.returncode == 0, up.stdout + up.stderr
    assert "lab ready is up" in up.stdout
    # when up says so, it answers: verify passes at once
    verify = box.run(s["verify"], env={"NETGEN_VERIFY_WAIT": "0"})
    assert verify.returncode == 0, verify.stdout
    assert "ok   a tcp 10.9.0.2:80: open" in verify.stdout
    assert box.run(s["down"]).returncode == 0


def test_up_rolls_back_a_service_that_never_answers_naming_it_and_its_log(box, tmp_path):
    before = box.snapshot()
    s = scripts(tmp_path, late_lab(600))
    up = box.run(s["up"], env={"NETGEN_VERIFY_WAIT": "2"})
    assert up.returncode == 1, up.stdout + up.stderr
    assert "FAIL b service web tcp 10.9.0.2:80: want open, have refused" in up.stderr
    assert f"up.sh: b: service web ({tmp_path}/ready.py:5), the last lines of /run/netgen/ready.b.web.log:\n" \
           "  | bound\n" in up.stderr
    assert "undo: stop service service/b/web" in up.stderr
    assert box.run("ip netns list").stdout == ""
    assert box.snapshot() == before


def test_a_service_whose_program_is_not_on_the_host_is_refused_before_any_change(box, tmp_path):
    """Issue 25: on a host without python3, docker0's up made every object, then its services failed to start and
    it undid ten changes. Now it changes nothing."""
    before = box.snapshot()
    # python3 hidden in the sandbox: a file that cannot be run, in its place
    path = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    hide = box.run('mount --bind /dev/null "$(readlink -f "$(command -v python3)")" && ! python3 -c 1', env=path)
    assert hide.returncode == 0, hide.stderr
    up = box.run(f"bash {REPO}/out/docker0/up.sh", env=path)
    assert up.returncode == 1, up.stdout + up.stderr
    assert "up.sh: nginx-1: service web (examples/docker0.py:23) runs python3, which is not installed on this host " \
           "(no python3 in PATH that can be run)" in up.stderr
    assert "up.sh: nginx-2: service web (examples/docker0.py:23) runs python3" in up.stderr
    assert "up.sh: nothing was changed: 2 services' programs are not installed (above)" in up.stderr
    assert up.stdout == ""
    assert box.run("ls /run/netgen").stdout.strip() in ("",)
    assert box.snapshot() == before
