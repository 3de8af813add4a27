"""The README's and the manual's commands as a user runs them: the "Two commands" (the test command is what .ci/run
runs, and both work on a stock Debian 12 or 13, whose Python is externally managed), and every netgen example
README.md and docs/*.md show, run with its exit code and the lines they show compared; those that build labs as root
are tests/live/test_readme_live.py."""

import re
import shlex
import subprocess

import pytest
from helpers import REPO
from readme import (
    ALL,
    COMPILE_NODES,
    DEMO,
    ONE_LAB,
    PAGES,
    PLAYBOOK,
    README,
    SESSION,
    TESTS,
    TRY,
    TWO,
    UP_ON_HOSTS,
    after,
    blocks,
    commands,
    headings,
    netgen,
    section,
)


def test_two_commands_are_two_one_line_blocks():
    assert len(TWO) == 2
    assert "\n" not in DEMO and "\n" not in TESTS


def test_ci_runs_exactly_the_readme_test_command():
    lines = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-1] == TESTS
    assert not [line for line in lines[:-1] if re.search(r"(^|[\s/])(pip3?|pytest)(\s|$)|-m (pip|pytest)", line)]


def test_the_test_command_ends_with_one_pytest_run_of_the_venv_python():
    """A checker of fresh machines swaps the final `python -m pytest` for a collection: it must be the last
    command, with python (or python3) right before -m, and the only pytest run."""
    *install, last = commands(TESTS)
    assert re.fullmatch(r"(\S*/)?python3? -m pytest( -\S+)*", shlex.join(last)), last
    assert last[0] == ".venv/bin/python"
    assert not any("pytest" in word for command in install for word in command)


@pytest.mark.parametrize("line", [DEMO, TESTS], ids=["demo", "tests"])
def test_each_command_works_on_an_externally_managed_python(line):
    """apt-get gets what a stock Debian 12 lacks; netgen goes into .venv, never into the system's Python; then
    `netgen` is on PATH (and in sudo's), as the rest of the README uses it."""
    cmds = commands(line)
    assert cmds[0] == ["apt-get", "update"]
    assert cmds[1][:3] == ["apt-get", "install", "-y"] and {"iproute2", "python3-venv"} <= set(cmds[1][3:])
    venv = cmds.index(["python3", "-m", "venv", ".venv"])
    pips = [i for i, c in enumerate(cmds) if any("pip" in word for word in c)]
    assert pips and all(cmds[i][:2] == [".venv/bin/pip", "install"] and i > venv for i in pips)
    assert not any("--break-system-packages" in c or "--user" in c for c in cmds)
    link = cmds.index(["ln", "-sf", "$PWD/.venv/bin/netgen", "/usr/local/bin/netgen"])  # "$PWD": unsplit by shlex
    assert max(pips) < link < len(cmds) - 1
    # Debian has python3, not python; nor pip, pytest or netgen before they are installed
    assert {c[0] for c in cmds} <= {"apt-get", "python3", ".venv/bin/pip", "ln", "bash", ".venv/bin/python"}


def test_the_demo_installs_what_the_demo_uses():
    used = (REPO / "examples" / "demo.sh").read_text()
    assert re.search(r"\bping\b", used) and re.search(r"\bcurl\b", used)
    assert {"iputils-ping", "curl"} <= set(commands(DEMO)[1])
    assert commands(DEMO)[-1] == ["bash", "examples/demo.sh"]


def test_the_venv_is_ignored_by_git():
    assert {".venv", ".venv/", "/.venv", "/.venv/"} & set((REPO / ".gitignore").read_text().splitlines())


# --- the netgen examples, run as shown ---------------------------------------------------------------------------

COMPILE = "netgen compile examples/docker0.py > up.sh"
MERMAID = "netgen graph examples/docker0.py --format mermaid"
SVG = "netgen graph examples/docker0.py --format svg -o docker0.svg"
CHECK = next(b for b in blocks(ALL, "") if b.startswith("$ netgen check examples/docker_nat.py\n"))
EXPORT = [line.split("#")[0].strip() for line in blocks(section("Lab files as data (JSON)"))[0].splitlines()]
# ...and those that build a lab as root, which tests/live/test_readme_live.py runs
RUN_LIVE = {TRY, *(command for command, _ in SESSION)}
RUN_HERE = {COMPILE, MERMAID, SVG, CHECK.splitlines()[0].removeprefix("$ "), *EXPORT, COMPILE_NODES, UP_ON_HOSTS}


