"""netgen's benchmark: the same labs built by netgen's batched scripts, by plain one-command-per-line scripts
(`netgen compile --style plain`) and by Mininet when it is installed, side by side in one run, each in a sandbox.

    sudo python bench/run.py                       # star and chain at N = 100, 500, 1000, 3 repetitions
    sudo python bench/run.py --sizes 500 --reps 5  # one point
    sudo python bench/run.py --sizes 500 --shapes star --reps 5 --before d919426   # and netgen at d919426 beside it
    python bench/run.py --sizes 3 --reps 1 --out - # the smoke test's run

It prints a markdown table of medians with ratios to the baselines, and writes it to bench/results.md unless
--out says otherwise. Timings include starting bash and entering the sandbox (a few ms), the same for every tool.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
from sandbox import Sandbox  # noqa: E402  (the tests' sandbox: unshare --net --mount, private /run)

SHAPES = {"star": ("STAR_N", BENCH / "labs" / "star.py"), "chain": ("CHAIN_N", BENCH / "labs" / "chain.py")}
MININET = BENCH / "mininet_star.py"
# netgen as installed beside the Python that runs the benchmark, not through a version manager's shim on PATH
# (pyenv's starts a bash and `pyenv exec`: 0.15 s per run here, which no user of a pip install pays)
NETGEN = shutil.which("netgen", path=os.path.dirname(sys.executable)) or "netgen"
# ... and with its modules' bytecode cached, as `pip install .` leaves them: an environment that sets
# PYTHONDONTWRITEBYTECODE (this workplace does) has an editable install compile them from source each run (0.1 s)
NETGEN_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str], env: dict | None = None) -> tuple[float, int]:
    """(wall seconds, peak resident memory in MB) of one run of argv, which must succeed."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env={**NETGEN_ENV, **(env or {})}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed:\n{proc.stderr.read().decode()}")
    return elapsed, usage.ru_maxrss // 1024


def in_sandbox(box: Sandbox, command: str) -> float:
    start = time.perf_counter()
    result = box.run(command, timeout=1800)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"bench: `{command}` failed in the sandbox:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return elapsed


def busy(interval: float = 0.5) -> float:
    """The share of the machine's CPU time spent busy over `interval` seconds."""
    def sample() -> tuple[int, int]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # all, idle + iowait
    total, idle = sample()
    time.sleep(interval)
    total2, idle2 = sample()
    return 1 - (idle2 - idle) / max(total2 - total, 1)


SETTLE = 20.0  # seconds settle() waits at most (--settle)


def settle(limit: float | None = None) -> None:
    """Wait until the machine is idle: the kernel frees a deleted lab's namespaces in the background, and that
    work must not land on the next tool's timing."""
    deadline = time.monotonic() + (SETTLE if limit is None else limit)
    while busy() > 0.1 and time.monotonic() < deadline:
        pass


def lifecycle(box: Sandbox, scripts: Path, verify: bool = True) -> dict[str, float]:
    """up, verify and down of compiled scripts, each started on an idle machine; down must leave the sandbox with
    no namespace and no veth."""
    steps = ("up", "verify", "down") if verify else ("up", "down")
    times = {}
    for step in steps:
        settle()
        times[step] = in_sandbox(box, f"bash {scripts}/{step}.sh")
    left = box.run("ip netns list; ip -br link show type veth").stdout.strip()
    if left:
        raise SystemExit(f"bench: {scripts}/down.sh left:\n{left}")
    return times


def mininet_python() -> str | None:
    """The python that runs `mn` (Debian's package installs Mininet for the system python3), if it has Mininet."""
    mn = shutil.which("mn")
    if mn is None:
        return None
    python = Path(mn).read_text(errors="replace").splitlines()[0].removeprefix("#!").split()[-1]
    ok = subprocess.run([python, "-c", "import mininet"], capture_output=True).returncode == 0
    return python if ok else None


