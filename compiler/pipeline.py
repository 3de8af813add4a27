"""Lab file in, scripts out: the pipeline the CLI and the tests share."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

from . import __version__, labjson, loader, manifest, plan, render, validate
from . import model
from .model import Diagnostic


class CompileError(Exception):
    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("\n".join(map(str, diagnostics)))
        self.diagnostics = diagnostics


@dataclass(frozen=True)
class Compiled:
    plan: plan.Plan  # built from the lab with its pools resolved into addresses
    warnings: list[Diagnostic]
    lab: model.Lab  # the lab as written: what export writes

    def script(self, variant: str, style: str = "batched") -> str:
        return render.render(self.plan, variant, style)


def is_data(path: str) -> bool:
    """A .json lab is read as data; any other is a Python program and is run."""
    return path.lower().endswith(".json")


def compile_lab(path: str, timeout: float | None = None) -> Compiled:
    """Load, validate and plan the lab at `path`; raise CompileError with every problem found. A Python lab still
    running after `timeout` seconds is stopped; a JSON lab runs nothing."""
    try:
        lab = labjson.load(path) if is_data(path) else loader.load(path, timeout)
    except (loader.LoadError, labjson.JSONLabError) as e:
        raise CompileError(e.diagnostics) from None
    found = validate.validate(lab)
    if validate.has_errors(found):
        raise CompileError(found)
    return Compiled(plan.build(lab, __version__), found, lab)


def write_scripts(compiled: Compiled, directory: str, style: str = "batched") -> list[str]:
    """Write up.sh, down.sh, verify.sh and their SHA256SUMS into `directory`, each whole or not at all."""
    texts = {f"{v}.sh": compiled.script(v, style) for v in render.VARIANTS}  # render all before writing any
    texts[manifest.NAME] = manifest.text(texts)
    os.makedirs(directory, exist_ok=True)
    written = []
    for name, text in texts.items():
        target = os.path.join(directory, name)
        write_file(target, text, 0o755 if name.endswith(".sh") else 0o644)
        written.append(target)
    return written


def write_file(target: str, text: str, mode: int = 0o644) -> None:
    """Write `text` to `target` whole or not at all: into a temporary file beside it, then renamed over it."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target) or ".", prefix=f".{os.path.basename(target)}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
