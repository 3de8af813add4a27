"""Turn a plan into the text of up.sh, down.sh or verify.sh. Reads the plan only."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from functools import cache
from importlib.resources import files

import jinja2

from .model import Loc
from .plan import Plan, V

VARIANTS = ("up", "down", "verify")
STYLES = ("batched", "plain")


def comment(value: object) -> str:
    """Text for a comment line: anything that could end the comment (a newline) or hide text is escaped."""
    text = str(value)
    if text.isprintable():  # nearly always: one C call instead of a loop over characters
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def about(what: str, loc: Loc) -> str:
    """The comment over a step or probe (`what | about(loc)`): what it does, and the lab file line it came from."""
    text = f"{what} ({loc.file}:{loc.line})"  # Loc's fields, not str(loc): a Python call less for each of 200,000
    return text if text.isprintable() else comment(text)


def shell_quote(value: object) -> str:
    """The one filter every user value passes through: always single quotes, so a reviewer sees every value
    quoted and no value can become shell code."""
    return "'" + str(value).replace("'", "'\\''") + "'"


_quote_word = cache(shell_quote)  # names and addresses repeat across steps


def words(command: tuple[str, ...], quote=_quote_word, V=V) -> str:  # defaults: local names, looked up faster
    """A command's words for the script: user values (plan.V) quoted, netgen's own keywords bare."""
    return " ".join([quote(w) if type(w) is V else w for w in command])


def line(command: tuple[str, ...]) -> str:
    """A command as one quoted `ip -batch` line: up.sh hands it to ip as it is."""
    return shell_quote(" ".join(command))


ENGINE_MARKER = "# ===== netgen engine"


@cache
def engine() -> str:
    """The engine: the text every compiled script ends with, from its first line (ENGINE_MARKER) to the end of the
    file, the same in up.sh, down.sh and verify.sh of every lab. It is no template: nothing of a lab is in it."""
    return files("netgen.templates").joinpath("engine.sh").read_text()


@cache
def engine_sha256() -> str:
    return hashlib.sha256(engine().encode()).hexdigest()


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(files("netgen.templates"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
        # bash writes ${#array[@]}, so Jinja's comments use other markers than {# #}
        comment_start_string="<#--",
        comment_end_string="--#>",
    )
    env.filters["q"] = shell_quote
    env.filters["c"] = comment
    env.filters["about"] = about
    env.filters["words"] = words
    env.filters["line"] = line
    return env


def stream(plan: Plan, variant: str, style: str = "batched") -> Iterator[str]:
    """The script `variant` (up, down or verify) for `plan`, batched per namespace or plain (one ip per line), in
    pieces: a 10,000-namespace lab's script is a million of them, better written as they come than held."""
    if style == "plain":
        from . import plain  # plain builds on this module's quoting

        lines = getattr(plain, variant)(plan)
        gone = plain.absent(plan) if variant == "verify" else []
        return environment().get_template("plain.sh.j2").generate(plan=plan, variant=variant, lines=lines,
                                                                  absent=gone)
    lab_part = environment().get_template(f"{variant}.sh.j2").generate(plan=plan, engine_sha256=engine_sha256())
    return itertools.chain(lab_part, (engine(),))


def render(plan: Plan, variant: str, style: str = "batched") -> str:
    """The whole text of the script `variant`."""
    return "".join(stream(plan, variant, style))
