"""The benchmark runs end to end at a tiny size, so it cannot rot (its timings are not asserted)."""

import subprocess
import sys

import pytest
from conftest import REPO

pytestmark = pytest.mark.live


def test_benchmark_runs_both_labs_with_every_tool_and_writes_its_table(sandbox, tmp_path):
    sandbox.close()  # only for the fixture's root check: the benchmark makes its own sandboxes
    table = tmp_path / "results.md"
    result = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--sizes", "3", "--reps", "1",
                             "--no-big", "--out", str(table)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    text = table.read_text()
    for shape in ("star", "chain"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {shape} | 3 |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(c.endswith(" s") for c in cells[3:9]), row  # netgen and plain up/verify/down all measured
