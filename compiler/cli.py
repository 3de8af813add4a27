"""The `netgen` command. Data (scripts, summaries) goes to stdout; messages go to stderr."""

from __future__ import annotations

import gc
import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer

from . import __version__

app = typer.Typer(
    add_completion=True,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    help="Compile a lab file (Python, or JSON data) into bash scripts that build (up.sh), remove (down.sh) and "
    "check (verify.sh) network namespaces, veth pairs and bridges.\n\n"
    "Example: netgen compile examples/docker0.py -o out/docker0",
)


class GraphFormat(str, Enum):
    dot = "dot"
    mermaid = "mermaid"
    svg = "svg"
    png = "png"


class Style(str, Enum):
    batched = "batched"
    plain = "plain"


class Variant(str, Enum):
    up = "up"
    down = "down"
    verify = "verify"


def _err(message: str) -> None:
    from .render import comment  # a message may quote a hostile name: no control characters reach the terminal

    print("\n".join(map(comment, message.split("\n"))), file=sys.stderr)


def _compile(lab: Path, timeout: float):
    from .pipeline import compile_lab

    compiled = _reported(lab, lambda: compile_lab(str(lab), timeout))
    _warn(compiled.warnings)
    return compiled


def _one_node(compiled, what: str) -> None:
    """Exit 2 when the lab spans nodes, saying what to do instead of `what`, which needs a lab on one machine."""
    if compiled.lab.nodes:
        names = ", ".join(n.name for n in compiled.lab.nodes)
        _err(f"netgen: lab {compiled.lab.name} spans {len(compiled.lab.nodes)} nodes ({names}), each with scripts of "
             f"its own: {what}")
        raise typer.Exit(2)


_ON_EACH_NODE = ("compile them with `netgen compile LAB -o DIR` and run DIR/NODE/up.sh (down.sh, verify.sh) on each "
                 "node, run them on your hosts with Ansible (`netgen up LAB --inventory FILE`), or try them all on "
                 "simulated nodes here with `netgen try LAB`")


def _compile_into(lab: Path, out: Path, style: str, timeout: float) -> list[str]:
    """Compile the lab and write its scripts into `out`; the files written."""
    from .pipeline import compile_into

    try:
        compiled, written = _reported(lab, lambda: compile_into(str(lab), str(out), style, timeout))
    except OSError as e:
        _cannot_write(f"the scripts into the folder {out}", out, e)
    _warn(compiled.warnings)
    return written


def _reported(lab: Path, run):
    """run(), which compiles `lab`; its errors on stderr, then exit 1."""
    from .pipeline import CompileError

    try:
        result = run()
    except CompileError as e:
        for d in e.diagnostics:
            _err(str(d))
        errors = sum(d.level == "error" for d in e.diagnostics)
        _err(f"netgen: {lab}: {errors} error{'s' if errors != 1 else ''}; nothing was written")
        raise typer.Exit(1) from None
    return result


def _warn(warnings) -> None:
    for warning in warnings:
        _err(str(warning))


def _write_file(path: Path, data: str | bytes) -> None:
    """Write one file whole or not at all, and say so; a failure is worded with what to do, exit 1."""
    from .pipeline import write_file

    try:
        write_file(str(path), data)
    except OSError as e:
        _cannot_write(str(path), path, e)
    _err(f"netgen: wrote {path}")


def _cannot_write(what: str, path: Path, e: OSError):
    """Exit 1 with why `what` (a file, or scripts into a folder) at `path` could not be written and what to do."""
    import errno

    where = path.parent if what == str(path) else path  # the folder it goes into
    why = {
        errno.ENOENT: f"the folder {where} does not exist; make it first, or choose another path",
        errno.ENOTDIR: f"a part of {where} is a file, not a folder; choose another path",
        errno.EACCES: f"permission denied in {where}; choose a folder you may write to",
        errno.EPERM: f"permission denied in {where}; choose a folder you may write to",
        errno.EROFS: f"{where} is on a read-only file system; choose another path",
        errno.ENOSPC: "no space left on the device; free some, or choose another path",
        errno.EISDIR: f"{path} is a folder; name a file",
    }.get(e.errno, e.strerror or str(e))
    if e.errno == errno.ENOENT and where.is_dir():  # /proc, say: there, yet no file may be made in it
        why = f"{where} takes no new files ({e.strerror}); choose another path"
    _err(f"netgen: cannot write {what}: {why}")
    raise typer.Exit(1) from None


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


