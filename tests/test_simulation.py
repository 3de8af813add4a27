"""Issue 18, a way to try it on one machine: nodes simulated as namespaces of their own, joined by a bridge, for
`netgen try` and the tests (tests/nodes.py). Until the compiler writes per-node scripts, the scripts here are
written by hand."""

import os
import subprocess
from collections import namedtuple

import pytest
from conftest import _can_sandbox, _machine_state
from nodes import Cluster
from test_live import ok

Node = namedtuple("Node", "name underlay dev")  # what the simulation reads of model.Node
NODES = [Node("node1", "192.168.60.11/24", "eth0"), Node("node2", "192.168.60.12/24", "eth0"),
         Node("node3", "192.168.60.13/24", "ens3")]


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
    assert ok(cluster.run("node2", "ip netns list; ls /run; pgrep -fx 'sleep 600' || true")).stdout.split() == ["netns"]
    assert sorted(ok(cluster.run_outer("ip netns list | cut -d' ' -f1; ls /run")).stdout.split()) == \
        ["netns", "node1", "node2", "node3"]
    # a script run there sees the node's name, and each node its own links in /sys
    (tmp_path / "who.sh").write_text('echo "$(hostname) $(uname -n) $(ls /sys/class/net | tr "\\n" " ")"\n')
    assert ok(cluster.run("node3", f"bash {tmp_path}/who.sh")).stdout == "node3 node3 ens3 lo \n"


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
def test_a_node_that_cannot_start_is_a_message(root):
    from netgen.simulation import SimulationError

    with pytest.raises(SimulationError, match="could not start .*any valid prefix is expected rather than "
                                              '"192.168.60.300/24"'):
        Cluster([NODES[0], Node("node2", "192.168.60.300/24", "eth0")])
