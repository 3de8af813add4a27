"""Issue 23: `netgen audit DIR`, without --lab too, proves each script's lab part is data (compiler/labpart.py): only
the fixed assignments and the lab's calls with quoted words. A lab part that defines a function (`flock() { :; }`
made the lab's lock a no-op), runs a command, expands or redirects fails the audit with file and line, even when
SHA256SUMS was made to match it."""

import hashlib
import shutil

import pytest
from helpers import EXAMPLES, NODE_EXAMPLES, REPO
from typer.testing import CliRunner

from netgen import audit, labpart
from netgen.cli import app
from netgen.pipeline import compile_lab, write_scripts

runner = CliRunner()
SCRIPTS = ("up.sh", "down.sh", "verify.sh")


def _folders(example):
    top = REPO / "out" / example
    return [top] if (top / "up.sh").exists() else sorted(p for p in top.iterdir() if p.is_dir())


def _lab_part(path) -> str:
    return audit.split(path.read_text())[0]


# --- what netgen compiles is data --------------------------------------------------------------------------------

@pytest.mark.parametrize("example", EXAMPLES + NODE_EXAMPLES)
def test_every_committed_script_is_data(example):
    for folder in _folders(example):
        for name in SCRIPTS:
            assert labpart.check(_lab_part(folder / name), name) == [], f"{folder}/{name}"


# What out/ has none of: adopt=True (ADOPT_* with entries), external namespaces, a service whose command holds
# quotes ('\'' in its words), IPv6, sysctls in a namespace, an isolation expectation.
MORE = """\
from netgen import Lab

lab = Lab("more")
br = lab.host.bridge("br9", "10.9.0.1/24", "fd09::1/64", adopt=True)
a1 = lab.netns("a1", adopt=True)
lab.netns("ext1", external=True)
a2 = lab.netns("a2")
lab.veth(a1.port("eth0", "10.9.0.2/24", "fd09::2/64"), br.port("v-a1"))
lab.veth(a2.port("eth0", "10.9.0.3/24"), br.port("v-a2", hairpin=True))
a1.route("default", via="10.9.0.1")
a2.sysctl("net.ipv4.ip_forward", 1)
a1.service("web", "sh -c 'echo \\"it'\\\\''s\\" $HOME; exec sleep 100'")
lab.expect("a1").reaches("10.9.0.3")
lab.expect("a2").cannot_reach("10.9.0.99")
"""


@pytest.mark.parametrize("lab", ["more", "features", "external"])
def test_what_other_labs_compile_to_is_data(tmp_path, lab):
    if lab == "more":
        (tmp_path / "more.py").write_text(MORE)
        source = tmp_path / "more.py"
    else:
        source = REPO / "tests" / "labs" / f"{lab}.py"
    compiled = compile_lab(str(source))
    write_scripts(compiled, str(tmp_path / "out"))
    for name in SCRIPTS:
        part = _lab_part(tmp_path / "out" / name)
        assert labpart.check(part, name) == [], name
    if lab == "more":
        up = _lab_part(tmp_path / "out" / "up.sh")
        assert "declare -A ADOPT_LINKS=(['netns/a1/']=" in up and "EXTERNAL_NS=('ext1')" in up
        assert "'\\''" in up  # the service's quotes, as netgen quotes them
    result = runner.invoke(app, ["audit", str(tmp_path / "out")])
    assert result.exit_code == 0, result.stderr
    assert "each lab part data" in result.stderr


# --- anything else fails the audit, naming file and line -----------------------------------------------------------

