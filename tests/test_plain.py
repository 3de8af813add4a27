"""netgen compile --style plain: the same lab as one ip command per line, which the batched scripts agree with."""

import subprocess

import pytest
from conftest import EXAMPLES, REPO
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
    batched = sandbox.run(f"NETGEN_VERIFY_WAIT=10 bash {REPO}/out/{example}/verify.sh")
    failed = [line for line in batched.stdout.splitlines() if line.startswith("FAIL")]
    assert all(" tcp " in line for line in failed), batched.stdout  # docker0's tcp/80 needs a server
    assert sandbox.run(f"bash {scripts}/down.sh").returncode == 0
    assert sandbox.run(f"bash {REPO}/out/{example}/verify.sh --absent").returncode == 0
    assert sandbox.snapshot() == before