def shown(command: str) -> str:
    assert command in " ".join(ALL.split()), command  # the pages' prose wraps lines
    return command


def test_compile_prints_the_steps_the_readme_shows(checkout):
    command = shown(COMPILE)
    result = netgen(command, checkout)
    assert result.returncode == 0 and result.stderr == ""
    excerpt = blocks(after(f"`{command}` gives a script"), "bash")[0]
    assert excerpt in (checkout / "up.sh").read_text()
    assert (checkout / "up.sh").read_text() == (REPO / "out" / "docker0" / "up.sh").read_text()


def test_graph_prints_the_mermaid_the_readme_shows(checkout):
    result = netgen(shown(MERMAID), checkout)
    assert result.returncode == 0
    assert blocks(ALL, "mermaid") == [result.stdout]


def test_graph_draws_the_svg_the_readme_names(checkout):
    if subprocess.run(["bash", "-c", "command -v dot"], capture_output=True).returncode:
        pytest.skip("Graphviz (dot) is not installed (the README's test command installs it)")
    result = netgen(shown(SVG), checkout)
    assert result.returncode == 0 and result.stderr == "netgen: wrote docker0.svg\n"
    assert "<svg" in (checkout / "docker0.svg").read_text()


def test_check_prints_the_pools_and_table_the_readme_shows(checkout):
    command, _, *lines = CHECK.splitlines()  # the line after the command is "  ...": lines left out
    result = netgen(shown(command.removeprefix("$ ")), checkout)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("lab docker_nat (examples/docker_nat.py): ok\n")
    assert set(lines) <= set(result.stdout.splitlines())


def test_export_then_compile_the_json_gives_the_same_scripts_byte_for_byte(checkout):
    for line in EXPORT:
        result = netgen(line, checkout)
        assert result.returncode == 0, result.stderr
    for script in ("up.sh", "down.sh", "verify.sh", "SHA256SUMS"):
        assert (checkout / "out" / "docker0" / script).read_bytes() == (REPO / "out" / "docker0" / script).read_bytes()


def test_compile_of_a_lab_with_nodes_writes_what_out_holds_and_the_playbook_command_names_it(checkout):
    assert (COMPILE_NODES, PLAYBOOK, UP_ON_HOSTS) == (
        "netgen compile examples/flannel_vxlan.py -o out/flannel_vxlan",
        "ansible-playbook -i out/flannel_vxlan/inventory.yml out/flannel_vxlan/site.yml --tags up",
        "netgen up examples/flannel_vxlan.py --inventory out/flannel_vxlan/inventory.yml")
    result = netgen(COMPILE_NODES, checkout)
    assert result.returncode == 0, result.stderr
    written, committed = ({str(p.relative_to(top)): p.read_bytes() for p in (top / "flannel_vxlan").rglob("*")
                           if p.is_file()} for top in (checkout / "out", REPO / "out"))
    assert written == committed and "flannel_vxlan/site.yml" in written


def test_the_node_step_the_readme_shows_is_in_node1s_up_sh():
    excerpt = blocks(after("On node1, what flannel's daemon would write for node2"), "bash")[0]
    assert excerpt in (REPO / "out" / "flannel_vxlan" / "node1" / "up.sh").read_text()


def test_the_service_step_the_readme_shows_is_in_up_sh():
    excerpt = blocks(after("Each container's web server"), "bash")[0]
    assert excerpt in (REPO / "out" / "docker0" / "up.sh").read_text()


def test_every_netgen_command_in_the_readme_code_is_run_by_a_test():
    """A netgen line added to a code block of README.md or docs/*.md needs a test above (or in
    tests/live/test_readme_live.py, for one that builds a lab as root)."""
    found = set()
    for block in (block for page in PAGES.values() for block in blocks(page, ".*")):
        for line in block.splitlines():
            line = line.split("  #")[0].strip().removeprefix("$ ")
            if re.match(r"(sudo )?netgen ", line):
                found.add(line)
    assert found and found <= RUN_HERE | RUN_LIVE, found - RUN_HERE - RUN_LIVE


# --- the front page, and the links between the pages ----------------------------------------------------------


def test_the_front_page_reads_in_five_minutes():
    """Issue 24: README.md is the front page (what netgen is, the two commands, one lab, where to read on); the
    manual is docs/."""
    assert len(README.encode()) <= 8192, "README.md is the front page: move the detail to a page of docs/"