LabArg = Annotated[Path, typer.Argument(
    metavar="LAB.py|LAB.json", exists=True, dir_okay=False,
    help="The lab: a Python file, which netgen runs, or a .json file (netgen export), which it only reads.")]
TIMEOUT = 60.0  # seconds a Python lab may run: far more than any real lab needs, so only a stuck one is stopped
TimeoutOpt = Annotated[float, typer.Option(
    "--timeout", metavar="SECONDS", min=0,
    help="Stop a Python lab that runs longer than this (0: no limit); a JSON lab runs nothing.")]


@app.command("compile")
def compile_command(
    lab: LabArg,
    variant: Annotated[Variant, typer.Option("--variant", help="Which script to print.")] = Variant.up,
    out: Annotated[Optional[Path], typer.Option(
        "-o", "--out", metavar="DIR", file_okay=False,
        help="A folder (made if missing): write up.sh, down.sh, verify.sh and SHA256SUMS into it instead of "
        "printing one script; for a lab with nodes, into DIR/NODE for each node.")] = None,
    style: Annotated[Style, typer.Option("--style", help="batched: one ip -batch per namespace, with checks and "
                                         "rollback; plain: one ip command per line, as the articles write it.")]
    = Style.batched,
    timeout: TimeoutOpt = TIMEOUT,
) -> None:
    """Compile the lab and print its up script (or --variant down|verify), or write all three into the folder DIR
    with -o DIR (a lab with nodes: into DIR/NODE for each node).

    Example: netgen compile examples/docker0.py > up.sh; netgen compile examples/docker0.py -o out/docker0
    """
    if out is None:
        compiled = _compile(lab, timeout)
        _one_node(compiled, "write them into folders with -o DIR (DIR/NODE/up.sh, down.sh, verify.sh)")
        sys.stdout.write(compiled.script(variant.value, style.value))
        return
    written = _compile_into(lab, out, style.value, timeout)
    _err(f"netgen: wrote {', '.join(written)}")


@app.command("export")
def export_command(
    lab: LabArg,
    out: Annotated[Optional[Path], typer.Option(
        "-o", "--out", metavar="FILE", dir_okay=False,
        help="A file: write the JSON to it (whole or not at all) instead of printing it.")] = None,
    timeout: TimeoutOpt = TIMEOUT,
) -> None:
    """Print the lab as JSON (or write it to the file FILE with -o FILE), which `netgen compile LAB.json` turns into
    the same scripts without running any code.

    Only a lab that compiles is exported; the JSON keeps its source, sha256 and every object's FILE:LINE.
    Example: netgen export examples/docker0.py -o docker0.json; netgen compile docker0.json
    """
    from .labjson import to_json

    text = to_json(_compile(lab, timeout).lab)
    if out is None:
        sys.stdout.write(text)
        return
    _write_file(out, text)


@app.command("schema")
def schema_command() -> None:
    """Print the JSON Schema (draft 2020-12) of the lab format that `netgen export` writes.

    Example: netgen schema > lab.schema.json
    """
    from .labjson import schema

    sys.stdout.write(schema())


@app.command("check")
def check_command(lab: LabArg, timeout: TimeoutOpt = TIMEOUT) -> None:
    """Validate the lab and print a short summary of what it builds.

    Example: netgen check examples/docker0.py
    """
    compiled = _compile(lab, timeout)
    if not compiled.lab.nodes:
        print(f"lab {compiled.plan.lab.name} ({lab}): ok")
        for line in compiled.plan.summary:
            print(f"  {line}")
        return
    print(f"lab {compiled.lab.name} ({lab}): ok, {len(compiled.nodes)} nodes")
    for name, node in compiled.nodes.items():
        print(f"  node {name}:")
        for line in node.plan.summary:
            print(f"    {line}")


OutOpt = Annotated[Optional[Path], typer.Option(
    "-o", "--out", metavar="DIR", file_okay=False,
    help="A folder (made if missing) to compile the scripts into before running one (default: out/LAB_NAME).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Compile and say what would run; run nothing.")]


