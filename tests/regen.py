"""Regenerate out/<example>/{up,down,verify}.sh from examples/*.py: `.venv/bin/python tests/regen.py` from the repo root.

An example with nodes gets a folder per node, out/<example>/<node>/{up,down,verify}.sh. The golden test compares
out/ with a fresh compile; after a change to netgen, run this and review the diff.
"""

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def examples() -> list[str]:
    """Example names, each compiled from the path `examples/NAME.py` as a user in the repo root would name it."""
    return sorted(p.stem for p in (REPO / "examples").glob("*.py"))


def main() -> None:
    from netgen.pipeline import compile_lab, write_scripts

    os.chdir(REPO)
    for name in examples():
        for path in write_scripts(compile_lab(f"examples/{name}.py"), f"out/{name}"):  # out/NAME/NODE with nodes
            print(path)


if __name__ == "__main__":
    sys.exit(main())
