"""inventory, live: the docker0 lab's own objects read in a sandbox, paired and shown as present, then absent
(the unit tests, on recorded output, are tests/unit/test_inventory.py)."""

import shlex

import pytest
from helpers import DOCKER0_OBJECTS, REPO, docker0_lab, link, statuses

from netgen import inventory
from netgen.inventory import ABSENT, PRESENT
from netgen.model import HOST

# --- live ---------------------------------------------------------------------------------------------------------

def ip_in(sandbox):
    """A `run` for collect that runs ip inside the sandbox."""
    def run(ns, args):
        result = sandbox.run(shlex.join(["ip", *(["-n", ns] if ns else []), *args]))
        return result.stdout if result.returncode == 0 else None
    return run


@pytest.mark.live
def test_live_docker0_ports_are_paired_with_their_containers(sandbox):
    up = sandbox.run(f"bash {REPO}/out/docker0/up.sh")
    assert up.returncode == 0, up.stderr
    inv = inventory.collect(ip_in(sandbox))
    assert [ns.name for ns in inv.namespaces] == [HOST, "nginx-1", "nginx-2"]
    assert link(inv, HOST, "docker0").kind == "bridge"
    assert "172.17.0.1/16" in link(inv, HOST, "docker0").addresses
    for i in (1, 2):
        port, eth0 = link(inv, HOST, f"veth-nginx-{i}"), link(inv, f"nginx-{i}", "eth0")
        assert (port.kind, port.master, port.peer) == ("veth", "docker0", (f"nginx-{i}", "eth0"))
        assert (eth0.kind, eth0.master, eth0.peer) == ("veth", None, (HOST, f"veth-nginx-{i}"))
        assert f"172.17.0.{i + 1}/16" in eth0.addresses
        assert port.up and eth0.up

    lab = docker0_lab()
    names = [ns.name for ns in lab.namespaces]
    table = inventory.for_lab(inventory.collect(ip_in(sandbox), names), lab)
    assert statuses(table) == [(ns, name, PRESENT) for ns, name in DOCKER0_OBJECTS]

    down = sandbox.run(f"bash {REPO}/out/docker0/down.sh")
    assert down.returncode == 0, down.stderr
    table = inventory.for_lab(inventory.collect(ip_in(sandbox), names), lab)
    assert statuses(table) == [(ns, name, ABSENT) for ns, name in DOCKER0_OBJECTS]


@pytest.mark.live
def test_live_lookalike_pairs_are_told_apart_through_the_cli(sandbox):
    """Two veth_pair-shaped labs at once: every end has ifindex 2 pointing at 2, only namespace ids differ."""
    assert sandbox.run(f"bash {REPO}/out/veth_pair/up.sh").returncode == 0
    made = sandbox.run("ip netns add ns3 && ip netns add ns4 && "
                       "ip -n ns3 link add veth0 type veth peer name veth1 netns ns4")
    assert made.returncode == 0, made.stderr
    table = sandbox.run("netgen inspect").stdout
    peers = {tuple(cells[:2]): cells[-1] for cells in (line.split() for line in table.splitlines()[1:])}
    assert peers[("ns1", "veth0")] == "ns2/veth1" and peers[("ns2", "veth1")] == "ns1/veth0"
    assert peers[("ns3", "veth0")] == "ns4/veth1" and peers[("ns4", "veth1")] == "ns3/veth0"