def test_the_front_pages_lab_is_the_example_it_names():
    (lab,) = blocks(ONE_LAB, "python")
    assert "`examples/veth_pair.py`" in ONE_LAB
    assert (REPO / "examples" / "veth_pair.py").read_text().endswith(lab)


def test_compile_prints_the_steps_the_front_page_shows(checkout):
    command = "netgen compile examples/veth_pair.py"
    assert f"`{command}` prints its up.sh" in ONE_LAB
    result = netgen(command, checkout)
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout == (REPO / "out" / "veth_pair" / "up.sh").read_text()
    (excerpt,) = blocks(ONE_LAB, "bash")
    assert excerpt in result.stdout


def test_the_front_page_links_every_page_of_the_manual():
    manual = {name for name in PAGES if name.startswith("docs/")}
    assert manual and manual <= set(re.findall(r"\]\((docs/[^)#]+\.md)\)", section("Where to read on")))


def slug(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_link_of_a_page_leads_somewhere(page):
    """Links between the pages (and to the repository's files) name a file that exists, and a heading there."""
    text = "".join(part for i, part in enumerate(re.split(r"(?m)^```.*\n", PAGES[page])) if i % 2 == 0)
    for link in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", link):
            continue
        path, _, anchor = link.partition("#")
        target = ((REPO / page).parent / path).resolve() if path else REPO / page
        assert target.exists(), (page, link)
        if anchor:
            titles = [title for _, _, title in headings(target.read_text())]
            assert anchor in map(slug, titles), (page, link, titles)


def test_the_reviewers_page_counts_the_lines_up_to_the_engine():
    lines = (REPO / "out" / "veth_pair" / "up.sh").read_text().splitlines()
    before = lines.index(next(line for line in lines if line.startswith("# ===== netgen engine")))
    said = " ".join(section("The lab's part, then the engine").split())
    assert f"`out/veth_pair/up.sh` is {before} lines up to the engine" in said


# --- docs/reviewing.md's path through the engine: its sections and their functions, as the engine has them today ---


def engine_sections() -> list[tuple[str, list[str]]]:
    """(title, functions defined under it) for each `# --- TITLE ---` section of the engine, in order."""
    from netgen.render import engine

    found = []
    for line in engine().splitlines():
        if match := re.fullmatch(r"# --- (.+?) -+", line):
            found.append((match.group(1), []))
        elif (match := re.match(r"([a-z_][a-z0-9_]*)\(\) \{", line)) and found:
            found[-1][1].append(match.group(1))
    return found


def reviewed_sections() -> list[tuple[str, list[str]]]:
    """(title, the functions its "Functions:" line names) for each entry of "The engine, section by section"."""
    text = section("The engine, section by section")
    entries = re.split(r"(?m)^### ", text)[1:]
    found = []
    for entry in entries:
        title, _, body = entry.partition("\n")
        listed = next((p for p in body.split("\n\n") if p.strip().startswith("Functions: ")), "").split(" Program")[0]
        found.append((title, re.findall(r"`([a-z_][a-z0-9_]*)`", listed)))
    return found


def test_the_reviewers_path_has_the_engines_sections_in_order():
    assert [title for title, _ in reviewed_sections()] == [title for title, _ in engine_sections()], \
        "docs/reviewing.md has an entry (### TITLE) per section of the engine (# --- TITLE ---), in its order"


def test_the_reviewers_path_names_each_sections_functions():
    engine = dict(engine_sections())
    for title, functions in reviewed_sections():
        assert functions == engine[title], (title, "docs/reviewing.md's Functions: line, as the engine defines them")


def test_the_reviewers_table_of_calls_names_where_each_is():
    """The lab's part's calls, and the section that defines each; and no call of a lab part is left out."""
    from netgen.labpart import FUNCTIONS

    engine = dict(engine_sections())
    path = section("The engine, section by section")
    table = re.search(r"\| call \| section \|\n\|---\|---\|\n((?:\|.+\|\n)+)", path)
    listed = set()
    for row in table.group(1).splitlines():
        calls, where = (cell.strip() for cell in row.strip("|").split("|"))
        for call in re.findall(r"`([a-z_]+)`", calls):
            assert call in engine[where], (call, where)
            listed.add(call)
    calls = {call for _, made in FUNCTIONS.values() for call in made} - set(FUNCTIONS) - {"return"}
    assert listed == calls
