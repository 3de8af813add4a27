"""Issue 18, a way to try it on one machine: nodes simulated as namespaces of their own, joined by a bridge, for
`netgen try` and the tests (tests/nodes.py). Most scripts here are written by hand, one line for each behaviour
(a failing up, a slow one); the examples with nodes are tried at the end."""

import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO, _can_sandbox, _machine_state, ok, script
from nodes import Cluster
from typer.testing import CliRunner

from netgen.cli import app
from netgen.model import Loc, Node

HERE = Loc("test_simulation.py", 1)
NODES = [Node("node1", "192.168.60.11/24", "eth0", HERE), Node("node2", "192.168.60.12/24", "eth0", HERE),
         Node("node3", "192.168.60.13/24", "ens3", HERE, mtu=9000)]


@pytest.fixture
def root():
    reason = _can_sandbox()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason + " (and CI must run them)")
        pytest.skip(reason)


@pytest.fixture
def cluster(root):
    with Cluster(NODES) as running:
        yield running


@pytest.mark.live
def test_nodes_come_up_with_their_underlay_and_reach_each_other(cluster):
    for node in NODES:
        links = ok(cluster.run(node.name, "ip -br link; ip -br -4 addr show dev " + node.dev)).stdout
        assert links.split("\n")[0].split()[:2] == ["lo", "UNKNOWN"]  # up (lo has no carrier to report)
        assert f"{node.dev}@" in links and " UP " in links.split(f"{node.dev}@")[1].split("\n")[0]
        assert node.underlay in links
        assert ok(cluster.run(node.name, f"cat /sys/class/net/{node.dev}/mtu")).stdout == f"{node.mtu}\n"
        for other in NODES:
            ok(cluster.run(node.name, f"ping -c1 -W2 {other.underlay.split('/')[0]}"))
    ports = ok(cluster.run_outer("ip -br link show master underlay")).stdout
    assert [line.split("@")[0] for line in ports.splitlines()] == ["ul0", "ul1", "ul2"]


@pytest.mark.live
def test_a_node_is_a_machine_of_its_own(cluster, tmp_path):
    ok(cluster.run("node1", "ip netns add pod1 && mkdir -m 0700 /run/netgen && touch /run/netgen/mine && "
                            "(setsid sleep 600 >/dev/null 2>&1 &)"))
    assert ok(cluster.run("node1", "ip netns list; ls /run/netgen; pgrep -fx 'sleep 600'")).stdout.split()[:2] \
        == ["pod1", "mine"]
    # neither another node nor the outer sandbox sees its namespaces or its /run; another node, its processes
    assert ok(cluster.run("node2", "ip netns list; ls /run; pgrep -fx 'sleep 600' || true")).stdout.split() == \
        ["hosts", "netns"]
    assert sorted(ok(cluster.run_outer("ip netns list | cut -d' ' -f1; ls /run")).stdout.split()) == \
        ["netns", "node1", "node2", "node3"]
    # a script run there sees the node's name, and each node its own links in /sys
    (tmp_path / "who.sh").write_text('echo "$(hostname) $(uname -n) $(ls /sys/class/net | tr "\\n" " ")"\n')
    assert ok(cluster.run("node3", f"bash {tmp_path}/who.sh")).stdout == "node3 node3 ens3 lo \n"
    assert ok(cluster.run("node3", "getent hosts node3")).stdout.split() == ["127.0.1.1", "node3"]
    assert "node3" not in open("/etc/hosts").read()


