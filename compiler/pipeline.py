"""Lab file in, scripts out: the pipeline the CLI and the tests share."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from functools import cached_property
from itertools import islice

from . import __version__, ansible, labjson, loader, manifest, model, nodes, plan, render, validate
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
        """Built from the lab with its pools resolved into addresses, when first asked for (check needs none). A
        lab with nodes has one per node (see `nodes`)."""
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


def write_scripts(compiled: Compiled, directory: str, style: str = "batched") -> list[str]:
    """Write up.sh, down.sh, verify.sh and their SHA256SUMS into `directory`, all of them or none: each is
    written beside its target under a temporary name, and renamed over it once every one has been written. A lab
    with nodes gets them in a folder per node, `directory`/NODE, and beside those the Ansible inventory and
    playbook that run them on real hosts, with a SHA256SUMS of their own."""
    folders = {os.path.join(directory, name): node for name, node in compiled.nodes.items()} if compiled.lab.nodes \
        else {directory: compiled}
    staged: list[tuple[str, str]] = []  # (temporary file, target)
    try:
        for folder, one in folders.items():
            os.makedirs(folder, exist_ok=True)
            digests = {}
            for variant in render.VARIANTS:
                name = f"{variant}.sh"
                with open(_stage(folder, name, 0o755, staged), "wb") as f:
                    digests[name] = _render_into(one.plan, variant, style, f)
            with open(_stage(folder, manifest.NAME, 0o644, staged), "wb") as f:
                f.write(manifest.text(digests).encode())
        if compiled.lab.nodes:
            digests = {}
            for name, text in ((ansible.INVENTORY, ansible.inventory(compiled.lab, __version__)),
                               (ansible.PLAYBOOK, ansible.playbook(compiled.lab, __version__))):
                data = text.encode()
                with open(_stage(directory, name, 0o644, staged), "wb") as f:
                    f.write(data)
                digests[name] = hashlib.sha256(data).hexdigest()
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


def compile_into(path: str, directory: str, style: str = "batched",
                 timeout: float | None = None) -> tuple[Compiled, list[str]]:
    """compile_lab, then write_scripts: an invalid lab writes nothing and makes no directory."""
    compiled = compile_lab(path, timeout)
    return compiled, write_scripts(compiled, directory, style)


def _stage(directory: str, name: str, mode: int, staged: list[tuple[str, str]]) -> str:
    """A new empty file beside `directory/name` with `mode`, recorded in `staged`."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.")
    staged.append((tmp, os.path.join(directory, name)))
    os.fchmod(fd, mode)
    os.close(fd)
    return tmp


def _render_into(plan_: plan.Plan, variant: str, style: str, f) -> str:
    """Render the script `variant` into the binary file `f`, as it is made; return its sha256 hex digest."""
    digest = hashlib.sha256()
    pieces = render.stream(plan_, variant, style)
    while chunk := "".join(islice(pieces, 10_000)).encode():
        f.write(chunk)
        digest.update(chunk)
    return digest.hexdigest()


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
