"""The benchmark runs end to end at a tiny size, so it cannot rot (its timings are not asserted)."""

import subprocess
import sys

import pytest
from helpers import REPO

pytestmark = pytest.mark.live


def test_benchmark_runs_both_labs_with_every_tool_and_writes_its_table(sandbox, tmp_path):
    sandbox.close()  # only for the fixture's root check: the benchmark makes its own sandboxes
    table = tmp_path / "results.md"
    result = subprocess.run([sys.executable, str(REPO / "bench" / "run.py"), "--sizes", "3", "--reps", "1",
                             "--no-big", "--settle", "0", "--out", str(table)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    text = table.read_text()
    for shape in ("star", "chain"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {shape} | 3 |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(c.endswith(" s") for c in cells[3:9]), row  # netgen and plain up/verify/down all measured


def test_the_node_benchmark_runs_a_small_mesh_and_puts_its_section_after_the_tables(sandbox, tmp_path):
    sandbox.close()  # only for the fixture's root check: the benchmark simulates its own nodes
    results = tmp_path / "results.md"
    results.write_text("# results\n\n| star table |\n")
    for _ in range(2):  # run twice: the section is replaced, not appended again
        result = subprocess.run([sys.executable, str(REPO / "bench" / "nodes.py"), "--small", "--reps", "1",
                                 "--out", str(results)], capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
    text = results.read_text()
    assert text.startswith("# results\n\n| star table |\n\n## Across nodes\n")
    assert text.count("## Across nodes") == 1
    row = next(line for line in text.splitlines() if line.startswith("| 3 nodes x 2 pods"))
    assert all(c.strip().endswith(" s") for c in row.strip("|").split("|")[1:]), row
    for point in ("| 2 x 2 |", "| 3 x 2 |", "| 2 x 4 |"):
        assert point in text