def tampered(tmp_path, example, script, anchor, how, text):
    """A copy of out/EXAMPLE with the line `anchor` of SCRIPT replaced by `text` (how="replace"), or `text` put
    before or after it, and SHA256SUMS made to match, so that only the lab part's grammar can tell; (path, the
    number of the first line of `text`)."""
    folder = tmp_path / example
    shutil.copytree(REPO / "out" / example, folder)
    path = folder / script
    lines = path.read_text().split("\n")
    at = lines.index(anchor)
    new = text.split("\n")
    if how == "replace":
        lines[at:at + 1] = new
    elif how == "before":
        lines[at:at] = new
    else:
        lines[at + 1:at + 1] = new
        at += 1
    old = hashlib.sha256((REPO / "out" / example / script).read_bytes()).hexdigest()
    path.write_text("\n".join(lines))
    sums = folder / "SHA256SUMS"
    sums.write_text(sums.read_text().replace(old, hashlib.sha256(path.read_bytes()).hexdigest()))
    return path, at + 1


NAT = "docker_nat"  # arrays over lines (NFT_*), a sysctl, services, a firewall call, heredocs
CASES = {
    # a function definition: of another name, in another form, inside the lab's own, of the lab's in another script
    "function": ("up.sh", "lab_steps() {", "before", "flock() { :; }",
                 "defines a function flock, which the lab's part of up.sh does not have (its functions: lab_steps, "
                 "lab_services): flock() { :; }"),
    "function keyword": ("up.sh", "lab_steps() {", "before", "function flock { :; }", "defines a function flock"),
    "function inside": ("up.sh", "lab_steps() {", "after", "  flock() { :; }", "defines a function inside lab_steps"),
    "function of another script": ("down.sh", "lab_teardown() {", "before", "lab_steps() {\n  return 0\n}",
                                   "defines a function lab_steps, which the lab's part of down.sh does not have"),
    "function again": ("up.sh", "lab_steps() {", "before", "lab_services() {\n  return 0\n}",
                       "defines lab_services again"),
    "function one line": ("verify.sh", "lab_absent_checks() {", "replace", "lab_absent_checks() { judge <<'CHECKS'",
                          "defines lab_absent_checks otherwise than as `lab_absent_checks() {` alone on its line"),
    # any other command: at the top, in a function, a call the function does not make, a quoted name
    "command at the top": ("up.sh", "set -euo pipefail", "after", "rm -rf /tmp/x", "a command: the top level"),
    "command in a function": ("up.sh", "lab_steps() {", "after", "  flock -u 9",
                              "`flock` is not one of the calls lab_steps makes (section, step, expect, firewall)"),
    "a call of another function": ("up.sh", "lab_steps() {", "after", "  doom 'nginx-1' 'netns del nginx-1'",
                                   "`doom` is not one of the calls lab_steps makes"),
    "quoted name": ("down.sh", "lab_teardown() {", "after", "  'flock' -u 9",
                    "not one of the calls lab_teardown makes"),
    "prefix assignment": ("up.sh", "lab_steps() {", "after", "  PATH=/tmp section 'host'",
                          "an assignment or an '=' outside single quotes"),
    "after an assignment": ("up.sh", "LAB='docker_nat'", "replace", "LAB='docker_nat' id",
                            "not an assignment of the lab's part"),
    "variable of another name": ("up.sh", "LAB='docker_nat'", "after", "PATH=/tmp",
                                 "assigns PATH, which the lab's part of up.sh does not have"),
    "variable of another script": ("down.sh", "FDB_NS=()", "after", "declare -A ADOPT_LINKS=()",
                                   "assigns ADOPT_LINKS, which the lab's part of down.sh does not have"),
    "array without declare": ("up.sh", "declare -A ADOPT_LINKS=() ADOPT_ADDRS=() ADOPT_ROUTES=() # nothing with "
                              "adopt=True", "replace", "ADOPT_LINKS=([$(id)]=1)",
                              "assigns ADOPT_LINKS otherwise than as declare -A NAME=([KEY]=WORD ...)"),
    "variable again": ("up.sh", "LAB='docker_nat'", "after", "LAB='other'", "assigns LAB again (first on line 32)"),
    # each kind of expansion, in a call, an assignment, an array's element, an associative key, a heredoc
    "$NAME": ("up.sh", "  section 'host'", "replace", "  section $HOME", "an expansion $H"),
    "${..}": ("up.sh", "  section 'host'", "replace", "  section ${HOME}", "an expansion ${...}"),
    "$(..)": ("up.sh", "LAB='docker_nat'", "replace", "LAB=$(id)", "a command substitution $(...)"),
    "`..`": ("down.sh", "  return 0", "replace", "  return `id`", "a command substitution `...`"),
    "double quotes": ("verify.sh", "  lab_services", "before", '  probe "$HOME"',
                      "a double-quoted string (bash expands $ and ` in it)"),
    "in an array": ("up.sh", "  'nginx-1'", "replace", "  $(id)", "a command substitution $(...)"),
    "in a key": ("up.sh", "declare -A SYSCTL_KEYS=(['host']='net.ipv4.ip_forward net.ipv6.conf.all.forwarding')",
                 "replace", "declare -A SYSCTL_KEYS=([$(id)]='x')", "a command substitution $(...)"),
    "quoted in a key": ("up.sh", "declare -A SYSCTL_KEYS=(['host']='net.ipv4.ip_forward net.ipv6.conf.all.forwarding')",
                        "replace", "declare -A SYSCTL_KEYS=(['$(id)']='x')",  # as unset "SYSCTL_KEYS[$key]" would run
                        "a key of an associative array holds only letters, digits and _.:/@%+,-, quoted or not"),
    "in a heredoc": ("verify.sh", "  netns 'nginx-1' '' present", "replace", "  netns $(id) '' present",
                     "a command substitution $(...)"),
    # a redirection outside the heredoc, and a heredoc that expands
    "redirection out": ("up.sh", "  section 'host'", "replace", "  section 'host' >/tmp/x", "a redirection"),
    "redirection in": ("down.sh", "  return 0", "replace", "  return 0 </etc/shadow", "a redirection"),
    "heredoc unquoted": ("verify.sh", "lab_absent_checks() {", "after", "  judge <<CHECKS",
                         "judge takes its lines from a heredoc only, as `judge <<'CHECKS'`"),
    "heredoc elsewhere": ("up.sh", "lab_steps() {", "after", "  section <<'CHECKS'", "a redirection"),
    # an unquoted word bash would change or end a command at
    "glob": ("up.sh", "  section 'host'", "replace", "  section /etc/*", "a glob (*)"),
    "glob ?": ("up.sh", "  section 'host'", "replace", "  section ho?t", "a glob (?)"),
    "glob []": ("up.sh", "  section 'host'", "replace", "  section [h]ost", "a glob ([ ])"),
    "tilde": ("up.sh", "  section 'host'", "replace", "  section ~root", "a tilde expansion (~)"),
    "braces": ("up.sh", "  section 'host'", "replace", "  section {a,b}", "braces { }"),
    "list": ("up.sh", "  section 'host'", "replace", "  section 'host'; flock -u 9", "a list of commands (;)"),
    "and": ("up.sh", "  section 'host'", "replace", "  section 'host' && id", "a list of commands or a background"),
    "pipe": ("up.sh", "  section 'host'", "replace", "  section 'host' | id", "a pipe or a list of commands (|)"),
    "subshell": ("up.sh", "  section 'host'", "replace", "  section (id)", "a subshell or other syntax ( )"),
    "backslash": ("up.sh", "  section 'host'", "replace", "  section \\$HOME", "a backslash outside single quotes"),
    "unclosed quote": ("up.sh", "  section 'host'", "replace", "  section 'host", "an unclosed single quote"),
    "not printable": ("up.sh", "  section 'host'", "replace", "  section 'host'\r", "a character that is not "
                                                                                     "printable"),
    # line continuations: only ` \` at the end of a call's line, followed by its words
    "continued into a command": ("up.sh", "    'link del dev veth-nginx-1'", "replace", "    'link del dev veth-nginx-1' \\\n"  # noqa: E501
                                 "}", "not the words of the call the line before goes on with"),
    "continued wrongly": ("up.sh", "  section 'host'", "replace", "  section 'host'\\", "a backslash outside"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_lab_part_that_is_not_data_fails_audit_naming_file_and_line(tmp_path, case):
    script, anchor, how, text, said = CASES[case]
    path, line = tampered(tmp_path, NAT, script, anchor, how, text)
    if case == "continued into a command":
        line += 1  # the line that goes on is fine; the one after it is not
    if case == "function again":  # the lab's own, below the one put before lab_steps, is the second
        line = path.read_text().split("\n").index("lab_services() {", line) + 1
    result = runner.invoke(app, ["audit", str(path.parent)])
    assert result.exit_code == 1, result.stderr
    assert f"netgen audit: {path}:{line}: not data: {said}" in result.stderr, result.stderr
    assert "SHA256SUMS" not in result.stderr  # it was made to match: only the grammar tells


def test_an_unclosed_function_array_or_heredoc_is_not_data(tmp_path):
    path, line = tampered(tmp_path, NAT, "down.sh", "  return 0", "after", "  doom 'x' 'y' \\")
    found = labpart.check(_lab_part(path), "down.sh")
    assert found[0] == (line + 1, "not the words of the call the line before goes on with (braces { })")
    for text, cut, said in (("lab_teardown() {", "}", "the function lab_teardown opened on line"),
                            ("NAMESPACES=(", ")", "the array opened on line"),
                            ("  judge <<'CHECKS'", "CHECKS", "the heredoc opened on line")):
        script = "verify.sh" if "judge" in text else "down.sh"
        part = _lab_part(REPO / "out" / NAT / script)
        lines = part.split("\n")
        start = lines.index(text)
        end = lines.index(cut, start)
        del lines[end]
        found = labpart.check("\n".join(lines[:end + 1]) + "\n", script)
        assert found and found[-1][1].startswith(f"{said} {start + 1} is not closed"), found


def test_many_lines_that_are_not_data_are_named_up_to_a_count(tmp_path):
    bad = "\n".join(f"  flock {i}" for i in range(30))
    path, line = tampered(tmp_path, NAT, "up.sh", "lab_steps() {", "after", bad)
    result = runner.invoke(app, ["audit", str(path.parent)])
    assert result.exit_code == 1
    assert result.stderr.count("not data:") == audit.NOT_DATA_SHOWN
    assert f"{path}:{line + audit.NOT_DATA_SHOWN - 1}: not data" in result.stderr
    assert f"{path}: and {30 - audit.NOT_DATA_SHOWN} more lines of its lab's part that are not data" in result.stderr


def test_adding_a_function_or_variable_to_the_lab_part_is_one_entry_in_a_table(monkeypatch):
    """The engine's owner adds a function to down.sh (as lab_services was), or a data array: one line of labpart's
    tables each."""
    part = _lab_part(REPO / "out" / NAT / "down.sh")
    more = part + "SERVICE_PORTS=('80' '443')\n\nlab_probes() {\n  service 'nginx-1' 'web' sleep 1\n  return 0\n}\n"
    assert [(n - part.count("\n"), why.split(",")[0]) for n, why in labpart.check(more, "down.sh")] == [
        (1, "assigns SERVICE_PORTS"), (3, "defines a function lab_probes"),
        (4, "`service` is not one of the calls lab_probes makes (none)"),
        (5, "`return` is not one of the calls lab_probes makes (none)")]
    monkeypatch.setitem(labpart.VARIABLES, "SERVICE_PORTS", (labpart.ARRAY, labpart.ALL))
    monkeypatch.setitem(labpart.FUNCTIONS, "lab_probes", ((labpart.DOWN,), ("service", "return")))
    assert labpart.check(more, "down.sh") == []
