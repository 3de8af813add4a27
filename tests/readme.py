"""The README as the tests read it: its sections, its code blocks, the commands of an `a && b` line, and the lines
that tests in more than one file run (tests/golden/test_readme.py checks each against what netgen prints). A module
of its own beside helpers.py, so that a README whose sections moved fails the tests that read it, not every test."""

import re
import shlex
import subprocess

from helpers import REPO

README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end >= 0 else len(README)]


def blocks(text: str, langs: str = "sh|bash|shell") -> list[str]:
    """The code blocks of `text` fenced as one of `langs` ('' for a fence without a language)."""
    found, lang, lines = [], None, []
    for line in text.splitlines(keepends=True):
        if lang is None and line.startswith("```"):
            lang, lines = line[3:].strip(), []
        elif lang is not None and line.rstrip() == "```":
            if re.fullmatch(langs, lang):
                found.append("".join(lines))
            lang = None
        elif lang is not None:
            lines.append(line)
    return found


TWO = blocks(section("Two commands"))
DEMO, TESTS = (b.strip() for b in TWO)


def commands(line: str) -> list[list[str]]:
    """The words of each command of an `a && b && c` line."""
    return [shlex.split(part) for part in line.split(" && ")]


def netgen(command: str, cwd) -> subprocess.CompletedProcess:
    """A README line run by bash in `cwd`, whose examples/ is the repository's (paths as the README writes them)."""
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=120)


TRY = blocks(section("The CLI"))[0].strip()
# "Running on real hosts": compile, then ansible-playbook; or netgen up --inventory (test_ansible.py runs them live)
(COMPILE_NODES, PLAYBOOK), (UP_ON_HOSTS,) = (b.strip().splitlines() for b in blocks(section("Running on real hosts")))