def _compile_and_run(lab: Path, out: Optional[Path], variant: str, args: list[str], dry_run: bool, timeout: float,
                     inventory: Optional[Path] = None, ansible_args: Optional[list[str]] = None) -> None:
    """Compile the lab into DIR, then run DIR/VARIANT.sh with bash (or, given an inventory, DIR/site.yml with
    ansible-playbook), streaming its output; exit with its code."""
    compiled = _compile(lab, timeout)
    if inventory is not None:
        _on_hosts(compiled, out, variant, args, dry_run, inventory, ansible_args or [])
    if ansible_args:
        _err(f"netgen: {' '.join(ansible_args)}: what follows the lab goes to ansible-playbook, with --inventory FILE")
        raise typer.Exit(2)
    _one_node(compiled, _ON_EACH_NODE)
    directory = _written(compiled, out)
    _run(directory / f"{variant}.sh", args, dry_run, len(compiled.plan.namespaces) + 1)


def _written(compiled, out: Optional[Path]) -> Path:
    """The folder the lab's scripts were written into: DIR, or out/LAB_NAME."""
    from .pipeline import write_scripts

    directory = out or Path("out") / compiled.lab.name
    try:
        write_scripts(compiled, str(directory))
    except OSError as e:
        _cannot_write(f"the scripts into the folder {directory}", directory, e)
    return directory


def _on_hosts(compiled, out: Optional[Path], variant: str, args: list[str], dry_run: bool, inventory: Path,
              ansible_args: list[str]) -> NoReturn:
    """Compile the lab with nodes into DIR, audit it (exit 1 on any difference) and run DIR/site.yml --tags VARIANT
    with ansible-playbook on the hosts of `inventory`, streaming its output; exit with its code."""
    import shlex

    from . import ansible, executor

    if not compiled.lab.nodes:
        _err(f"netgen: --inventory runs each node of a lab on the host named after it, and lab {compiled.lab.name} "
             f"declares no nodes: run it on this machine without --inventory")
        raise typer.Exit(2)
    if args:
        _err(f"netgen: {' '.join(args)} is not for --inventory: the playbook runs each node's {variant}.sh as it is; "
             f"run `{variant}.sh {' '.join(args)}` from DIR/NODE on the node itself")
        raise typer.Exit(2)
    try:
        program = executor.ansible_playbook()
    except executor.ExecutorError as e:
        _err(f"netgen: {e}")
        raise typer.Exit(2) from None
    playbook = _written(compiled, out) / ansible.PLAYBOOK
    _audited(playbook.parent, compiled)
    if not inventory.exists():  # checked once written: it may be DIR/inventory.yml, just compiled
        _err(f"netgen: --inventory {inventory}: no such file or folder (the lab's own is "
             f"{playbook.parent / ansible.INVENTORY})")
        raise typer.Exit(2)
    command = [program, "-i", str(inventory), str(playbook), "--tags", variant, *ansible_args]
    if dry_run:
        _err(f"netgen: would run: {shlex.join(command)}")
        raise typer.Exit(0)
    _err(f"netgen: running {shlex.join(command)}")
    try:
        code = executor.run_playbook(program, command[1:])
    except executor.ExecutorError as e:
        _err(f"netgen: {e}")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def _audited(directory: Path, compiled) -> None:
    """Exit 1, naming each difference, unless the folder of scripts just compiled is what `netgen audit DIR --lab LAB`
    passes: every engine netgen's, every hash as recorded, every lab part data and the lab's own."""
    from . import audit

    findings = audit.directory(directory, audit.folders(directory), compiled, compiled.lab.source)
    if not findings:
        return
    for finding in findings:
        _err(f"netgen audit: {finding}")
    _err(f"netgen: refused: {directory} is not what netgen {__version__} compiles from {compiled.lab.source} "
         f"({len(findings)} difference{'s' if len(findings) != 1 else ''}, above), so ansible-playbook was not run; "
         f"`netgen audit {directory} --lab LAB` names the same")
    raise typer.Exit(1)


def _run(script: Path, args: list[str], dry_run: bool, namespaces: int = 0) -> None:
    from . import executor

    command = " ".join(["bash", str(script), *args])
    if dry_run:
        _err(f"netgen: would run: {command}")
        return
    _err(f"netgen: running {command}")
    try:
        code = executor.run_script(script, args, namespaces)
    except executor.ExecutorError as e:
        _err(f"netgen: {e}")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


InventoryOpt = Annotated[Optional[Path], typer.Option(
    "--inventory", metavar="FILE",
    help="For a lab with nodes: run it on real hosts with Ansible, each node on the host of FILE named after it "
         "(DIR/inventory.yml names each at its address): ansible-playbook -i FILE DIR/site.yml --tags COMMAND. Needs "
         "Ansible: pip install 'netgen[cluster]'.")]
