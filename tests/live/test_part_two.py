"""The seed's part two, live on simulated nodes: a pod on node1 fetches a page from a pod on node2, over each of the
three ways the examples wire nodes together. On the underlay the traffic is VXLAN (UDP 8472 for flannel, 4789 for
the Docker-like segment) or plain routed pod addresses (host-gw); inside the receiving pod it is ordinary HTTP.
Every node's verify passes, then names precisely the forwarding entry, neighbour or route deleted behind its back;
up puts it back; down leaves every node exactly as it was."""

import os
import shutil
import subprocess
import time

import pytest
from helpers import CASES, REPO
from nodes import Cluster

from netgen.pipeline import compile_lab, write_scripts

pytestmark = pytest.mark.live


def _ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def _capture(cluster, node, command):
    """tcpdump, started (in the outer sandbox when `node` is None) and listening: returned to be collected."""
    dump = cluster.start(node, f"exec {command}", stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)  # tcpdump says "listening" on stderr, which it holds until it ends: give it time to start
    return dump


@pytest.fixture(scope="module")
def tools():
    if os.geteuid() != 0:
        pytest.skip("live tests need root")
    missing = [t for t in ("tcpdump", "curl", "bridge") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"part two's live tests need {', '.join(missing)} (apt-get install tcpdump curl iproute2)")


@pytest.mark.parametrize("example", sorted(CASES))
def test_a_pod_on_node1_fetches_a_page_from_a_pod_on_node2(tools, tmp_path, example):
    case = CASES[example]
    compiled = compile_lab(str(REPO / "examples" / f"{example}.py"))
    write_scripts(compiled, str(tmp_path))
    with Cluster(compiled.lab.nodes) as cluster:
        before = {node: cluster.settled_snapshot(node) for node in cluster.nodes}
        for node in cluster.nodes:
            _ok(cluster.run(node, f"bash {tmp_path}/{node}/up.sh"))
        for node in cluster.nodes:
            assert "0 failed" in _ok(cluster.run(node, f"bash {tmp_path}/{node}/verify.sh")).stdout

        wire = _capture(cluster, None, f"timeout -s INT 5 tcpdump -l -n -i underlay {case.underlay}")
        pod = _capture(cluster, "node2",
                       f"ip netns exec {case.server} timeout -s INT 5 tcpdump -l -n -A -i eth0 tcp port 80")
        page = _ok(cluster.run("node1", f"ip netns exec {case.client} curl -s -m 5 http://{case.address}/"))
        assert page.stdout == f"hello from {case.server}\n"
        on_wire, in_pod = wire.communicate()[0], pod.communicate()[0]
        assert any(line.startswith(case.carried) or f" {case.carried}" in line for line in on_wire.splitlines()), \
            on_wire
        if case.underlay.startswith("udp"):  # the pod's packet inside the node's: both addresses are the nodes'
            assert "192.168.60.11." in on_wire and f"192.168.60.12.{case.underlay.split()[-1]}:" in on_wire
        else:  # routed: the pods' own addresses on the wire, nothing wrapped around them
            assert f"> {case.address}.80:" in on_wire and "8472" not in on_wire
        assert f"> {case.address}.80:" in in_pod and "GET / HTTP/1.1" in in_pod

        _ok(cluster.run("node2", case.removed))
        broken = cluster.run("node2", f"NETGEN_VERIFY_WAIT=1 bash {tmp_path}/node2/verify.sh")
        assert broken.returncode == 1
        for line in case.named:
            assert line in broken.stdout, broken.stdout
        _ok(cluster.run("node2", f"bash {tmp_path}/node2/up.sh"))  # converges: what is missing is made again
        for node in cluster.nodes:
            _ok(cluster.run(node, f"bash {tmp_path}/{node}/verify.sh"))

        for node in cluster.nodes:
            _ok(cluster.run(node, f"bash {tmp_path}/{node}/down.sh"))
        for node in cluster.nodes:
            assert cluster.settled_snapshot(node) == before[node], f"{node} is not as it was before up"
