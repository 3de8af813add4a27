"""The lab's part of a compiled script is data: a strict recogniser of its grammar, line by line.

A compiled script is its lab's part followed by the engine (`audit.split`). The engine is one text, reviewed once;
the lab's part differs per lab, and bash runs it first. So that reviewing the engine once is enough, the lab's part
must hold nothing that runs: no function the engine would call instead of a command (`flock() { :; }` would turn
the lab's lock into a no-op), no command of its own, no expansion, no redirection. What it may hold, and nothing
else:

- blank lines, comments, and `set -euo pipefail`;
- the assignments of VARIABLES, each in its form (NAME=WORD, NAME=(WORD ...), declare -A NAME=([KEY]=WORD ...)),
  several on one line, an array over several lines, where a KEY holds BARE characters only, quoted or not;
- the functions of FUNCTIONS, each `NAME() {` alone on its line and closed by `}` alone on its line, whose body
  holds only the calls listed for it, each a bare name with WORD arguments, continued over lines with ` \\`;
  a call of HEREDOCS takes its lines, WORDs too, from a heredoc with a quoted delimiter (`judge <<'CHECKS'`);

where a WORD is single-quoted strings (`'...'`, netgen's quoting of every user value, `\\'` for a quote inside),
and bare characters from BARE, joined. Each table below is the one place that lists what the lab's part may hold:
a new variable or function of the lab's part is one line in it.
"""

from __future__ import annotations

import re

UP, DOWN, VERIFY = "up.sh", "down.sh", "verify.sh"
ALL = (UP, DOWN, VERIFY)

SCALAR, ARRAY, ASSOC = "NAME=WORD", "NAME=(WORD ...)", "declare -A NAME=([KEY]=WORD ...)"

# The variables a lab's part assigns: name -> (its form, the scripts that assign it).
VARIABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "LAB": (SCALAR, ALL),
    "SCRIPT": (SCALAR, ALL),
    "NAMESPACES": (ARRAY, ALL),
    "EXTERNAL_NS": (ARRAY, ALL),
    "SYSCTL_KEYS": (ASSOC, ALL),
    "FDB_NS": (ARRAY, ALL),
    "NFT_TABLE": (SCALAR, ALL),
    "NFT_CHAINS": (ARRAY, ALL),
    "NFT_RULES": (ARRAY, ALL),
    "ADOPT_LINKS": (ASSOC, (UP,)),
    "ADOPT_ADDRS": (ASSOC, (UP,)),
    "ADOPT_ROUTES": (ASSOC, (UP,)),
    "SERVICES": (ARRAY, (UP,)),  # NS NAME PROGRAM LOC PORTS: what each service needs and answers on
}

# The functions a lab's part defines: name -> (the scripts that define it, the calls its body may make: the engine's
# functions, the lab's own, and `return`).
FUNCTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "lab_steps": ((UP,), ("section", "step", "expect", "firewall")),
    "lab_services": ((UP, DOWN, VERIFY), ("service", "return")),
    "lab_teardown": ((DOWN,), ("doom", "remove", "goes_with", "return")),
    "lab_checks": ((VERIFY,), ("judge", "firewall_checks", "lab_services", "probe")),
    "lab_absent_checks": ((VERIFY,), ("judge",)),
}

# Calls that take their lines from a heredoc, and its delimiter: `judge <<'CHECKS'`, lines, `CHECKS`.
HEREDOCS: dict[str, str] = {"judge": "CHECKS"}

# The only other lines of the top level, as they are written.
COMMANDS: tuple[str, ...] = ("set -euo pipefail",)

# Characters a word may hold outside single quotes: none that bash expands, globs, splits, redirects or ends a
# command on.
BARE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:/@%+,-"

_WORD = rf"(?:'[^']*'|\\'|[A-Za-z0-9{re.escape(BARE[62:])}])+"  # pieces joined; each is found in one way only
# A key of an associative array: BARE characters only, in single quotes or not. bash takes a subscript as code once
# more in places (`unset "A[$key]"`, arithmetic): a key the engine reads back holds nothing that could run there.
_KEY = rf"(?:'[A-Za-z0-9{re.escape(BARE[62:])}]*'|[A-Za-z0-9{re.escape(BARE[62:])}]+)"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_COMMENT = re.compile(r" *#")
_HEAD = re.compile(rf" *({_NAME})(?= |$)")
_CALL = re.compile(rf" *({_NAME})(?: +{_WORD})*( +\\| +#.*)?")
_MORE = re.compile(rf" +{_WORD}(?: +{_WORD})*( +\\| +#.*)?")  # a call's line after one that ends with ` \`
_CHECK = re.compile(rf" *{_WORD}(?: +{_WORD})*")  # a line of a heredoc
_ELEMENTS = {ARRAY: re.compile(rf" *{_WORD}(?: +{_WORD})*(?: +#.*)?"),
             ASSOC: re.compile(rf" *\[{_KEY}\]={_WORD}(?: +\[{_KEY}\]={_WORD})*(?: +#.*)?")}
