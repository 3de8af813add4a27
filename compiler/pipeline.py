"""Lab file in, scripts out: the pipeline the CLI and the tests share."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import tempfile
import threading
import traceback
from dataclasses import dataclass
from functools import cached_property
from itertools import islice

from . import __version__, labjson, loader, manifest, nodes, plan, render, validate
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
        have a forked child build its own (see _Child). A lab with nodes has one per node (see `nodes`)."""
        return plan.build(self.lab, __version__)

    @cached_property
    def nodes(self) -> dict[str, "Compiled"]:
        """Each node's own lab (nodes.split), compiled as a lab without nodes; none for a lab without nodes."""
        return {name: Compiled(lab, []) for name, lab in nodes.split(self.lab).items()}

    def script(self, variant: str, style: str = "batched") -> str:
        return render.render(self.plan, variant, style)


def is_data(path: str) -> bool:
    """A .json lab is read as data; any other is a Python program and is run."""
    return path.lower().endswith(".json")


def load_lab(path: str, timeout: float | None = None) -> model.Lab:
    """Run (Python) or read (JSON) the lab at `path`, unvalidated; raise CompileError if it cannot be loaded. A
    Python lab still running after `timeout` seconds is stopped; a JSON lab runs nothing."""
    try:
        return labjson.load(path) if is_data(path) else loader.load(path, timeout)
    except (loader.LoadError, labjson.JSONLabError) as e:
        raise CompileError(e.diagnostics) from None


def checked(lab: model.Lab) -> Compiled:
    """The lab, validated; raise CompileError with every problem found."""
    found = validate.validate(lab)
    if validate.has_errors(found):
        raise CompileError(found)
    return Compiled(lab, found)


def compile_lab(path: str, timeout: float | None = None) -> Compiled:
    """Load and validate the lab at `path` (its plan is built when first asked for)."""
    return checked(load_lab(path, timeout))


PARALLEL_OBJECTS = 6_000  # namespaces and interfaces (a star of 2,000): below, a second process saves 30 ms at most


def write_scripts(compiled: Compiled, directory: str, style: str = "batched",
                  parallel: bool | None = None) -> list[str]:
    """Write up.sh, down.sh, verify.sh and their SHA256SUMS into `directory`, all of them or none: each is
    written beside its target under a temporary name, and renamed over it once every one has been written. A lab
    with nodes gets them in a folder per node, `directory`/NODE.

    Planning and rendering are most of a big lab's compile time, so with `parallel` (by default: a big lab, and
    more than one core) a forked child plans and renders verify.sh and down.sh while this process renders up.sh."""
    return _write(compiled.lab, lambda: compiled, directory, style, parallel)[1]


def compile_into(path: str, directory: str, style: str = "batched", timeout: float | None = None,
                 parallel: bool | None = None) -> tuple[Compiled, list[str]]:
    """compile_lab, then write_scripts, as one: the forked child of a big lab starts on its scripts before the lab
    is validated, which is then done beside it. An invalid lab writes nothing and makes no directory."""
    lab = load_lab(path, timeout)
    return _write(lab, lambda: checked(lab), directory, style, parallel)


def _write(lab: model.Lab, compiled_of, directory: str, style: str,
           parallel: bool | None) -> tuple[Compiled, list[str]]:
    """write_scripts for `lab`, once compiled_of() has given it validated (or raised)."""
    if lab.nodes:
        parallel = False  # the child plans a lab without nodes; a node's lab is small
    elif parallel is None:
        parallel = (len(lab.namespaces) + len(lab.interfaces) >= PARALLEL_OBJECTS
                    and (os.cpu_count() or 1) > 1 and threading.active_count() == 1)  # fork copies no threads
    # The child's share: the longest script, and the shortest, as this process validates the lab first
    child = _Child(lab, ("verify.sh", "down.sh"), style) if parallel else None
    staged: list[tuple[str, str]] = []  # (temporary file, target)
    try:
        compiled = compiled_of()
        folders = {os.path.join(directory, name): node for name, node in compiled.nodes.items()} if lab.nodes \
            else {directory: compiled}
        for folder, one in folders.items():
            os.makedirs(folder, exist_ok=True)
            scripts = {f"{v}.sh": _stage(folder, f"{v}.sh", 0o755, staged) for v in render.VARIANTS}
            digests = {}
            for name, tmp in scripts.items():
                if child is None or name not in child.names:
                    with open(tmp, "wb") as f:
                        digests[name] = _render_into(one.plan, name, style, f)
            if child is not None:
                digests.update(child.collect(scripts))
            with open(_stage(folder, manifest.NAME, 0o644, staged), "wb") as f:
                f.write(manifest.text(digests).encode())
        for tmp, target in staged:
            os.replace(tmp, target)
    except BaseException:
        if child is not None:
            child.cancel()
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        raise
    return compiled, [target for _, target in staged]


