"""What netgen and its scripts say reads right: a count agrees with its noun ("1 change", "2 changes"), and an
empty list is said in words ("no bridges"), not with a "-"."""

import re

import pytest
from helpers import EXAMPLES, ONES, REPO
from typer.testing import CliRunner

from netgen.cli import app


@pytest.fixture
def ones(tmp_path):
    lab = tmp_path / "ones.py"
    lab.write_text(ONES)
    return lab


def test_check_and_headers_say_empty_lists_in_words(ones, tmp_path):
    check = CliRunner().invoke(app, ["check", str(ones)])
    assert check.exit_code == 0, check.stderr
    assert check.stdout.splitlines()[1:] == ["  1 namespace: a", "  1 bridge: host/br0", "  no veth pairs",
                                             "  no addresses, no routes, no expectations"]
    compiled = CliRunner().invoke(app, ["compile", str(ones), "-o", str(tmp_path / "out")])
    assert compiled.exit_code == 0, compiled.stderr
    for script in ("up.sh", "down.sh", "verify.sh"):
        assert "#   no veth pairs\n#   no addresses, no routes, no expectations\n" in \
            (tmp_path / "out" / script).read_text()


@pytest.mark.parametrize("example", EXAMPLES)
def test_no_header_line_stands_a_dash_for_an_empty_list(example):
    header = (REPO / "out" / example / "up.sh").read_text().split("\n#\n")[1]
    assert not re.search(r": -$", header, re.M), header


# A line the scripts print (say, die, echo, printf, or a message kept for later) in which an expanded number is
# followed by a plural written in the template: "$n changes" reads "1 changes" when n is 1.
MESSAGE = re.compile(r"^\s*(?:.*\b(?:say|die \d|echo|printf)\b|LEFT\+=)")
NOUNS = ("changes|links|namespaces|checks|rules|objects|veths|sysctls|conflicts|errors|addresses|routes|steps|"
         "bridges|ports|processes|jobs|lines|batches|seconds")
COUNT_THEN_PLURAL = re.compile(rf"\$(?:\{{#?\w+(?:\[@\])?\}}|\(\([^)]*\)\)|[A-Za-z_]\w*) (?:host )?(?:{NOUNS})\b")


@pytest.mark.parametrize("example", EXAMPLES)
def test_no_script_line_puts_a_count_before_a_written_plural(example):
    for script in ("up.sh", "down.sh", "verify.sh"):
        text = (REPO / "out" / example / script).read_text()
        bad = [line for line in text.splitlines() if MESSAGE.match(line) and COUNT_THEN_PLURAL.search(line)]
        assert bad == [], f"{script}: {bad}"


def test_plain_verify_says_one_check(tmp_path):
    """The plain style's verify has its own last line."""
    lab = tmp_path / "lab.py"
    lab.write_text('from netgen import Lab\nlab = Lab("x")\nlab.netns("a")\n')
    script = CliRunner().invoke(app, ["compile", str(lab), "--style", "plain", "--variant", "verify"]).stdout
    assert 'CHECKS=checks\nif ((PASSED == 1)); then CHECKS=check; fi\n' in script
    assert not [line for line in script.splitlines() if line.startswith("echo") and COUNT_THEN_PLURAL.search(line)]