@pytest.mark.live
def test_snapshot_is_the_whole_node_and_leaves_out_what_traffic_teaches(cluster):
    before = cluster.settled_snapshot("node1")
    assert set(before) == {"host"}
    assert {"link", "addr", "route4", "route6", "neigh", "fdb", "sysctl", "nft"} <= set(before["host"])
    assert before["host"]["sysctl"]["net.ipv4.ip_forward"] in ("0", "1")
    ok(cluster.run("node1", "ping -c1 -W2 192.168.60.12"))  # a neighbour learned: the same node
    assert cluster.snapshot("node1") == before
    made = ("ip netns add pod && ip link add br0 type bridge && ip link add vx0 type vxlan id 1 dstport 8472 "
            "local 192.168.60.11 dev eth0 nolearning && bridge fdb append 00:00:00:00:00:00 dev vx0 dst 192.168.60.12 "
            "self permanent && ip neigh replace 10.244.2.0 lladdr 02:00:00:00:00:02 dev eth0 nud permanent && "
            "sysctl -qw net.ipv4.ip_forward=1 && nft add table ip nat")
    ok(cluster.run("node1", made))
    after = cluster.snapshot("node1")
    assert set(after) == {"host", "pod"}
    for part in ("link", "neigh", "fdb", "sysctl", "nft"):
        assert after["host"][part] != before["host"][part], part
    ok(cluster.run("node1", "ip netns del pod && ip link del br0 && ip link del vx0 && ip neigh del 10.244.2.0 dev eth0"
                            f" && sysctl -qw net.ipv4.ip_forward={before['host']['sysctl']['net.ipv4.ip_forward']}"
                            " && nft delete table ip nat"))
    assert cluster.settled_snapshot("node1") == before


@pytest.mark.live
def test_closing_leaves_nothing_on_the_machine(root):
    before, run_before = _machine_state(), sorted(os.listdir("/run"))
    cluster = Cluster(NODES)
    ok(cluster.run("node2", "ip netns add pod && (ip netns exec pod setsid sleep 6001 >/dev/null 2>&1 &)"))
    ok(cluster.run("node1", "(setsid sleep 6001 >/dev/null 2>&1 &)"))
    assert len(subprocess.run(["pgrep", "-f", "^sleep 6001"], capture_output=True, text=True).stdout.split()) == 2
    outer = cluster.simulation.outer
    cluster.close()
    assert subprocess.run(["pgrep", "-f", "^sleep 6001"]).returncode == 1  # every process of it has ended
    assert not os.path.exists(f"/proc/{outer}")
    assert _machine_state() == before and sorted(os.listdir("/run")) == run_before


