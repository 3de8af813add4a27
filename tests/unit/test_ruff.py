"""ruff, with the rules pyproject.toml selects (pycodestyle, pyflakes, import order and the banned imports: no test
imports another), finds nothing in the code, the tests, the benchmark or the tools."""

import subprocess
import sys

from helpers import REPO

FOLDERS = ["compiler", "tests", "bench", "tools"]


def test_ruff_finds_nothing():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise",
                             *FOLDERS], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
