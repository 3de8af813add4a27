"""The README and the manual as the tests read them: README.md (the front page) and docs/*.md (the manual), their
sections, their code blocks, the commands of an `a && b` line, and the lines that tests in more than one file run
(tests/golden/test_readme.py checks each against what netgen prints). A module of its own beside helpers.py, so that
a page whose sections moved fails the tests that read it, not every test.

A section is found by its title in whichever page holds it, whatever its level (`# The CLI`, `## Running on real
hosts`), so that text can move between pages without a test changing."""

import re
import shlex
import subprocess

from helpers import REPO

# Every page, by its path in the repository: the front page first, then the manual's pages in name order.
PAGES = {str(path.relative_to(REPO)): path.read_text()
         for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}
README = PAGES["README.md"]
# All of them, for what may be on any page (a command shown, the engine's hash, the versions of the hosts tried)
ALL = "\n".join(PAGES.values())

def headings(page: str) -> list[tuple[int, int, str]]:
    """(offset, level, title) of each heading of a page, outside its code blocks."""
    found, fenced, offset = [], False, 0
    for line in page.splitlines(keepends=True):
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (match := re.match(r"(#{1,6}) (.+)$", line)):
            found.append((offset, len(match.group(1)), match.group(2).strip()))
        offset += len(line)
    return found


def doc(name: str) -> str:
    """The text of a page: "README.md", or a page of the manual by its name ("cli" for docs/cli.md)."""
    return PAGES[name if name == "README.md" else f"docs/{name}.md"]


def page_of(text: str) -> str:
    """The page that holds `text` (exactly one must)."""
    found = [name for name, page in PAGES.items() if text in page]
    assert len(found) == 1, (text, found)
    return found[0]


def section(title: str) -> str:
    """The section titled `title` (on whichever page), up to the next heading of its level or above."""
    found = []
    for page in PAGES.values():
        marks = headings(page)
        for i, (start, level, name) in enumerate(marks):
            if name == title:
                end = next((offset for offset, deeper, _ in marks[i + 1:] if deeper <= level), len(page))
                found.append(page[start:end])
    assert len(found) == 1, f"{len(found)} sections titled {title!r} in README.md and docs/"
    return found[0]


def after(phrase: str) -> str:
    """The page that holds `phrase`, from it to its end (for the code block that follows a sentence)."""
    page = PAGES[page_of(phrase)]
    return page[page.index(phrase):]


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
# The front page's lab, start to end: `$ COMMAND` lines, each followed by lines of what it prints ("  ...": some
# left out). tests/live/test_readme_live.py runs them in a sandbox.
ONE_LAB = section("One lab, from file to down")
SESSION = [(command.removeprefix("$ "), printed.strip("\n").splitlines()) for command, printed in
           re.findall(r"^(\$ [^\n]+)\n((?:(?!\$ )[^\n]*\n)*)", blocks(ONE_LAB, "")[0], re.M)]