@pytest.mark.live
def test_a_compiled_lab_runs_on_two_nodes_at_once_and_down_leaves_each_as_it_was(cluster):
    """The same lab, names and all, on two nodes side by side: each has its own /run/netgen (record and lock) and
    its own processes (the lab's services), as two machines would."""
    before = {node: cluster.settled_snapshot(node) for node in ("node1", "node2")}
    for variant in ("up", "verify"):
        running = [cluster.start(node, script("docker0", variant), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for node in before]
        for proc in running:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, out + err
    assert ok(cluster.run("node2", "ip netns exec nginx-2 curl -s 172.17.0.2")).stdout == "hello from nginx-1\n"
    for node in before:
        assert len(ok(cluster.run(node, "pgrep -f 'hello from nginx-'")).stdout.split()) == 2
        ok(cluster.run(node, script("docker0", "down")))
    for node in before:
        assert cluster.settled_snapshot(node) == before[node]


@pytest.mark.live
def test_a_node_that_cannot_start_is_a_message(root):
    from netgen.simulation import SimulationError

    with pytest.raises(SimulationError, match="could not start .*any valid prefix is expected rather than "
                                              '"192.168.60.300/24"'):
        Cluster([NODES[0], Node("node2", "192.168.60.300/24", "eth0", HERE)])


# netgen try for a lab with nodes, on scripts written by hand, in their own process as a user runs it: each node's
# up.sh makes a namespace, its down.sh removes it; both log to LOG beside them, which outlives the simulation.
TRY = ("import sys; from pathlib import Path; from netgen.executor import try_nodes; from netgen.model import Loc, "
       f"Node; sys.exit(try_nodes(Path(sys.argv[1]), {NODES!r}, sys.argv[2], sys.argv[3:]))")


def scripts(tmp_path, **extra):
    """Per-node scripts in tmp_path/NODE/; extra: NODE_SCRIPT=bash lines added at the start of that script."""
    for node in NODES:
        (tmp_path / node.name).mkdir()
        lines = {
            "up": f'echo "up on $(hostname)"; echo "$(hostname) up" >>{tmp_path}/LOG; ip netns add pod',
            "verify": "ip netns list",
            "down": f'echo "$(hostname) down" >>{tmp_path}/LOG; ip netns del pod; echo "down says this on stderr" >&2',
        }
        for variant, text in lines.items():
            before = extra.get(f"{node.name}_{variant}", "")
            (tmp_path / node.name / f"{variant}.sh").write_text(f"{before}\n{text}\n")
    return tmp_path


def try_nodes(tmp_path, node: str, *command: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", TRY, str(tmp_path), node, *command], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path, **popen)


def log(tmp_path) -> set[str]:
    return set((tmp_path / "LOG").read_text().splitlines())


DOWN_ON_ALL = {"node1 down", "node2 down", "node3 down"}


@pytest.mark.live
def test_try_runs_up_verify_the_command_in_its_node_and_down_everywhere(root, tmp_path):
    before = _machine_state()
    proc = try_nodes(scripts(tmp_path), "node2", "bash", "-c", "echo $(hostname) in $PWD; "
                     "ping -c1 -W2 192.168.60.13 | grep -o '1 received'; exit 7")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 7, err
    lines = out.splitlines()
    assert lines[0] == ("netgen try: building the lab on 3 simulated nodes: node1 (192.168.60.11/24 on eth0), node2 "
                        "(192.168.60.12/24 on eth0), node3 (192.168.60.13/24 on ens3)")
    assert sorted(lines[1:4]) == ["node1: up on node1", "node2: up on node2", "node3: up on node3"]  # side by side
    assert lines[4] == "netgen try: verifying it" and sorted(lines[5:8]) == ["node1: pod", "node2: pod", "node3: pod"]
    assert lines[8:] == ["netgen try: running bash -c echo $(hostname) in $PWD; ping -c1 -W2 192.168.60.13 | grep -o "
                         "'1 received'; exit 7 in node2", f"node2 in {tmp_path}", "1 received",
                         "netgen try: removing the lab"]
    assert sorted(err.splitlines()) == [f"{n.name}: down says this on stderr" for n in NODES]
    assert log(tmp_path) == {"node1 up", "node2 up", "node3 up", *DOWN_ON_ALL}
    assert _machine_state() == before


@pytest.mark.live
def test_try_exit_code_is_the_first_failing_up_and_down_still_runs_on_every_node(root, tmp_path):
    proc = try_nodes(scripts(tmp_path, node2_up="echo cannot >&2; exit 4", node3_up="exit 5"), "node1", "true")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4
    assert "node2: cannot" in err.splitlines()
    assert "verifying" not in out and "running" not in out and "netgen try: removing the lab" in out
    assert log(tmp_path) == {"node1 up", *DOWN_ON_ALL}


@pytest.mark.live
def test_try_exit_code_is_a_failing_down_when_all_else_passed(root, tmp_path):
    proc = try_nodes(scripts(tmp_path, node3_down="exit 6"), "node1", "true")
    proc.communicate(timeout=60)
    assert proc.returncode == 6
    assert log(tmp_path) == {"node1 up", "node2 up", "node3 up", "node1 down", "node2 down"}


def _interrupt(proc, pattern: str, count: int = 1) -> tuple[str, str]:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) once `count` processes match `pattern`."""
    deadline = time.monotonic() + 30
    while len(subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()) < count:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.2)  # the scripts' traps are set before they start sleep; the shell's wait, just after
    os.killpg(proc.pid, signal.SIGINT)
    return proc.communicate(timeout=60)


@pytest.mark.live
def test_ctrl_c_during_the_command_removes_the_lab_from_every_node_and_leaves_nothing(root, tmp_path):
    before, run_before = _machine_state(), sorted(os.listdir("/run"))
    proc = try_nodes(scripts(tmp_path), "node3", "sleep", "6002", start_new_session=True)
    out, err = _interrupt(proc, "^sleep 6002")
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "netgen try: removing the lab" in out
    assert log(tmp_path) == {"node1 up", "node2 up", "node3 up", *DOWN_ON_ALL}
    assert subprocess.run(["pgrep", "-f", "^sleep 6002"]).returncode == 1
    assert _machine_state() == before and sorted(os.listdir("/run")) == run_before


@pytest.mark.live
def test_ctrl_c_during_up_reaches_every_up_sh_and_down_still_runs(root, tmp_path):
    slow = f"trap 'echo \"$(hostname) rolled back\" >>{tmp_path}/LOG; exit 130' INT; sleep 6003 & wait"
    proc = try_nodes(scripts(tmp_path, node1_up=slow, node2_up=slow), "node1", "true", start_new_session=True)
    out, err = _interrupt(proc, "^sleep 6003", count=2)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "verifying" not in out and "netgen try: removing the lab" in out
    assert log(tmp_path) == {"node1 rolled back", "node2 rolled back", "node3 up", *DOWN_ON_ALL}
    assert subprocess.run(["pgrep", "-f", "^sleep 6003"]).returncode == 1  # what Ctrl-C spared ended with the nodes


# Part two through netgen try: a pod (container) on node1 reaches one on node2, routed, in VXLAN, or on one segment
ACROSS = {"host_gw": ("pod-1-1", "10.244.2.2", "pod-2-1"), "flannel_vxlan": ("pod-1-1", "10.244.2.2", "pod-2-1"),
          "overlay_l2": ("c1-1", "10.0.1.4", "c2-1")}


@pytest.mark.live
@pytest.mark.parametrize("example", ACROSS)
def test_try_a_pod_on_node1_reaches_a_pod_on_node2(root, example):
    client, server, name = ACROSS[example]
    before = _machine_state()
    command = ["ip", "netns", "exec", client, "curl", "-s", "-m5", f"http://{server}/"]
    result = subprocess.run(["netgen", "try", str(REPO / "examples" / f"{example}.py"), "--node", "node1", "--",
                             *command], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[lines.index(f"netgen try: running {' '.join(command)} in node1") + 1] == f"hello from {name}"
    for node in ("node1", "node2"):  # node1's verify checks that its pods reach node2's
        assert [line for line in lines if line.startswith(f"{node}: verify.sh: lab {example}: ")][0] \
            .endswith(" 0 failed")
    assert _machine_state() == before


runner = CliRunner()


def test_node_names_one_of_the_labs_nodes():
    result = runner.invoke(app, ["try", str(REPO / "examples" / "host_gw.py"), "--node", "node9", "--", "true"])
    assert result.exit_code == 2
    assert "--node node9: the lab's nodes are node1, node2" in result.stderr


def test_try_help_says_where_the_command_runs():
    text = " ".join(runner.invoke(app, ["try", "--help"]).stdout.split())
    assert "--node NODE" in text and "the node COMMAND (or the shell) runs in (default: the lab's first node)" in text


def test_node_for_a_lab_without_nodes_is_a_usage_error():
    result = runner.invoke(app, ["try", str(REPO / "examples" / "veth_pair.py"), "--node", "node1", "--", "true"])
    assert result.exit_code == 2
    assert "--node node1: the lab has no nodes" in result.stderr


@pytest.mark.live
def test_a_killed_netgen_leaves_nothing(root, tmp_path):
    before = _machine_state()
    proc = try_nodes(scripts(tmp_path), "node1", "sleep", "6004")
    deadline = time.monotonic() + 30
    while subprocess.run(["pgrep", "-f", "^sleep 6004"], capture_output=True).returncode != 0:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()  # SIGKILL: netgen runs no down, yet the simulation ends with it
    proc.communicate(timeout=10)
    while subprocess.run(["pgrep", "-f", "^sleep 6004"], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline + 10, "the simulation outlived netgen"
        time.sleep(0.05)
    assert _machine_state() == before
