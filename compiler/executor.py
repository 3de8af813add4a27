"""The only code that runs anything on the host: compiled scripts, the sandbox of `netgen try`, `ip` for inspect.

Everything runs through the `sh` package. A script's output is streamed line by line as it comes, and its exit
code becomes netgen's. Failures of `sh` itself (a program not found, a signal) become messages, not tracebacks.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import sh

from . import manifest as manifest_file
from .simulation import Simulation, SimulationError

if TYPE_CHECKING:
    from .model import Node

class ExecutorError(Exception):
    """Something the user must fix before netgen can run a script; str() is the message."""


def check_unmodified(script: Path) -> None:
    """Refuse a script that is not byte-identical to what netgen compiled into its directory."""
    manifest = script.parent / manifest_file.NAME
    try:
        recorded = manifest_file.parse(manifest.read_text())
    except OSError:
        raise ExecutorError(f"{manifest} is missing, so {script} cannot be checked against what netgen compiled; "
                            f"compile again with `netgen compile LAB.py -o {script.parent}`, or pass "
                            f"--allow-modified") from None
    if script.name not in recorded:
        raise ExecutorError(f"{script.name} is not listed in {manifest}: it was not compiled by netgen")
    actual = hashlib.sha256(script.read_bytes()).hexdigest()
    if actual != recorded[script.name]:
        raise ExecutorError(f"{script} has changed since netgen compiled it (sha256 {actual[:12]}..., recorded "
                            f"{recorded[script.name][:12]}...); compile the lab again, or pass "
                            f"--allow-modified to run it as it is")


class _Progress:
    """On a terminal, a status line of namespaces done; elsewhere nothing beyond the script's own lines."""

    def __init__(self, script: str, total: int):
        self.enabled = sys.stderr.isatty() and total > 1
        # up.sh's own line per namespace done: "up.sh: NS: 4 changes", "up.sh: NS: 1 change" (down.sh deletes the
        # namespaces in one batch: its "host: removed 3 namespaces" is not one namespace done)
        self.section = re.compile(rf"^{re.escape(script)}: \S+: \d+ changes?$")
        self.total, self.done = total, 0

    def line(self, text: str, stream) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
        stream.write(text)
        stream.flush()
        if self.enabled and self.section.match(text):
            self.done += 1
            sys.stderr.write(f"netgen: {self.done} of {self.total} namespaces done")
            sys.stderr.flush()

    def end(self) -> None:
        if self.enabled and self.done:
            sys.stderr.write("\r\033[K")


def run_script(script: Path, args: list[str] | None = None, namespaces: int = 0) -> int:
    """Run a compiled script with bash, streaming its output; return its exit code."""
    progress = _Progress(script.name, namespaces)
    try:
        return _streamed("bash", [str(script), *(args or [])], lambda line: progress.line(line, sys.stdout),
                         lambda line: progress.line(line, sys.stderr))
    except sh.CommandNotFound:
        raise ExecutorError("bash is not installed") from None
    finally:
        progress.end()


def _streamed(program: str, args: list[str], out, err, env: dict[str, str] | None = None) -> int:
    """Run `program`, each line of its output and errors given to `out` and `err` as it comes; its exit code."""
    try:
        running = sh.Command(program)(*args, _bg=True, _ok_code=list(range(256)), _out=out, _err=err, _env=env)
        while True:
            try:
                running.wait()
                return running.exit_code
            except KeyboardInterrupt:  # the program got the same SIGINT and is rolling back: let it finish
                continue
    except sh.SignalException as e:
        return 128 + abs(e.exit_code)


# `netgen up|down|verify LAB --inventory FILE`: the lab's playbook (DIR/site.yml), run by Ansible on real hosts.
CLUSTER_EXTRA = "pip install 'netgen[cluster]'"


def ansible_playbook() -> str:
    """The ansible-playbook to run: the one installed beside netgen's own Python (by the cluster extra), else the
    first on PATH."""
    beside = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    found = beside if os.access(beside, os.X_OK) else shutil.which("ansible-playbook")
    if found is None:
        raise ExecutorError(f"--inventory runs the lab's playbook with ansible-playbook (Ansible), which is not "
                            f"installed: install netgen with its cluster extra, `{CLUSTER_EXTRA}` (in a checkout: "
                            f"`.venv/bin/pip install -e '.[cluster]'`), or ansible-core 2.15 or later")
    return found


