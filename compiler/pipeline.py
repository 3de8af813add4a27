"""Lab file in, scripts out: the pipeline the CLI and the tests share."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import traceback
from dataclasses import dataclass
from functools import cached_property
from itertools import islice

from . import __version__, labjson, loader, manifest, plan, render, validate
from . import model
from .model import Diagnostic


class CompileError(Exception):
    def __init__(self, diagnostics: list[Diagnostic]):
        super().__init__("\n".join(map(str, diagnostics)))
        self.diagnostics = diagnostics


@dataclass(frozen=True)
class Compiled:
    lab: model.Lab  # the lab as written, and valid: what export writes
    warnings: list[Diagnostic]

    @cached_property
    def plan(self) -> plan.Plan:
        """Built from the lab with its pools resolved into addresses, when first asked for: write_scripts may
        have a forked child build its own (see there)."""
        return plan.build(self.lab, __version__)

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
    return Compiled(lab, found)


PARALLEL_OBJECTS = 6_000  # namespaces and interfaces: from a star of about 2,000, a second process pays for itself


def write_scripts(compiled: Compiled, directory: str, style: str = "batched",
                  parallel: bool | None = None) -> list[str]:
    """Write up.sh, down.sh, verify.sh and their SHA256SUMS into `directory`, all of them or none: each is
    written beside its target under a temporary name, and renamed over it once every one has been written.

    Planning and rendering are most of a big lab's compile time, so with `parallel` (by default: a big lab, and
    more than one core) a forked child renders verify.sh while this process renders up.sh and down.sh."""
    os.makedirs(directory, exist_ok=True)
    staged: list[tuple[str, str]] = []  # (temporary file, target)
    try:
        scripts = {f"{v}.sh": _stage(directory, f"{v}.sh", 0o755, staged) for v in render.VARIANTS}
        if parallel is None:
            lab = compiled.lab
            parallel = (len(lab.namespaces) + len(lab.interfaces) >= PARALLEL_OBJECTS
                        and (os.cpu_count() or 1) > 1 and threading.active_count() == 1)  # fork copies no threads
        digests = _render_forked(compiled, style, scripts) if parallel else {
            name: _render_into(compiled.plan, name, style, tmp) for name, tmp in scripts.items()}
        with open(_stage(directory, manifest.NAME, 0o644, staged), "wb") as f:
            f.write(manifest.text(digests).encode())
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    return [target for _, target in staged]


def _stage(directory: str, name: str, mode: int, staged: list[tuple[str, str]]) -> str:
    """A new empty file beside `directory/name` with `mode`, recorded in `staged`."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
    staged.append((tmp, os.path.join(directory, name)))
    os.fchmod(fd, mode)
    os.close(fd)
    return tmp


def _render_into(plan_: plan.Plan, name: str, style: str, path: str) -> str:
    """Render the script `name` into the file at `path`, as it is made; return its sha256 hex digest."""
    digest = hashlib.sha256()
    pieces = render.stream(plan_, name.removesuffix(".sh"), style)
    with open(path, "wb") as f:
        while chunk := "".join(islice(pieces, 10_000)).encode():
            f.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def _render_forked(compiled: Compiled, style: str, scripts: dict[str, str]) -> dict[str, str]:
    """_render_into for every script: verify.sh (the longest) in a forked child, which sends back its digest (or
    what went wrong) on a pipe; up.sh and down.sh here.

    The fork comes before the plan, if it has not been built yet, and each process builds its own, side by side.
    A plan handed down to a child costs more: both processes touch the reference count of every one of its objects,
    so each of its pages (75 MB at 10,000 namespaces) is copied on first touch, and page faults are dear on these
    machines (on the benchmark's 10,000-namespace star: median 1.07 s against 1.25 s from the plan to the files)."""
    child, child_path = "verify.sh", scripts["verify.sh"]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: render, answer, and leave without running the parent's exit handlers
        os.close(read_end)
        try:
            answer, code = _render_into(compiled.plan, child, style, child_path).encode(), 0
        except BaseException:
            answer, code = traceback.format_exc().encode()[-4000:], 1
        os.write(write_end, answer)
        os._exit(code)
    os.close(write_end)
    digests = {}
    try:
        for name, path in scripts.items():
            if name != child:
                digests[name] = _render_into(compiled.plan, name, style, path)
    finally:  # reap the child, even when this process failed or was interrupted
        with os.fdopen(read_end, "rb") as pipe:
            answer = pipe.read().decode()
        ok = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    if not ok:
        raise RuntimeError(f"rendering {child} failed:\n{answer}")
    digests[child] = answer
    return digests


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
