"""What the tests share, in one module that no test is in: the repository and its examples, the machine's own state,
whether labs can be built here, and the helpers more than one test file uses. Test files import from here (fixtures
come from conftest.py); no test file imports another. The code blocks of README.md and docs/ are in readme.py,
sandboxes in sandbox.py and simulated nodes in nodes.py, all beside this file."""

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from netgen import inventory
from netgen.inventory import Link, Row
from netgen.loader import load
from netgen.model import HOST, Lab
from netgen.pipeline import CompileError, compile_lab

REPO = Path(__file__).resolve().parent.parent


def _spans_nodes(name: str) -> bool:
    return bool(load(str(REPO / "examples" / f"{name}.py")).nodes)


_ALL_EXAMPLES = sorted(p.stem for p in (REPO / "examples").glob("*.py"))
EXAMPLES = [e for e in _ALL_EXAMPLES if not _spans_nodes(e)]  # one machine: out/NAME/{up,down,verify}.sh
NODE_EXAMPLES = [e for e in _ALL_EXAMPLES if _spans_nodes(e)]  # over nodes: out/NAME/NODE/{up,down,verify}.sh


# Hypothesis profiles, which conftest.py registers: "ci" gives each test its full count of examples (CI runs it: .ci/run
# sets HYPOTHESIS_PROFILE=ci, and CI=true selects it too), "dev", the default, a tenth of that, so a run at the desk
# is quick. A test says max_examples=examples(FULL).
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")


