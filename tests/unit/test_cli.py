"""The netgen command: data on stdout, messages on stderr, exit codes 0 / 1 / 2."""

import os
import re
import shutil
import stat
import subprocess
import sys

import pytest
from helpers import REPO
from typer.testing import CliRunner

from netgen import __version__
from netgen.cli import app

runner = CliRunner()
DOCKER0 = str(REPO / "examples" / "docker0.py")


def invoke(*args):
    return runner.invoke(app, list(args))


@pytest.mark.parametrize("variant", ["up", "down", "verify"])
def test_compile_prints_the_chosen_script(variant):
    args = ["compile", DOCKER0] + ([] if variant == "up" else ["--variant", variant])
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("#!/usr/bin/env bash\n")
    assert f"# {variant}.sh for lab docker0:" in result.stdout
    assert result.stderr == ""


def test_compile_o_writes_three_executable_scripts_and_prints_nothing(tmp_path):
    result = invoke("compile", DOCKER0, "-o", str(tmp_path / "docker0"))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    for variant in ("up", "down", "verify"):
        path = tmp_path / "docker0" / f"{variant}.sh"
        assert path.stat().st_mode & stat.S_IXUSR
        assert path.read_text() == invoke("compile", DOCKER0, "--variant", variant).stdout
    # and a manifest for `netgen run`; no temp files left
    assert sorted(os.listdir(tmp_path / "docker0")) == ["SHA256SUMS", "down.sh", "up.sh", "verify.sh"]


def test_check_prints_a_summary():
    result = invoke("check", DOCKER0)
    assert result.exit_code == 0
    assert "lab docker0" in result.stdout
    assert "2 namespaces: nginx-1, nginx-2" in result.stdout
    assert "1 bridge: host/docker0" in result.stdout
    assert "3 addresses, 2 routes" in result.stdout


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout == f"netgen {__version__}\n"