def mininet(box: Sandbox, n: int) -> dict[str, float]:
    settle()
    out = box.run(f"{mininet_python()} {MININET} {n}", timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"bench: Mininet failed:\n{out.stderr[-2000:]}")
    start, stop = map(float, out.stdout.split()[-2:])
    return {"up": start, "down": stop}


def median(values: list[float]) -> float:
    return statistics.median(values)


def netgen_at(rev: str, where: Path) -> list[str]:
    """The command that runs netgen as it was at git revision `rev` of this repository, laid out in `where` as an
    install would lay it out (the package `netgen` is compiler/, with templates/ inside it), with this Python."""
    tree = where / "tree"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(BENCH.parent), "archive", rev], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive.stdout, check=True)
    package = where / "site" / "netgen"
    shutil.copytree(tree / "compiler", package)
    shutil.copytree(tree / "templates", package / "templates")
    return ["env", f"PYTHONPATH={where / 'site'}", sys.executable, "-c", "from netgen.cli import main; main()"]


def measure(shape: str, n: int, reps: int, work: Path, with_mininet: bool, slow_up_to: int,
            before: list[str] | None = None) -> dict:
    var, lab = SHAPES[shape]
    env = {var: str(n)}
    row: dict = {"compile": [], "rss": [], "netgen": {}, "plain": {}, "mininet": {}, "before": {}}
    tools = [("netgen", work / "batched"), ("plain", work / "plain")]
    if before:
        timed([*before, "compile", str(lab), "-o", str(work / "before")], env)
        tools.insert(1, ("before", work / "before"))
    for style in ("batched", "plain"):
        t, rss = timed([NETGEN, "compile", str(lab), "--style", style, "-o", str(work / style)], env)
        if style == "batched":
            row["compile"].append(t)
            row["rss"].append(rss)
    for _ in range(reps - 1):
        t, rss = timed([NETGEN, "compile", str(lab), "-o", str(work / "batched")], env)
        row["compile"].append(t)
        row["rss"].append(rss)
    box = Sandbox()
    try:
        for _ in range(reps):  # side by side: each repetition runs every tool once
            for tool, scripts in tools:
                for step, t in lifecycle(box, scripts, verify=tool != "plain" or n <= slow_up_to).items():
                    row[tool].setdefault(step, []).append(t)
            if with_mininet and shape == "star" and n <= slow_up_to:
                for step, t in mininet(box, n).items():
                    row["mininet"].setdefault(step, []).append(t)
    finally:
        box.close()
    return row


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def fmt(value: float | None) -> str:
    return f"{value:.2f} s" if value is not None else "-"


