"""netgen's benchmark across nodes: a flannel VXLAN mesh (bench/labs/flannel_mesh.py) on simulated nodes, as `netgen
try` runs them (each node its own network, mount, UTS and PID namespaces, joined by one bridge).

    sudo .venv/bin/python bench/nodes.py            # 10 nodes x 20 pods, and the scaling points; 3 repetitions
    sudo .venv/bin/python bench/nodes.py --small --reps 1 --out -   # the smoke test's run

It times the compile of the whole mesh; every node's up.sh side by side, then every verify.sh, then every down.sh
(the wall time of each step over all nodes); and node1's up.sh alone, for 2 nodes x 20 pods, 10 x 20 and 2 x 40:
a node's up should grow with its own pods, and with the other nodes only by their neighbour, fdb and route
entries. It writes a markdown section to bench/results.md (after the one-node tables) unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
sys.path.insert(0, str(BENCH))
from run import NETGEN, settle, timed  # noqa: E402  (bench/run.py: the same timing and idling)

from netgen.model import Loc, Node  # noqa: E402
from netgen.simulation import Simulation  # noqa: E402

LAB = BENCH / "labs" / "flannel_mesh.py"
SECTION = "## Across nodes"


def compiled(directory: Path, nodes: int, pods: int) -> float:
    """Compile the mesh into `directory` (DIR/NODE/...); the wall time."""
    env = {"MESH_NODES": str(nodes), "MESH_PODS": str(pods)}
    return timed([NETGEN, "compile", str(LAB), "-o", str(directory)], env)[0]


def side_by_side(simulation: Simulation, scripts: Path, names: list[str], script: str) -> float:
    """Run `script` on every node at once; the wall time until the last has ended (each must succeed)."""
    start = time.perf_counter()
    runs = [subprocess.Popen([*simulation.enter(n), "bash", str(scripts / n / script)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True) for n in names]
    for name, run in zip(names, runs):
        _, err = run.communicate()
        if run.returncode != 0:
            raise SystemExit(f"bench: {script} failed on {name}:\n{err[-2000:]}")
    return time.perf_counter() - start


def alone(simulation: Simulation, scripts: Path, node: str, script: str) -> float:
    start = time.perf_counter()
    run = subprocess.run([*simulation.enter(node), "bash", str(scripts / node / script)], capture_output=True,
                         text=True)
    if run.returncode != 0:
        raise SystemExit(f"bench: {script} failed on {node}:\n{run.stderr[-2000:]}")
    return time.perf_counter() - start


def _nodes(count: int) -> list[Node]:
    """The mesh's nodes, as bench/labs/flannel_mesh.py makes them."""
    return [Node(f"node{n}", f"192.168.60.{10 + n}/24", "eth0", Loc(str(LAB), 0)) for n in range(1, count + 1)]


def cluster(work: Path, nodes: int, pods: int, reps: int, whole: bool, quiet=settle) -> dict[str, float]:
    """Medians over `reps`: the compile; node1's up.sh alone on a fresh cluster; and, if `whole`, every node's up,
    verify and down side by side. quiet() runs before each timed step (by default: until the machine is idle, as
    the kernel frees a lab's namespaces in the background)."""
    times: dict[str, list[float]] = {}
    scripts = work / f"mesh-{nodes}x{pods}"
    for _ in range(reps):
        times.setdefault("compile", []).append(compiled(scripts, nodes, pods))
        with Simulation(_nodes(nodes)) as simulation:
            quiet()
            times.setdefault("node1 up", []).append(alone(simulation, scripts, "node1", "up.sh"))
            if not whole:
                continue
            alone(simulation, scripts, "node1", "down.sh")
            names = [f"node{n}" for n in range(1, nodes + 1)]
            for step in ("up", "verify", "down"):
                quiet()
                times.setdefault(step, []).append(side_by_side(simulation, scripts, names, f"{step}.sh"))
    return {k: statistics.median(v) for k, v in times.items()}


def section(reps: int, nodes: int, pods: int, mesh: dict[str, float], points: dict[tuple[int, int], float]) -> str:
    lines = [SECTION, "",
             f"Medians of {reps} runs on this machine (2 cores), {time.strftime('%Y-%m-%d')}: a flannel VXLAN mesh "
             "(bench/labs/flannel_mesh.py) on simulated nodes (`bench/nodes.py`). Side by side: every node's script "
             "started at once, timed until the last has ended.", "",
             "| lab | compile | up, all nodes | verify, all nodes | down, all nodes |", "|---|---|---|---|---|",
             f"| {nodes} nodes x {pods} pods ({nodes * pods} pods; on each node {nodes - 1} neighbour, fdb and route "
             f"entries) | {mesh['compile']:.2f} s "
             f"| {mesh['up']:.2f} s | {mesh['verify']:.2f} s | {mesh['down']:.2f} s |", "",
             "node1's up.sh alone, on a fresh cluster: it grows with the node's own pods, and with the other nodes "
             "only by their entries.", "", "| nodes x pods | node1 up |", "|---|---|"]
    lines += [f"| {n} x {p} | {t:.2f} s |" for (n, p), t in points.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", default=str(BENCH / "results.md"), help="file to put the section in, or -")
    parser.add_argument("--small", action="store_true", help="3 nodes x 2 pods, 2 x 2 and 2 x 4, without waiting for "
                        "the machine to idle between steps: the smoke test's")
    args = parser.parse_args()
    big, pods = (3, 2) if args.small else (10, 20)
    quiet = (lambda: None) if args.small else settle  # the smoke test's timings mean nothing: it only runs
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (it builds labs in simulated nodes)")
    with tempfile.TemporaryDirectory(prefix="netgen-bench-nodes-") as work:
        mesh = cluster(Path(work), big, pods, args.reps, True, quiet)
        points = {(2, pods): cluster(Path(work), 2, pods, args.reps, False, quiet)["node1 up"],
                  (big, pods): mesh["node1 up"],
                  (2, 2 * pods): cluster(Path(work), 2, 2 * pods, args.reps, False, quiet)["node1 up"]}
    text = section(args.reps, big, pods, mesh, points)
    if args.out == "-":
        sys.stdout.write(text)
        return
    out = Path(args.out)
    old = out.read_text() if out.exists() else ""
    kept = re.split(rf"^{re.escape(SECTION)}$", old, flags=re.M)[0].rstrip("\n")
    out.write_text((kept + "\n\n" if kept else "") + text)
    sys.stdout.write(text)


if __name__ == "__main__":
    main()