AnsibleArgs = Annotated[Optional[list[str]], typer.Argument(
    metavar="[-- ANSIBLE-PLAYBOOK ARGS...]",
    help="With --inventory: passed to ansible-playbook, e.g. -e keep=true (up: leave the nodes built when another "
         "fails), -u USER, --limit localhost,NODE (the playbook checks the scripts on localhost first).")]
PlanOpt = Annotated[bool, typer.Option(
    "--plan", help="Read the live state and print each command the script would run now (and every conflict, and what "
                   "it would leave as it is); change nothing.")]


@app.command("up")
def up_command(lab: LabArg, ansible_args: AnsibleArgs = None, out: OutOpt = None, dry_run: DryRunOpt = False,
               timeout: TimeoutOpt = TIMEOUT, plan: PlanOpt = False, inventory: InventoryOpt = None) -> None:
    """Compile the lab into the folder out/LAB_NAME (or -o DIR) and build it on this host (as root) by running its
    up.sh; a lab with nodes, on the hosts of --inventory FILE with Ansible.

    With --inventory, a node where up fails has undone its own changes, and down.sh then runs on the nodes where
    this run's up made changes (-- -e keep=true leaves them built). Example: sudo netgen up examples/docker0.py
    --plan; netgen up examples/flannel_vxlan.py --inventory out/flannel_vxlan/inventory.yml
    """
    _compile_and_run(lab, out, "up", ["--plan"] * plan, dry_run, timeout, inventory, ansible_args)


@app.command("down")
def down_command(
    lab: LabArg, ansible_args: AnsibleArgs = None, out: OutOpt = None, dry_run: DryRunOpt = False,
    timeout: TimeoutOpt = TIMEOUT, plan: PlanOpt = False, inventory: InventoryOpt = None,
    force: Annotated[bool, typer.Option(
        "--force", help="Remove every object that has a name from the lab, whoever made it (for a host whose record in "
                        "/run/netgen is gone): it also deletes what someone else made under those names, and ends "
                        "what runs in those namespaces.")] = False,
) -> None:
    """Compile the lab into the folder out/LAB_NAME (or -o DIR) and remove it from this host by running its down.sh;
    a lab with nodes, from the hosts of --inventory FILE with Ansible.

    Only what the lab's up made is removed; anything else carrying a lab name is left and named (see --force).
    Example: sudo netgen down examples/docker0.py
    """
    _compile_and_run(lab, out, "down", ["--force"] * force + ["--plan"] * plan, dry_run, timeout, inventory,
                     ansible_args)


@app.command("verify")
def verify_command(
    lab: LabArg, ansible_args: AnsibleArgs = None, out: OutOpt = None, dry_run: DryRunOpt = False,
    absent: Annotated[bool, typer.Option("--absent", help="Check that nothing of the lab is left.")] = False,
    tap: Annotated[bool, typer.Option("--tap", help="Print the results as TAP.")] = False,
    timeout: TimeoutOpt = TIMEOUT, inventory: InventoryOpt = None,
) -> None:
    """Compile the lab into the folder out/LAB_NAME (or -o DIR) and check the live host against it with its verify.sh;
    exit 0 only if all checks pass. A lab with nodes: its hosts, those of --inventory FILE, with Ansible.

    Example: sudo netgen verify examples/docker0.py --tap
    """
    _compile_and_run(lab, out, "verify", ["--absent"] * absent + ["--tap"] * tap, dry_run, timeout, inventory,
                     ansible_args)


@app.command("run")
def run_command(
    script: Annotated[Path, typer.Argument(metavar="SCRIPT", help="up.sh, down.sh or verify.sh compiled earlier.",
                                           exists=True, dir_okay=False)],
    args: Annotated[Optional[list[str]], typer.Argument(metavar="[-- ARGS...]", help="Passed to the script.")] = None,
    allow_modified: Annotated[bool, typer.Option("--allow-modified",
                                                 help="Run it even if it changed since it was compiled.")] = False,
    dry_run: DryRunOpt = False,
) -> None:
    """Run a script compiled earlier, only if it is byte-identical to what netgen compiled (SHA256SUMS).

    Example: sudo netgen run out/docker0/up.sh
    """
    from . import executor

    if not allow_modified:
        try:
            executor.check_unmodified(script)
        except executor.ExecutorError as e:
            _err(f"netgen: refused: {e}")
            raise typer.Exit(2) from None
    _run(script, args or [], dry_run)