def table(results: dict, reps: int, note: str) -> str:
    lines = [f"Medians of {reps} runs on this machine ({os.cpu_count()} cores), {time.strftime('%Y-%m-%d')}.",
             note, "",
             "| lab | N | compile | netgen up | verify | down | plain up | verify | down | Mininet start | stop "
             "| up vs plain | up vs Mininet | down vs plain | verify vs up |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for (shape, n), row in results.items():
        m = {tool: {step: median(v) for step, v in row[tool].items()}
             for tool in ("netgen", "plain", "mininet", "before")}
        g, p, mn = m["netgen"], m["plain"], m["mininet"]
        lines.append(
            f"| {shape} | {n} | {fmt(median(row['compile']))}, {max(row['rss'])} MB | {fmt(g['up'])} "
            f"| {fmt(g['verify'])} | {fmt(g['down'])} | {fmt(p['up'])} | {fmt(p.get('verify'))} | {fmt(p['down'])} "
            f"| {fmt(mn.get('up'))} | {fmt(mn.get('down'))} | {ratio(g['up'], p['up'])} "
            f"| {ratio(g['up'], mn.get('up'))} | {ratio(g['down'], p['down'])} | {ratio(g['verify'], g['up'])} |")
    befores = [(key, m) for key, m in ((key, {step: median(v) for step, v in row["before"].items()})
                                       for key, row in results.items()) if m]
    if befores:
        lines += ["", f"Beside it, side by side in the same runs, netgen at {BEFORE_REV[0]}:", "",
                  "| lab | N | up before | up now | now / before | down before | down now | verify before "
                  "| verify now | up vs plain, before | up vs plain, now |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for (shape, n), b in befores:
            g = {step: median(v) for step, v in results[(shape, n)]["netgen"].items()}
            p = {step: median(v) for step, v in results[(shape, n)]["plain"].items()}
            lines.append(f"| {shape} | {n} | {fmt(b['up'])} | {fmt(g['up'])} | {ratio(g['up'], b['up'])} "
                         f"| {fmt(b['down'])} | {fmt(g['down'])} | {fmt(b['verify'])} | {fmt(g['verify'])} "
                         f"| {ratio(b['up'], p['up'])} | {ratio(g['up'], p['up'])} |")
    return "\n".join(lines) + "\n"


BEFORE_REV: list[str] = []  # the revision --before names, for the table


def startup(reps: int, work: Path) -> str:
    """The 10,000-namespace compile and `netgen --version`, the issue's other two targets."""
    compiles = [timed([NETGEN, "compile", str(SHAPES["star"][1]), "-o", str(work / "big")],
                      {"STAR_N": "10000"}) for _ in range(reps)]
    version = [timed([NETGEN, "--version"])[0] for _ in range(reps)]
    return (f"\nCompile of a 10,000-namespace star: {median([c[0] for c in compiles]):.2f} s, "
            f"{max(c[1] for c in compiles)} MB peak. `netgen --version`: {median(version):.2f} s.\n")


def main() -> None:
    global SETTLE
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,500,1000", help="comma-separated N (default 100,500,1000)")
    parser.add_argument("--shapes", default="star,chain", help="star, chain or both (default)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of every measurement (default 3)")
    parser.add_argument("--out", default=str(BENCH / "results.md"), help="where to write the table; - for none")
    parser.add_argument("--no-big", action="store_true", help="skip the 10,000-namespace compile")
    parser.add_argument("--before", metavar="REV", help="also run the labs as netgen at git revision REV compiles "
                        "them, side by side with today's, and compare")
    parser.add_argument("--slow-up-to", type=int, default=500, metavar="N",
                        help="run the plain verify (one ip per check) and Mininet only up to this N (default 500): "
                        "above it they take minutes per repetition and no target depends on them")
    parser.add_argument("--settle", type=float, default=SETTLE, metavar="SECONDS",
                        help=f"wait at most this long before each step for the machine to be idle (default {SETTLE:g}; "
                        "the smoke test's 0: its timings mean nothing, and a shared machine is never idle)")
    args = parser.parse_args()
    SETTLE = args.settle
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (it builds labs in sandboxes)")
    with_mininet = mininet_python() is not None
    note = ("Mininet 2.3 (LinuxBridge, no controller) ran the star." if with_mininet else
            "Mininet is not installed (apt-get install mininet bridge-utils): its columns are empty.")
    note += f" The plain verify and Mininet ran up to N = {args.slow_up_to} (--slow-up-to)."
    results = {}
    with tempfile.TemporaryDirectory(prefix="netgen-bench-") as tmp:
        before = None
        if args.before:
            BEFORE_REV.append(args.before)
            before = netgen_at(args.before, Path(tmp) / "before")
        for shape in args.shapes.split(","):
            for n in map(int, args.sizes.split(",")):
                print(f"bench: {shape} N={n} ...", file=sys.stderr, flush=True)
                work = Path(tmp) / f"{shape}-{n}"
                results[(shape, n)] = measure(shape, n, args.reps, work, with_mininet, args.slow_up_to, before)
        text = table(results, args.reps, note)
        if not args.no_big:
            text += startup(args.reps, Path(tmp))
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