def _stage(directory: str, name: str, mode: int, staged: list[tuple[str, str]]) -> str:
    """A new empty file beside `directory/name` with `mode`, recorded in `staged`."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
    staged.append((tmp, os.path.join(directory, name)))
    os.fchmod(fd, mode)
    os.close(fd)
    return tmp


def _render_into(plan_: plan.Plan, name: str, style: str, f) -> str:
    """Render the script `name` into the binary file `f`, as it is made; return its sha256 hex digest."""
    digest = hashlib.sha256()
    pieces = render.stream(plan_, name.removesuffix(".sh"), style)
    while chunk := "".join(islice(pieces, 10_000)).encode():
        f.write(chunk)
        digest.update(chunk)
    return digest.hexdigest()


class _Child:
    """A forked child that plans the lab and renders the scripts `names`, each into a file of its own with no name,
    and sends back their digests (or what went wrong) on a pipe; collect() copies them into place.

    The child plans for itself (the fork comes before the plan, and before validation when compile_into forks):
    a plan handed down to a child costs more, as both processes touch the reference count of every one of its
    objects, so each of its pages (55 MB at 10,000 namespaces) is copied on first touch, and page faults are dear
    on these machines. A lab that turns out invalid has its child stopped; nothing it wrote has a name."""

    def __init__(self, lab: model.Lab, names: tuple[str, ...], style: str):
        self.names = names
        self.files = {name: tempfile.TemporaryFile() for name in names}
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: render, answer, and leave without running the parent's exit handlers
            os.close(read_end)
            try:
                plan_ = plan.build(lab, __version__)
                answer = " ".join(_render_into(plan_, name, style, f) for name, f in self.files.items())
                for f in self.files.values():
                    f.flush()
                answer, code = answer.encode(), 0
            except BaseException:
                answer, code = traceback.format_exc().encode()[-4000:], 1
            os.write(write_end, answer)
            os._exit(code)
        os.close(write_end)
        self.pipe = os.fdopen(read_end, "rb")

    def collect(self, paths: dict[str, str]) -> dict[str, str]:
        """Wait for the child; copy what it rendered to paths[name] for each of its names and return their digests,
        or raise what went wrong."""
        answer = self.pipe.read().decode()
        self._reap()
        digests = answer.split()
        if not self.ok or len(digests) != len(self.names):
            raise RuntimeError(f"rendering {' and '.join(self.names)} failed:\n{answer}")
        for name, f in self.files.items():
            f.seek(0)
            with open(paths[name], "wb") as out:
                shutil.copyfileobj(f, out, 1 << 20)
            f.close()
        return dict(zip(self.names, digests, strict=True))

    def cancel(self) -> None:
        """Stop the child, if it still runs, and let go of its files."""
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            self._reap()
        for f in self.files.values():
            f.close()

    def _reap(self) -> None:
        self.ok = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1]) == 0
        self.pid = 0
        self.pipe.close()


def write_file(target: str, text: str | bytes, mode: int = 0o644) -> None:
    """Write `text` (or bytes) to `target` whole or not at all: into a temporary file beside it, then renamed over
    it."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target) or ".", prefix=f".{os.path.basename(target)}.")
    try:
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