@app.command("try")
def try_command(
    lab: LabArg,
    command: Annotated[Optional[list[str]], typer.Argument(
        metavar="[-- COMMAND...]", help="What to run in the sandbox (default: a shell).")] = None,
    node: Annotated[Optional[str], typer.Option(
        "--node", metavar="NODE", help="For a lab with nodes: the node COMMAND (or the shell) runs in (default: the "
        "lab's first node).")] = None,
    timeout: TimeoutOpt = TIMEOUT,
) -> None:
    """Build the lab in a throwaway sandbox, verify it, run COMMAND (or a shell) there, and remove it all.

    The machine's own network is not touched: the lab lives in new network, mount and PID namespaces that end
    with the command. Example: sudo netgen try examples/docker0.py -- ip netns exec nginx-2 ping -c1 172.17.0.2

    A lab with nodes has each node simulated in the sandbox (network, mount, UTS and PID namespaces of its own, a
    private /run, the node's name as hostname), its underlay device a veth into one shared bridge with the node's
    address. Every node's up.sh runs, then every node's verify.sh (their lines prefixed with the node's name), then
    COMMAND in the node named by --node, then every node's down.sh, whatever happened (a failing up, Ctrl-C). The
    exit code is the first failing up.sh's, else COMMAND's, else the first failing down.sh's. Example: sudo netgen
    try examples/host_gw.py --node node1 -- ping -c1 192.168.60.12
    """
    import tempfile

    from . import executor
    from .pipeline import write_scripts

    compiled = _compile(lab, timeout)
    nodes = compiled.lab.nodes
    names = [n.name for n in nodes]
    if node is not None and node not in names:
        _err(f"netgen: --node {node}: " + (f"the lab's nodes are {', '.join(names)}" if names else
                                            "the lab has no nodes (--node is for a lab that declares them)"))
        raise typer.Exit(2)
    with tempfile.TemporaryDirectory(prefix="netgen-try-") as directory:
        write_scripts(compiled, directory)
        try:
            if nodes:
                code = executor.try_nodes(Path(directory), nodes, node or names[0], command or [])
            else:
                code = executor.try_in_sandbox(Path(directory), command or [])
        except executor.ExecutorError as e:
            _err(f"netgen: {e}")
            raise typer.Exit(2) from None
    raise typer.Exit(code)