_VALUES = {SCALAR: re.compile(_WORD),
           ARRAY: re.compile(rf"\( *(?:{_WORD}(?: +{_WORD})*)? *\)|\($"),
           ASSOC: re.compile(rf"\( *(?:\[{_KEY}\]={_WORD}(?: +\[{_KEY}\]={_WORD})*)? *\)|\($")}
_ASSIGN = re.compile(rf"({_NAME})=")
_AFTER = re.compile(r" +(?=[^ #])|(?: +#.*)?$")  # between two assignments, or to the end of the line
_FUNCTION = re.compile(rf" *(?:function +({_NAME})|({_NAME}) *\( *\))")  # a function's definition, in any form
_DECLARE = "declare -A "


class NotData(Exception):
    """A line that is not in the grammar: why."""


def _why(text: str, syntax: str = "") -> str:
    """Why a line the grammar refuses is not data: the first thing in it that is neither a bare character, a
    single-quoted string, `\'`, a blank, a comment nor a character of `syntax`; "" when it has none (its form is
    what is wrong)."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                return "an unclosed single quote"
            i = end + 1
        elif c == " " or c in BARE or c in syntax:
            i += 1
        elif c == "#" and (i == 0 or text[i - 1] == " "):
            return ""  # a comment, to the end of the line
        elif text.startswith("\\'", i):
            i += 2
        elif c == "\\":
            return "a backslash outside single quotes (only \\' and a call's ` \\` at the end of a line are data)"
        elif c == "$":
            return {"(": "a command substitution $(...)", "{": "an expansion ${...}"}.get(
                text[i + 1:i + 2], "an expansion $" + text[i + 1:i + 2])
        else:
            return _SYNTAX.get(c, f"the character {c!r} outside single quotes (a bare word holds only letters, "
                                  f"digits and {BARE[62:]})")
    return ""


_SYNTAX = {"`": "a command substitution `...`", '"': 'a double-quoted string (bash expands $ and ` in it)',
           "<": "a redirection", ">": "a redirection", ";": "a list of commands (;)",
           "&": "a list of commands or a background job (&)", "|": "a pipe or a list of commands (|)",
           "(": "a subshell or other syntax ( )", ")": "a subshell or other syntax ( )", "{": "braces { }",
           "}": "braces { }", "*": "a glob (*)", "?": "a glob (?)", "[": "a glob ([ ])", "]": "a glob ([ ])",
           "~": "a tilde expansion (~)", "=": "an assignment or an '=' outside single quotes",
           "!": "a negation or a '!' outside single quotes"}


_ODD_KEY = f"a key of an associative array holds only letters, digits and {BARE[62:]}, quoted or not"


def _listed(names) -> str:
    return ", ".join(names) if names else "none"


class _Recogniser:
    """The state of one lab's part read so far: what it assigned and defined, and where."""

    def __init__(self, script: str):
        self.script = script
        self.variables = {name: form for name, (form, scripts) in VARIABLES.items() if script in scripts}
        self.functions = {name: calls for name, (scripts, calls) in FUNCTIONS.items() if script in scripts}
        self.assigned: dict[str, int] = {}
        self.defined: dict[str, int] = {}
        self.refused: str | None = None  # a function whose definition was refused

    def assignments(self, line: str, number: int) -> str | None:
        """Check a line of assignments; the form of the array it leaves open (ARRAY or ASSOC), if any."""
        declare = line.startswith(_DECLARE)
        pos = len(_DECLARE) if declare else 0
        while True:
            head = _ASSIGN.match(line, pos)
            if head is None:
                raise NotData(_why(line[pos:]) or "not an assignment of the lab's part")
            name = head.group(1)
            form = self.variables.get(name)
            if form is None:
                raise NotData(f"assigns {name}, which the lab's part of {self.script} does not have (its "
                              f"variables: {_listed(self.variables)})")
            if (form == ASSOC) != declare:
                raise NotData(f"assigns {name} otherwise than as {form}")
            value = _VALUES[form].match(line, head.end())
            if value is None:
                syntax = {SCALAR: "", ARRAY: "()", ASSOC: "()[]="}[form]
                why = _why(line[head.end():], syntax) or (_ODD_KEY if form == ASSOC else "")
                raise NotData(why or f"assigns {name} otherwise than as {form}")
            if name in self.assigned:
                raise NotData(f"assigns {name} again (first on line {self.assigned[name]})")
            self.assigned[name] = number
            if value.group() == "(":
                return form  # its elements follow, line after line, up to a line `)`
            after = _AFTER.match(line, value.end())
            if after is None:
                raise NotData(_why(line[value.end():]) or f"assigns {name} otherwise than as {form}")
            if after.end() == len(line):
                return None
            pos = after.end()

    def define(self, line: str, number: int) -> str:
        """Check a function's first line; its name."""
        defined = _FUNCTION.match(line)
        name = defined.group(1) or defined.group(2)
        self.refused = name if line.endswith("{") else None  # its body is read, as the lines of a function
        if name not in self.functions:
            raise NotData(f"defines a function {name}, which the lab's part of {self.script} does not have (its "
                          f"functions: {_listed(self.functions)})")
        if line != f"{name}() {{":
            raise NotData(f"defines {name} otherwise than as `{name}() {{` alone on its line")
        if name in self.defined:
            raise NotData(f"defines {name} again (first on line {self.defined[name]})")
        self.defined[name] = number
        self.refused = None
        return name

    def call(self, line: str, function: str) -> tuple[str | None, bool]:
        """Check a line of a function's body that is neither blank nor a comment: (the delimiter of the heredoc
        that follows it, or None; whether the call goes on on the next line)."""
        calls = self.functions.get(function, ())
        found = _CALL.fullmatch(line)
        if found is not None and found.group(1) in calls and found.group(1) not in HEREDOCS:
            return None, found.group(2) == " \\"  # nearly every line: the rest only says what is wrong
        if _FUNCTION.match(line):
            raise NotData(f"defines a function inside {function}")
        head = _HEAD.match(line)
        name = head.group(1) if head else None
        if name is not None and name not in calls:
            raise NotData(f"`{name}` is not one of the calls {function} makes ({_listed(calls)})")
        if name in HEREDOCS:
            if line.strip() == f"{name} <<'{HEREDOCS[name]}'":
                return HEREDOCS[name], False
            raise NotData(f"{name} takes its lines from a heredoc only, as `{name} <<'{HEREDOCS[name]}'`")
        raise NotData(_why(line) or f"not one of the calls {function} makes ({_listed(calls)})")