def run_playbook(program: str, args: list[str]) -> int:
    """Run ansible-playbook with `args`, streaming its output; return its exit code (0 all hosts ok, 2 a host
    failed, 4 a host could not be reached, ...). Its results are shown as YAML, where a script's lines read one a
    line, unless the caller's environment chooses a format."""
    env = {"ANSIBLE_CALLBACK_RESULT_FORMAT": "yaml", **os.environ}
    try:
        return _streamed(program, args, _lines(sys.stdout), _lines(sys.stderr), env)
    except sh.CommandNotFound:
        raise ExecutorError(f"{program} cannot be run: reinstall Ansible ({CLUSTER_EXTRA})") from None


# `netgen try`: inside new network, mount and PID namespaces, with a private /run (for netns, lock and netgen),
# build the lab, verify it, run the command, and remove the lab whatever happens. The PID namespace ends every
# process left inside when the sandbox's first process exits, so nothing outlives it.
_TRY = r"""
set -uo pipefail
dir=$1
shift
# -n: util-linux's mount would otherwise first make /run/mount (where it records mounts) in the machine's /run
mount -n -t tmpfs netgen-try /run && mkdir -p /run/netns || exit 2
ip link set lo up
trap 'echo "netgen try: removing the lab"; bash "$dir/down.sh" >/dev/null' EXIT
echo "netgen try: building the lab in a sandbox"
bash "$dir/up.sh" || exit
echo "netgen try: verifying it"
bash "$dir/verify.sh" || echo "netgen try: verify found differences (above), going on: an expectation may need a server your command starts"
if (($#)); then
  echo "netgen try: running $*"
  "$@"
else
  echo "netgen try: a shell inside the sandbox; the lab goes when you leave it (exit)"
  "${SHELL:-bash}" -i
fi
"""  # noqa: E501  (bash)


def try_in_sandbox(script_dir: Path, command: list[str]) -> int:
    """Build, verify and use the lab compiled in `script_dir` inside a throwaway sandbox; return the exit code."""
    try:
        unshare = sh.Command("unshare")
    except sh.CommandNotFound:
        raise ExecutorError("netgen try needs unshare (util-linux)") from None
    if os.geteuid() != 0:
        raise ExecutorError("netgen try must run as root (it creates network namespaces in a sandbox)")
    # Ctrl-C reaches the whole process group: the sandbox removes the lab and exits, and netgen waits for that
    # (it must not delete the scripts while the sandbox still runs down.sh). A handler, not SIG_IGN, which the
    # sandbox would inherit.
    previous = signal.signal(signal.SIGINT, lambda *_: None)
    try:
        unshare("--net", "--mount", "--pid", "--fork", "--mount-proc", "--propagation", "private",
                "bash", "-c", _TRY, "netgen-try", str(script_dir), *command, _fg=True)
    except sh.SignalException as e:  # first: it is an ErrorReturnCode too, with a negative exit code
        return 128 + abs(e.exit_code)
    except sh.ErrorReturnCode as e:
        return e.exit_code
    finally:
        signal.signal(signal.SIGINT, previous)
    return 0


def try_nodes(script_dir: Path, nodes: Sequence[Node], node: str, command: list[str]) -> int:
    """`netgen try` for a lab with nodes, compiled into `script_dir`/NODE/: simulate the nodes, run every node's up.sh,
    then every node's verify.sh, then `command` (or a shell) inside `node`, then every node's down.sh whatever
    happened. Return the first failing up.sh's exit code, else the command's, else the first failing down.sh's.

    Each node's scripts run side by side, their lines prefixed with the node's name; the command has the terminal."""
    if os.geteuid() != 0:
        raise ExecutorError("netgen try must run as root (it creates network namespaces in a sandbox)")
    interrupted = []
    # Ctrl-C reaches the scripts and the command (they run in netgen's process group): up.sh rolls back, the command
    # ends; netgen notes it, goes no further and removes the lab. A handler, not SIG_IGN, which they would inherit.
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        with Simulation(nodes) as simulation:
            names = [n.name for n in nodes]
            try:
                print(f"netgen try: building the lab on {len(nodes)} simulated nodes: "
                      + ", ".join(f"{n.name} ({n.underlay} on {n.dev})" for n in nodes), flush=True)
                code = next((c for c in _on_every_node(simulation, names, script_dir, "up.sh") if c), 0)
                if not (code or interrupted):
                    print("netgen try: verifying it", flush=True)
                    if any(_on_every_node(simulation, names, script_dir, "verify.sh")):
                        print("netgen try: verify found differences (above), going on: an expectation may need a "
                              "server your command starts", flush=True)
                    if not interrupted:
                        code = _command(simulation, node, command)
            finally:
                print("netgen try: removing the lab", flush=True)
                down = _on_every_node(simulation, names, script_dir, "down.sh", removing=True)
    except SimulationError as e:
        raise ExecutorError(str(e)) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    if not code and interrupted:
        code = 128 + signal.SIGINT
    return code or next((c for c in down if c), 0)