@app.command("inspect")
def inspect_command(
    lab: Annotated[Optional[Path], typer.Argument(metavar="[LAB.py|LAB.json]", exists=True, dir_okay=False,
                                                  help="Show only this lab's objects, and which exist.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    timeout: TimeoutOpt = TIMEOUT,
) -> None:
    """The live state: namespaces, interfaces, kind, state, addresses, bridge master and each veth's peer.

    Example: sudo netgen inspect examples/docker0.py
    """
    from . import executor, inventory

    compiled = _compile(lab, timeout) if lab is not None else None
    if compiled is not None:
        _one_node(compiled, "inspect reads this machine; run `netgen inspect` without a lab on a node to see it all")
    model = compiled.plan.lab if compiled is not None else None
    try:
        found = inventory.collect(executor.ip_json, None if model is None else [n.name for n in model.namespaces])
    except (inventory.InventoryError, executor.ExecutorError) as e:
        _err(f"netgen: {e}")
        raise typer.Exit(1) from None
    table = inventory.rows(found) if model is None else inventory.for_lab(found, model)
    sys.stdout.write(inventory.to_json(table) if as_json else inventory.to_table(table))


@app.command("graph")
def graph_command(
    lab: LabArg,
    fmt: Annotated[GraphFormat, typer.Option("--format", "-f", help="dot and mermaid are text; svg and png are "
                                             "drawn with Graphviz and need -o.")] = GraphFormat.dot,
    out: Annotated[Optional[Path], typer.Option(
        "-o", "--out", metavar="FILE", dir_okay=False,
        help="A file: write the graph to it (whole or not at all) instead of printing it.")] = None,
    timeout: TimeoutOpt = TIMEOUT,
) -> None:
    """Draw the topology: namespaces as boxes, bridges, veth pairs as edges with names and addresses (nodes as
    boxes around theirs, and the overlays between them); printed, or written to the file FILE with -o FILE.

    Example: netgen graph examples/docker0.py --format svg -o docker0.svg
    """
    from . import graph

    compiled = _compile(lab, timeout)
    model = compiled.lab if compiled.lab.nodes else compiled.plan.lab
    if fmt in (GraphFormat.dot, GraphFormat.mermaid):
        text = graph.to_dot(model) if fmt is GraphFormat.dot else graph.to_mermaid(model)
        if out is None:
            sys.stdout.write(text)
        else:
            _write_file(out, text)
        return
    if out is None:
        _err(f"netgen: --format {fmt.value} draws a picture: name the file with -o FILE.{fmt.value}")
        raise typer.Exit(2)
    from . import executor

    try:
        picture = executor.render_dot(graph.to_dot(model), fmt.value)
    except executor.ExecutorError as e:
        _err(f"netgen: {e}; {out} was not written")
        raise typer.Exit(1) from None
    _write_file(out, picture)


@app.command("audit")
def audit_command(
    directory: Annotated[Path, typer.Argument(metavar="DIR", exists=True, file_okay=False,
                                              help="A folder written by `netgen compile LAB -o DIR`.")],
    lab: Annotated[Optional[Path], typer.Option(
        "--lab", metavar="LAB.py", exists=True, dir_okay=False,
        help="Also check that each script's lab part is what compiling this lab gives.")] = None,
    timeout: TimeoutOpt = TIMEOUT,
) -> None:
    """Check a folder of compiled scripts: each script's engine is this netgen's, byte for byte, its header names
    the engine's sha256, SHA256SUMS matches, its lab part is data (assignments and the lab's calls with quoted
    words: no function of its own, no other command, no expansion); with --lab, its lab part is the lab's (a lab
    with nodes: each DIR/NODE, and the inventory.yml and site.yml beside them). Then print what up.sh would make,
    per namespace, as the ip commands a person would type. Exit 0 when all holds, 1 naming each script and its first
    differing line.

    Example: netgen audit out/docker0 --lab examples/docker0.py
    """
    from . import audit

    folders = audit.folders(directory)
    if not folders:
        _err(f"netgen: {directory} holds no compiled scripts (no up.sh); compile a lab into it with "
             f"`netgen compile LAB -o {directory}`")
        raise typer.Exit(2)
    compiled = None
    if lab is not None:
        # Compiled under the name the scripts give it, when that is this file: every step's comment names it.
        named = audit.source_named(folders[0] / "up.sh")
        if named is not None and os.path.exists(named) and os.path.samefile(named, lab):
            lab = Path(named)
        compiled = _compile(lab, timeout)
    findings = audit.directory(directory, folders, compiled, str(lab))
    playbook = folders != [directory]  # the node folders of a lab with nodes, and its playbook beside them
    for folder in folders:
        try:
            made = audit.what_up_makes((folder / "up.sh").read_text(errors="replace"))
        except OSError:
            continue
        print(f"# what {folder / 'up.sh'} would make on a host without the lab, per namespace:")
        for ns, commands in made:
            print(f"## {ns}")
            print("\n".join(commands))
    for finding in findings:
        _err(f"netgen audit: {finding}")
    if findings:
        _err(f"netgen audit: {len(findings)} difference{'s' if len(findings) != 1 else ''} (above): do not run "
             f"these scripts before you know why")
        raise typer.Exit(1)
    _err(f"netgen audit: {directory}: engine, header hashes and {len(folders) * 3} scripts"
         + (", inventory.yml and site.yml" if playbook else "") + f" as netgen {__version__} compiles them, each "
         "lab part data"
         + (f", lab parts as {lab} gives them" if lab is not None else ""))


@app.command("engine")
def engine_command(
    sha256: Annotated[bool, typer.Option("--sha256", help="Print only its sha256.")] = False,
) -> None:
    """Print the engine: the text every compiled script ends with (from `# ===== netgen engine` to the end), the
    same in every script of this netgen version. Review it once; pin its sha256 (`netgen audit` checks both).

    Example: netgen engine > engine.sh; netgen engine --sha256
    """
    from . import render

    if sha256:
        print(render.engine_sha256())
        return
    sys.stdout.write(render.engine())
    _err(f"netgen {__version__} engine sha256: {render.engine_sha256()}")


def main() -> None:
    # netgen runs briefly and builds large acyclic structures: the cyclic garbage collector would only rescan
    # them again and again (a third of the time of compiling 10,000 namespaces).
    gc.disable()
    try:
        app(prog_name="netgen")
    except SystemExit as e:
        if not (e.code is None or isinstance(e.code, int)):
            raise
        # Tearing down a large lab's objects one by one takes longer than the kernel takes to free the whole
        # process (0.35 s of a 10,000-namespace compile): flush what was written and leave at once.
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a closed pipe (netgen compile lab.py | head): exit the usual way, which reports it
            raise e from None
        os._exit(e.code or 0)