def examples(full: int) -> int:
    return full if PROFILE == "ci" else max(2, full // 10)


def _machine_state() -> tuple[str, str]:
    def names(cmd):
        return subprocess.run(cmd, capture_output=True, text=True).stdout

    links = "\n".join(line.split(":")[1].strip() for line in names(["ip", "-o", "link", "show"]).splitlines())
    return names(["ip", "netns", "list"]), links


def _can_sandbox() -> str | None:
    if os.geteuid() != 0:
        return "live tests need root (they create network namespaces inside an unshare sandbox)"
    for tool in ("unshare", "nsenter", "ip"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            return f"live tests need {tool}"
    return None


# --- running the committed scripts (from tests/live/test_live.py) --------------------------------------------------

def script(example: str, variant: str) -> str:
    return f"bash {REPO}/out/{example}/{variant}.sh"


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def wait_for_web(sandbox, ns: str) -> None:
    """The examples' web service (`nginx.service("web", ...)`, serving "hello from NS") answers on port 80 of `ns`."""
    for _ in range(50):
        if sandbox.run(f"ip netns exec {ns} bash -c 'exec 3<>/dev/tcp/127.0.0.1/80'").returncode == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"the web service in {ns} does not answer")


# An `ip` first on PATH that lets the first @K@ lines of up's batches run, then fails the next like iproute2 does.
# It counts lines across batches, so up runs with NETGEN_JOBS=1: one batch at a time, in the plan's order.
FAILING_IP = r"""
mkdir -p /run/failing-ip && cat > /run/failing-ip/ip <<'WRAPPER'
#!/bin/bash
real=$(PATH=/usr/sbin:/sbin:/usr/bin command -v ip)
args=("$@") file=
for ((i = 0; i < ${#args[@]}; i++)); do [[ ${args[i]} == -batch ]] && file=${args[i+1]}; done
if [[ -n $file && $file != - ]]; then
  count=$(cat /run/failing-ip/count 2>/dev/null || echo 0)
  lines=$(wc -l < "$file")
  if (( count + lines > @K@ )); then
    keep=$((@K@ - count)); echo $((@K@ + 1)) > /run/failing-ip/count
    head -n "$keep" "$file" > /run/failing-ip/part; tail -n 1 /run/failing-ip/part > /run/failing-ip/last
    (( keep == 0 )) || "$real" "${args[@]/$file//run/failing-ip/part}" || exit 1
    echo "RTNETLINK answers: Operation not permitted (injected)" >&2
    echo "Command failed $file:$((keep + 1))" >&2; exit 1
  fi
  echo $((count + lines)) > /run/failing-ip/count
fi
exec "$real" "$@"
WRAPPER
chmod +x /run/failing-ip/ip; rm -f /run/failing-ip/count
"""


def ip_changes(sandbox, example: str) -> int:
    """How many lines of `ip -batch` and `bridge -batch` the last up of `example` ran, as its log shows them: its
    changes and the marks it puts on what it makes, but not its sysctls, its nftables table or its services."""
    log = sandbox.run(f"cat /run/netgen/{example}.log").stdout.splitlines()
    last = [line for line in log if " up.sh[" in line]
    pid = last[-1].split(" up.sh[")[1].split("]")[0]
    run = [line.split(": ", 1)[1] for line in last if f" up.sh[{pid}] " in line]
    return sum((cmd.startswith(("ip ", "bridge ")) and not cmd.startswith("ip netns exec ")
                and " neigh flush " not in cmd) for cmd in run)


# --- bad labs and good ones, from their text (from tests/unit/test_validate.py) -------------------------------------

HEADER = 'from netgen import Lab\nlab = Lab("t")\nns = lab.netns("ns1")\n'  # lines 1-3: a body starts at line 4


def write_lab(tmp_path, source: str) -> str:
    path = tmp_path / "lab.py"
    path.write_text(source, encoding="utf-8")
    return str(path)


def errors_of(tmp_path, source: str):
    path = write_lab(tmp_path, source)
    with pytest.raises(CompileError) as e:
        compile_lab(path)
    return path, e.value.diagnostics


def assert_reports(tmp_path, source: str, line: int, *fragments: str) -> None:
    """Compiling `source` fails with a message at `line` holding every fragment, and with nothing on other lines."""
    path, diagnostics = errors_of(tmp_path, source)
    texts = [str(d) for d in diagnostics]
    prefix = f"{path}:{line}: "
    assert any(t.startswith(prefix) and all(f in t for f in fragments) for t in texts), texts
    assert all(t.startswith(prefix) for t in texts), texts


def compiles(tmp_path, source: str):
    try:
        return compile_lab(write_lab(tmp_path, source))
    except CompileError as e:
        pytest.fail(f"expected the lab to compile, got:\n{e}")


# One namespace and one host bridge: up, verify and down each have counts of one to say (tests/golden/test_wording.py).
ONES = 'from netgen import Lab\nlab = Lab("ones")\nlab.netns("a")\nlab.host.bridge("br0")\n'



# --- what inventory reads (tests/unit/test_inventory.py and its live part) ------------------------------------------

def docker0_lab() -> Lab:
    return load(str(REPO / "examples" / "docker0.py"))


def link(inv: inventory.Inventory, ns: str, name: str) -> Link:
    found = inv.namespace(ns).link(name)
    assert found is not None, f"{ns}/{name} not in the inventory"
    return found


def statuses(table: list[Row]) -> list[tuple[str, str | None, str]]:
    return [(row.ns, row.interface, row.status) for row in table]


DOCKER0_OBJECTS = [(HOST, "docker0"), (HOST, "veth-nginx-1"), (HOST, "veth-nginx-2"),
                   ("nginx-1", "eth0"), ("nginx-2", "eth0")]


# --- the seed's part two on simulated nodes (from tests/live/test_part_two.py, read by the matrix too) ---------

@dataclass(frozen=True)
class PartTwo:
    client: str  # a namespace on node1
    server: str  # a namespace on node2, serving "hello from SERVER" on port 80
    address: str  # the server's
    underlay: str  # tcpdump's filter for the traffic between the nodes
    carried: str  # how tcpdump shows it there: the text of a line of it
    removed: str  # run on node2: what it deletes behind the lab's back
    named: tuple[str, ...]  # what node2's verify then says


CASES = {
    "host_gw": PartTwo(
        "pod-1-1", "pod-2-1", "10.244.2.2", "tcp port 80", "IP 10.244.1.2.",
        "ip route del 10.244.1.0/24 via 192.168.60.11 dev eth0",
        ("FAIL host route 10.244.1.0/24: want via 192.168.60.11 dev eth0, have absent",)),
    "flannel_vxlan": PartTwo(
        "pod-1-1", "pod-2-1", "10.244.2.2", "udp port 8472", "192.168.60.11.",
        "bridge fdb del 02:01:c0:a8:3c:0b dev flannel.1 dst 192.168.60.11 self && "
        "ip neigh del 10.244.1.0 dev flannel.1 && ip route del 10.244.1.0/24",
        ("FAIL host fdb flannel.1/02:01:c0:a8:3c:0b/192.168.60.11: want self permanent, have absent",
         "FAIL host neighbour flannel.1/10.244.1.0: want lladdr 02:01:c0:a8:3c:0b nud permanent, have absent",
         "FAIL host route 10.244.1.0/24: want via 10.244.1.0 dev flannel.1, have absent")),
    "overlay_l2": PartTwo(
        "c1-1", "c2-1", "10.0.1.4", "udp port 4789", "192.168.60.11.",
        "bridge fdb del 00:00:00:00:00:00 dev vx0 dst 192.168.60.11 self",
        ("FAIL host fdb vx0/00:00:00:00:00:00/192.168.60.11: want self permanent, have absent",)),
}