def _on_every_node(simulation: Simulation, names: list[str], script_dir: Path, script: str,
                   removing: bool = False) -> list[int]:
    """Run `script` on every node at once, each line it writes prefixed with the node's name; the exit codes, in the
    nodes' order. removing: down.sh, out of reach of Ctrl-C (a session of its own), its standard output dropped as
    `netgen try` of a lab without nodes does."""
    running = []
    for name in names:
        enter = simulation.enter(name)
        running.append(sh.Command(enter[0])(
            *enter[1:], "bash", str(script_dir / name / script), _bg=True, _bg_exc=False, _ok_code=range(256),
            _new_session=removing, _out=os.devnull if removing else _lines(sys.stdout, f"{name}: "),
            _err=_lines(sys.stderr, f"{name}: ")))
    codes = []
    for process in running:
        try:
            process.wait()
            codes.append(process.exit_code)
        except sh.SignalException as e:
            codes.append(128 + abs(e.exit_code))
    return codes


def _lines(stream, prefix: str = ""):
    """A writer of whole lines to `stream`, each after `prefix` (a node's name and a colon, say), flushed as it
    comes."""
    def line(text: str) -> None:
        stream.write(f"{prefix}{text}" if text.endswith("\n") or not prefix else f"{prefix}{text}\n")
        stream.flush()
    return line


def _command(simulation: Simulation, node: str, command: list[str]) -> int:
    """Run the command, or an interactive shell, inside the node, in the directory netgen runs in."""
    if command:
        print(f"netgen try: running {' '.join(command)} in {node}", flush=True)
    else:
        print(f"netgen try: a shell in {node}; the lab goes when you leave it (exit)", flush=True)
        command = [os.environ.get("SHELL") or "bash", "-i"]
    enter = simulation.enter(node, wd=os.getcwd())
    try:
        sh.Command(enter[0])(*enter[1:], *command, _fg=True)
    except sh.SignalException as e:  # before its base class, ErrorReturnCode, whose exit_code it makes negative
        return 128 + abs(e.exit_code)
    except sh.ErrorReturnCode as e:
        return e.exit_code
    return 0


def render_dot(dot: str, fmt: str) -> bytes:
    """DOT text drawn as svg or png by Graphviz: the picture's bytes (netgen writes the file itself, so that a
    file that cannot be written is reported as such, and a failed drawing leaves no file)."""
    try:
        return sh.Command("dot")(f"-T{fmt}", _in=dot, _return_cmd=True).stdout
    except sh.CommandNotFound:
        raise ExecutorError("Graphviz is not installed, so there is no `dot` to draw with: install it "
                            "(apt-get install graphviz), or use --format dot or --format mermaid") from None
    except sh.ErrorReturnCode as e:
        said = " ".join(e.stderr.decode(errors="replace").split())[:300] or "no message"
        raise ExecutorError(f"Graphviz's dot could not draw the graph as {fmt} (exit {e.exit_code}: {said}); "
                            f"try another --format (svg, png, or dot to see the text it was given), or reinstall "
                            f"Graphviz (apt-get install --reinstall graphviz)") from None
    except sh.SignalException as e:
        raise ExecutorError(f"Graphviz's dot was killed by signal {abs(e.exit_code)} while drawing") from None


def ip_json(ns: str | None, args: list[str]) -> str | None:
    """`ip [-n NS] ARGS` output, or None when the namespace cannot be read; used by inspect."""
    try:
        return str(sh.Command("ip")(*(["-n", ns] if ns else []), *args))
    except (sh.ErrorReturnCode, sh.SignalException):
        return None
    except sh.CommandNotFound:
        raise ExecutorError("the ip command (iproute2) is not installed") from None