def check(lab_part: str, script: str) -> list[tuple[int, str]]:
    """(line number, why) for each line of the lab's part of `script` (up.sh, down.sh or verify.sh) that is not data
    by the grammar above; none when all of it is."""
    r = _Recogniser(script)
    found: list[tuple[int, str]] = []
    function = None  # the function whose body this line is in
    elements = None  # the form of the array whose elements this line holds
    heredoc = None  # the delimiter of the heredoc this line is in
    goes_on = False  # the line before ended with ` \`
    opened = number = 0  # where the open function, array or heredoc began; this line
    for number, line in enumerate(lab_part.split("\n"), 1):
        try:
            if not line.isprintable():
                raise NotData("a character that is not printable")
            if heredoc is not None:
                if line == heredoc:
                    heredoc = None
                elif line and not _COMMENT.match(line) and not _CHECK.fullmatch(line):
                    raise NotData(_why(line) or "not a line of words")
            elif goes_on:
                more = _MORE.fullmatch(line)
                if more is None:
                    why = _why(line)
                    raise NotData("not the words of the call the line before goes on with" + (f" ({why})" if why
                                                                                              else ""))
                goes_on = more.group(1) == " \\"
            elif elements is not None:
                if line == ")":
                    elements = None
                elif line and not _COMMENT.match(line) and not _ELEMENTS[elements].fullmatch(line):
                    raise NotData(_why(line, "[]=" if elements == ASSOC else "") or
                                  (_ODD_KEY if elements == ASSOC else f"not elements of an array {elements}"))
            elif function is not None:
                if line == "}":
                    function = None
                elif line and not _COMMENT.match(line):
                    heredoc, goes_on = r.call(line, function)
                    opened = number if heredoc else opened
            elif not line or _COMMENT.match(line) or line in COMMANDS:
                pass
            elif _FUNCTION.match(line):
                function, opened = r.define(line, number), number
            elif _ASSIGN.match(line) or line.startswith(_DECLARE):
                elements, opened = r.assignments(line, number), number
            else:
                raise NotData(_why(line) or "a command: the top level holds only the lab's assignments, its functions "
                                            f"and {_listed(COMMANDS)}")
        except NotData as e:
            found.append((number, str(e)))
            if r.refused is not None:
                function, opened, r.refused = r.refused, number, None
    if heredoc is not None:
        found.append((number, f"the heredoc opened on line {opened} is not closed by a line {heredoc}"))
    elif goes_on:
        found.append((number, "the last call goes on (` \\`) past the end of the lab's part"))
    elif elements is not None:
        found.append((number, f"the array opened on line {opened} is not closed by a line )"))
    elif function is not None:
        found.append((number, f"the function {function} opened on line {opened} is not closed by a line }}"))
    return found