def test_invalid_lab_exits_1_with_messages_on_stderr_and_writes_nothing(tmp_path):
    lab = tmp_path / "lab.py"
    lab.write_text('from netgen import Lab\nlab = Lab("x")\nlab.netns("a/b")\nlab.netns("c d")\n')
    result = invoke("compile", str(lab), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert f"{lab}:3: namespace name 'a/b'" in result.stderr
    assert f"{lab}:4: namespace name 'c d'" in result.stderr
    assert "2 errors; nothing was written" in result.stderr
    assert not (tmp_path / "out").exists()


def test_warnings_go_to_stderr_and_compile_succeeds(tmp_path):
    lab = tmp_path / "lab.py"
    lab.write_text('from netgen import Lab\nlab = Lab("x")\nbr = lab.host.bridge("br0")\nns = lab.netns("a")\n'
                   'lab.veth(ns.port("e0", "10.0.0.2/24"), br.port("p0", "10.0.0.3/24"))\n')
    result = invoke("compile", str(lab))
    assert result.exit_code == 0
    assert f"{lab}:5: warning: host/p0 is a port of bridge br0" in result.stderr
    assert result.stdout.startswith("#!/usr/bin/env bash")


@pytest.mark.parametrize("args", [["compile"], ["compile", DOCKER0, "--variant", "sideways"],
                                  ["compile", "/nonexistent/lab.py"], ["frobnicate"], ["compile", DOCKER0, "--bogus"]])
def test_usage_errors_exit_2(args):
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stdout == ""


@pytest.mark.parametrize("command", [[], ["compile"], ["check"]])
def test_help_has_an_example(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Example: netgen " in result.stdout


def test_installed_console_script_runs_without_traceback(tmp_path):
    """The real entry point, as a user runs it: a broken lab gives a message, not a Python traceback."""
    lab = tmp_path / "lab.py"
    lab.write_text("from netgen import Lab\nlab = Lab('x')\n1 / 0\n")
    result = subprocess.run([sys.executable, "-c", "from netgen.cli import main; main()", "compile", str(lab)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert f"{lab}:3: the lab file raised ZeroDivisionError: division by zero" in result.stderr


@pytest.mark.parametrize("fmt,start", [("dot", 'graph "docker0" {'), ("mermaid", "flowchart LR")])
def test_graph_prints_text_formats(fmt, start):
    result = invoke("graph", DOCKER0, "--format", fmt)
    assert result.exit_code == 0 and result.stdout.startswith(start)
    assert "veth-nginx-1" in result.stdout and "172.17.0.1/16" in result.stdout


def test_graph_draws_svg_with_graphviz(tmp_path):
    if not shutil.which("dot"):
        pytest.skip("Graphviz (dot) is not installed")
    result = invoke("graph", DOCKER0, "-f", "svg", "-o", str(tmp_path / "d.svg"))
    assert result.exit_code == 0 and result.stdout == ""
    assert "<svg" in (tmp_path / "d.svg").read_text() and "docker0" in (tmp_path / "d.svg").read_text()


def test_graph_picture_needs_a_file_and_graphviz(tmp_path):
    no_file = invoke("graph", DOCKER0, "-f", "png")
    assert no_file.exit_code == 2 and "-o FILE.png" in no_file.stderr
    without_dot = CliRunner(env={"PATH": str(tmp_path)}).invoke(app, ["graph", DOCKER0, "-f", "svg", "-o",
                                                                      str(tmp_path / "d.svg")])
    assert without_dot.exit_code == 1
    assert "Graphviz is not installed" in without_dot.stderr and "apt-get install graphviz" in without_dot.stderr


def test_inspect_with_a_lab_lists_its_objects_as_json():
    import json

    result = invoke("inspect", DOCKER0, "--json")
    assert result.exit_code == 0, result.stderr
    rows = {(r["ns"], r["interface"]) for r in json.loads(result.stdout)}
    assert {("host", "docker0"), ("nginx-1", "eth0"), ("nginx-2", "eth0")} <= rows


def test_timeout_stops_a_lab_that_never_finishes_and_writes_nothing(tmp_path):
    lab = tmp_path / "lab.py"
    lab.write_text('from netgen import Lab\nlab = Lab("x")\nwhile True:\n    pass\n')
    result = invoke("compile", str(lab), "--timeout", "1", "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    message = r":[34]: the lab file did not finish within 1 s \(it was running line [34]\)"
    assert re.search(re.escape(str(lab)) + message, result.stderr), result.stderr
    assert "1 error; nothing was written" in result.stderr
    assert not (tmp_path / "out").exists()


def test_v_is_not_short_for_variant():
    result = invoke("compile", DOCKER0, "-v", "down")
    assert result.exit_code == 2 and result.stdout == ""
    assert "No such option: -v" in result.stderr
    assert "-v" not in invoke("compile", "--help").stdout.replace("--variant", "")


@pytest.mark.parametrize("command,kind", [("compile", "DIR"), ("up", "DIR"), ("down", "DIR"), ("verify", "DIR"),
                                          ("export", "FILE"), ("graph", "FILE")])
def test_o_is_a_folder_or_a_file_and_the_help_says_which(command, kind):
    text = " ".join(invoke(command, "--help").stdout.split())
    assert f"-o, --out {kind} " in text
    assert ("A folder (made if missing)" if kind == "DIR" else "A file: write") in text
    assert f"-o {kind}" in text  # the command's own description says what -o makes


@pytest.mark.parametrize("command,wrong", [(["compile", DOCKER0], "a file"), (["export", DOCKER0], "a folder"),
                                          (["graph", DOCKER0], "a folder")])
def test_o_of_the_wrong_kind_is_a_usage_error(tmp_path, command, wrong):
    target = tmp_path / "x"
    target.mkdir() if wrong == "a folder" else target.write_text("")
    result = invoke(*command, "-o", str(target))
    assert result.exit_code == 2 and "Invalid value for '-o' / '--out'" in result.stderr


def netgen_main(*args, env=None):
    """The real entry point in its own process: what a user sees, traceback or not."""
    return subprocess.run([sys.executable, "-c", "from netgen.cli import main; main()", *args], capture_output=True,
                          text=True, env=env)


@pytest.mark.parametrize("args", [["graph", DOCKER0, "-f", "svg"], ["graph", DOCKER0, "-f", "mermaid"],
                                  ["graph", DOCKER0], ["export", DOCKER0]])
def test_a_file_in_a_missing_folder_is_named_with_what_to_do(args):
    if "svg" in args and not shutil.which("dot"):
        pytest.skip("Graphviz (dot) is not installed")
    result = netgen_main(*args, "-o", "/nonexistent/x.svg")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("netgen: cannot write /nonexistent/x.svg: the folder /nonexistent does not exist; "
                             "make it first, or choose another path\n")


def test_scripts_under_a_file_are_named_with_what_to_do(tmp_path):
    (tmp_path / "f").write_text("")
    result = netgen_main("compile", DOCKER0, "-o", str(tmp_path / "f" / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == (f"netgen: cannot write the scripts into the folder {tmp_path}/f/out: a part of "
                             f"{tmp_path}/f/out is a file, not a folder; choose another path\n")


def test_a_graphviz_failure_is_worded_by_netgen_and_leaves_no_file(tmp_path):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "dot").write_text("#!/bin/sh\necho 'Error: renderer for svg is unavailable' >&2\nexit 3\n")
    (fake / "dot").chmod(0o755)
    target = tmp_path / "d.svg"
    result = netgen_main("graph", DOCKER0, "-f", "svg", "-o", str(target),
                         env={**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == ("netgen: Graphviz's dot could not draw the graph as svg (exit 3: Error: renderer for svg "
                             "is unavailable); try another --format (svg, png, or dot to see the text it was given), "
                             f"or reinstall Graphviz (apt-get install --reinstall graphviz); {target} was not "
                             "written\n")
    assert os.listdir(tmp_path) == ["bin"]
