"""Regenerate out/<example>/{up,down,verify}.sh from examples/*.py: `.venv/bin/python tools/regen.py` from the repo
root.

An example with nodes gets a folder per node, out/<example>/<node>/{up,down,verify}.sh. The golden test compares
out/ with a fresh compile; after a change to netgen, run this and review the diff. It also puts the engine's sha256
where the manual lists it, after "The engine of this version" (docs/reviewing.md; a test checks that it is the
current one).
"""

import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def examples() -> list[str]:
    """Example names, each compiled from the path `examples/NAME.py` as a user in the repo root would name it."""
    return sorted(p.stem for p in (REPO / "examples").glob("*.py"))


def pages() -> list[Path]:
    """The front page and the manual's pages (tests/readme.py reads the same)."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def engine_hash() -> None:
    """The code block after "The engine of this version" (on whichever page) gets the current engine's sha256."""
    from netgen.render import engine_sha256

    for page in pages():
        text = page.read_text()
        new = re.sub(r"(The engine of this version[^\n]*\n\n```\n)[0-9a-f]{64}\n", rf"\g<1>{engine_sha256()}\n", text)
        if new != text:
            page.write_text(new)
            print(page.relative_to(REPO))


def main() -> None:
    from netgen.pipeline import compile_lab, write_scripts

    os.chdir(REPO)
    for name in examples():
        for path in write_scripts(compile_lab(f"examples/{name}.py"), f"out/{name}"):  # out/NAME/NODE with nodes
            print(path)
    engine_hash()


if __name__ == "__main__":
    sys.exit(main())
