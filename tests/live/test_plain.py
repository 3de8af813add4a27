"""netgen compile --style plain: the same lab as one ip command per line, which the batched scripts agree with."""

import subprocess
import time

import pytest
from helpers import EXAMPLES, REPO
from typer.testing import CliRunner

from netgen.cli import app
from netgen.pipeline import compile_lab

runner = CliRunner()


def plain(example: str, variant: str) -> str:
    result = runner.invoke(app, ["compile", str(REPO / "examples" / f"{example}.py"), "--style", "plain",
                                 "--variant", variant])
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("example", EXAMPLES)
def test_plain_up_runs_one_ip_command_per_step_in_the_batched_order(example):
    compiled = compile_lab(str(REPO / "examples" / f"{example}.py"))
    steps = [(s.ns, step) for s in compiled.plan.sections for step in s.steps
             if step.do and step.check[0] != "sysctl"]
    commands = [line for line in plain(example, "up").splitlines() if line.startswith("ip ")]
    for command, (ns, step) in zip(commands, steps, strict=True):
        prefix = "ip " if ns == "host" else f"ip -n '{ns}' "
        assert command.startswith(prefix), command
        assert command[len(prefix):].replace("'", "") == " ".join(step.do)


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("variant", ["up", "down", "verify"])
def test_plain_scripts_are_clean_for_bash_and_shellcheck(example, variant, tmp_path):
    path = tmp_path / f"{variant}.sh"
    path.write_text(plain(example, variant))
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    check = subprocess.run(["shellcheck", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout


@pytest.mark.live
@pytest.mark.parametrize("example", EXAMPLES)
def test_plain_up_builds_what_batched_verify_expects_and_plain_down_removes_it(example, sandbox, tmp_path):
    scripts = tmp_path / "plain"
    result = runner.invoke(app, ["compile", str(REPO / "examples" / f"{example}.py"), "--style", "plain",
                                 "-o", str(scripts)])
    assert result.exit_code == 0, result.stderr
    before = sandbox.snapshot()
    up = sandbox.run(f"bash {scripts}/up.sh")
    assert up.returncode == 0, up.stderr
    plain_verify = sandbox.run(f"bash {scripts}/verify.sh")
    assert plain_verify.returncode == 0, plain_verify.stdout
    sandbox.settled_snapshot(20)  # plain up does not wait for IPv6 DAD, and verify stops waiting at a service check
    batched = sandbox.run(f"NETGEN_VERIFY_WAIT=10 bash {REPO}/out/{example}/verify.sh")
    failed = [line for line in batched.stdout.splitlines() if line.startswith("FAIL")]
    # the plain style keeps no record, so the batched verify cannot tell its services are the lab's
    assert all(line.endswith("want running, have stopped") and " service " in line for line in failed), batched.stdout
    assert sandbox.run(f"bash {scripts}/down.sh").returncode == 0
    assert sandbox.run(f"bash {REPO}/out/{example}/verify.sh --absent").returncode == 0
    assert sandbox.snapshot() == before


# --- the plain scripts' promises: start checks, arguments, a down that never hangs, verify --absent and --tap ---

@pytest.fixture
def pid_sandbox():
    """A sandbox with its own PID namespace too: the processes down.sh sees and ends are the sandbox's only."""
    from helpers import _can_sandbox
    from sandbox import Sandbox

    reason = _can_sandbox()
    if reason:
        pytest.skip(reason)
    box = Sandbox(pid=True)
    yield box
    box.close()


def compiled(example: str, tmp_path) -> str:
    """The plain scripts of `example`, written to a folder; returns the folder."""
    scripts = tmp_path / "plain"
    result = runner.invoke(app, ["compile", str(REPO / "examples" / f"{example}.py"), "--style", "plain",
                                 "-o", str(scripts)])
    assert result.exit_code == 0, result.stderr
    return str(scripts)


def test_plain_header_says_what_the_plain_style_does_not_have():
    for variant in ("up", "down", "verify"):
        header = plain("docker0", variant).split("\nset -euo pipefail", 1)[0]
        text = " ".join(line.lstrip("# ") for line in header.splitlines())
        assert "no lock, no conflict checks and no ownership record" in text, variant


@pytest.mark.live
def test_plain_down_ends_the_processes_left_in_the_lab_namespaces_and_lists_them(pid_sandbox, tmp_path):
    scripts = compiled("docker0", tmp_path)
    before = pid_sandbox.snapshot()
    up = pid_sandbox.run(f"bash {scripts}/up.sh")
    assert up.returncode == 0, up.stderr
    # the seed's own case: a server still running in a container when the lab goes down
    started = pid_sandbox.run("ip netns exec nginx-1 sleep 1000 </dev/null >/dev/null 2>&1 & echo $!")
    pid = started.stdout.strip()
    assert pid.isdigit() and pid_sandbox.run(f"kill -0 {pid}").returncode == 0
    # and one that ignores TERM
    deaf = pid_sandbox.run("trap '' TERM; ip netns exec nginx-2 sleep 999 </dev/null >/dev/null 2>&1 & echo $!")
    deaf = deaf.stdout.strip()
    assert deaf.isdigit() and pid_sandbox.run(f"kill -0 {deaf}").returncode == 0
    start = time.monotonic()
    down = pid_sandbox.run(f"bash {scripts}/down.sh", timeout=15)
    assert time.monotonic() - start < 15
    assert down.returncode == 0, down.stderr
    assert f"ending process {pid} in namespace nginx-1: sleep 1000" in down.stdout
    assert f"ending process {deaf} in namespace nginx-2: sleep 999" in down.stdout
    assert f"still running 5 s after TERM, sent KILL: pids {deaf}" in down.stdout
    for ended in (pid, deaf):  # gone, or a zombie (the sandbox's init, `sleep infinity`, reaps no orphans)
        assert pid_sandbox.run(f"[[ ! -e /proc/{ended} ]] || grep -q '^State:.Z' /proc/{ended}/status").returncode == 0
    assert pid_sandbox.snapshot() == before


@pytest.mark.live
def test_plain_down_stops_waiting_for_a_veth_held_by_its_namespace_and_says_so(pid_sandbox, tmp_path):
    scripts = compiled("docker0", tmp_path)
    assert pid_sandbox.run(f"bash {scripts}/up.sh").returncode == 0
    # no process, but a second name (a bind mount) keeps namespace nginx-1 and its veth alive after `ip netns del`
    assert pid_sandbox.run("touch /run/held && mount --bind /run/netns/nginx-1 /run/held").returncode == 0
    start = time.monotonic()
    down = pid_sandbox.run(f"bash {scripts}/down.sh", timeout=30)
    assert time.monotonic() - start < 30
    assert down.returncode == 1
    assert "veth-nginx-1 is still there" in down.stderr
    assert "Traceback" not in down.stderr
    assert pid_sandbox.run("ip link show dev veth-nginx-2").returncode != 0  # the rest did go


@pytest.mark.live
def test_plain_verify_absent_and_tap(sandbox, tmp_path):
    scripts = compiled("veth_pair", tmp_path)
    assert sandbox.run(f"bash {scripts}/verify.sh --absent").returncode == 0  # nothing there yet
    assert sandbox.run(f"bash {scripts}/up.sh").returncode == 0
    absent = sandbox.run(f"bash {scripts}/verify.sh --absent")
    assert absent.returncode == 1
    assert "FAIL ns1 netns absent (" in absent.stdout
    tap = sandbox.run(f"bash {scripts}/verify.sh --tap")
    assert tap.returncode == 0, tap.stdout
    lines = tap.stdout.splitlines()
    count = int(next(line for line in lines if line.startswith("1..")).split("..")[1])
    results = [line for line in lines if line.startswith(("ok ", "not ok "))]
    assert count == len(results) > 0
    assert all(line.startswith(("ok ", "not ok ", "1..", "#", "TAP version")) for line in lines), tap.stdout
    assert [int(line.split()[1]) for line in results] == list(range(1, count + 1))
    assert all(line.startswith("ok ") and " - " in line for line in results)
    assert sandbox.run(f"bash {scripts}/down.sh").returncode == 0
    gone = sandbox.run(f"bash {scripts}/verify.sh --absent --tap")
    assert gone.returncode == 0, gone.stdout
    results = [line for line in gone.stdout.splitlines() if line.startswith(("ok ", "not ok "))]
    assert results and all(line.startswith("ok ") for line in results)
    assert results[0].startswith("ok 1 - ns1 netns absent (")


@pytest.mark.live
@pytest.mark.parametrize("variant", ["up", "down", "verify"])
def test_plain_scripts_refuse_arguments_they_do_not_know(sandbox, tmp_path, variant):
    scripts = compiled("veth_pair", tmp_path)
    before = sandbox.snapshot()
    result = sandbox.run(f"bash {scripts}/{variant}.sh --bogus")
    assert result.returncode == 2
    assert f"{variant}.sh: unknown argument: --bogus" in result.stderr
    assert sandbox.snapshot() == before


@pytest.mark.live
@pytest.mark.parametrize("variant", ["up", "down", "verify"])
def test_plain_scripts_refuse_without_root_or_ip_and_say_why(sandbox, tmp_path, variant):
    scripts = compiled("veth_pair", tmp_path)
    before = sandbox.snapshot()
    # from stdin: the scripts' folder is root's own
    nobody = sandbox.run(f"setpriv --reuid=65534 --regid=65534 --clear-groups bash -s <{scripts}/{variant}.sh")
    assert nobody.returncode == 2
    assert "must run as root" in nobody.stderr
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "bash").symlink_to("/bin/bash")
    no_ip = sandbox.run(f"PATH={tmp_path}/bin bash {scripts}/{variant}.sh")
    assert no_ip.returncode == 2
    assert "the ip command (iproute2) is not installed" in no_ip.stderr
    assert sandbox.snapshot() == before


@pytest.mark.live
def test_plain_down_leaves_the_processes_of_its_own_namespace_alone(pid_sandbox, tmp_path):
    scripts = compiled("docker0", tmp_path)
    # `ip netns attach NAME 1`: a lab name for the namespace down.sh itself runs in, where the sandbox's init runs
    assert pid_sandbox.run("ip netns attach nginx-1 1").returncode == 0
    down = pid_sandbox.run(f"bash {scripts}/down.sh", timeout=30)
    assert "namespace nginx-1 is the one down.sh runs in: its processes are left alone" in down.stderr
    assert "ending process" not in down.stdout
    assert pid_sandbox.run("kill -0 1").returncode == 0
