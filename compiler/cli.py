"""The `netgen` command. Data (scripts, summaries) goes to stdout; messages go to stderr."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Compile a Python lab file into bash scripts that build (up.sh), remove (down.sh) and check (verify.sh) "
    "network namespaces, veth pairs and bridges.\n\nExample: netgen compile examples/docker0.py -o out/docker0",
)


class Variant(str, Enum):
    up = "up"
    down = "down"
    verify = "verify"


def _err(message: str) -> None:
    print(message, file=sys.stderr)


def _compile(lab: Path):
    from .pipeline import CompileError, compile_lab

    try:
        compiled = compile_lab(str(lab))
    except CompileError as e:
        for d in e.diagnostics:
            _err(str(d))
        errors = sum(d.level == "error" for d in e.diagnostics)
        _err(f"netgen: {lab}: {errors} error{'s' if errors != 1 else ''}; nothing was written")
        raise typer.Exit(1) from None
    for warning in compiled.warnings:
        _err(str(warning))
    return compiled


def _version(value: bool) -> None:
    if value:
        print(f"netgen {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Print the version and exit.")] = None,
) -> None:
    """Options for every command."""


LabArg = Annotated[Path, typer.Argument(metavar="LAB.py", help="The lab file.", exists=True, dir_okay=False)]


@app.command("compile")
def compile_command(
    lab: LabArg,
    variant: Annotated[Variant, typer.Option("--variant", "-v", help="Which script to print.")] = Variant.up,
    out: Annotated[Optional[Path], typer.Option("-o", "--out", metavar="DIR", file_okay=False,
                                                help="Write up.sh, down.sh and verify.sh into DIR instead.")] = None,
) -> None:
    """Compile LAB.py and print its up script (or --variant down|verify), or write all three with -o DIR.

    Example: netgen compile examples/docker0.py > up.sh; netgen compile examples/docker0.py -o out/docker0
    """
    compiled = _compile(lab)
    if out is None:
        sys.stdout.write(compiled.script(variant.value))
        return
    from .pipeline import write_scripts

    try:
        written = write_scripts(compiled, str(out))
    except OSError as e:
        _err(f"netgen: cannot write to {out}: {e.strerror}")
        raise typer.Exit(1) from None
    _err(f"netgen: wrote {', '.join(written)}")


@app.command("check")
def check_command(lab: LabArg) -> None:
    """Validate LAB.py and print a short summary of what it builds.

    Example: netgen check examples/docker0.py
    """
    compiled = _compile(lab)
    print(f"lab {compiled.plan.lab.name} ({lab}): ok")
    for line in compiled.plan.summary:
        print(f"  {line}")


def main() -> None:
    app(prog_name="netgen")
