"""Issue 25, the matrix: the committed scripts of every example run unchanged on Debian 11, 12 and 13, with each
release's own bash, iproute2, nftables and util-linux, on a host whose name resolves nowhere: up, verify (every
check passes), up again (nothing changed), down (the sandbox as before).

Each release is a root made by tests/roots.py (debootstrap from the machine's own mirror, cached under
${XDG_CACHE_HOME:-~/.cache}/netgen/roots; the first run builds it, about a minute each). A lab without nodes runs in
a sandbox chrooted into the root (roots.RootSandbox); a lab with nodes on nodes simulated inside the root
(netgen.simulation, root=), whose names are in no /etc/hosts. Needs root and debootstrap."""

import os
import shutil

import pytest
from helpers import CASES, EXAMPLES, NODE_EXAMPLES, REPO
from nodes import Cluster
from roots import SUITES, RootSandbox, built, root
from sandbox import Sandbox

from netgen.pipeline import compile_lab, write_scripts

pytestmark = pytest.mark.live


def _need(reason: str):
    if os.environ.get("CI"):
        pytest.fail(reason + " (and CI must run the matrix)")
    pytest.skip(reason)


@pytest.fixture(scope="module", params=list(SUITES))
def debian(request):
    """The root of one Debian release, built once and cached."""
    if os.geteuid() != 0:
        _need("the matrix needs root (debootstrap, chroot, namespaces)")
    if shutil.which("debootstrap") is None and built(request.param) is None:
        _need("the matrix needs debootstrap (apt-get install debootstrap)")
    return request.param, root(request.param)


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


class Box(RootSandbox):
    snapshot = Sandbox.snapshot  # with the machine's tools, which see the sandbox as the root's do


# What each example serves, fetched with the root's curl once it is up: (namespace, URL, page)
PAGES = {"docker0": ("nginx-2", "http://172.17.0.2/", "hello from nginx-1"),
         "docker_nat": ("nginx-2", "http://[fd00:17::2]/", "hello from nginx-1")}


@pytest.mark.parametrize("example", EXAMPLES)
def test_an_example_runs_unchanged_where_the_host_name_does_not_resolve(debian, example, tmp_path):
    suite, path = debian
    shutil.copytree(REPO / "out" / example, tmp_path / example)
    with Box(path, tmp_path) as box:
        assert ok(box.run_root("getent hosts \"$(hostname)\" || echo unresolved")).stdout == "unresolved\n"
        before = box.snapshot()
        up = ok(box.run_root(f"bash /mnt/{example}/up.sh"))
        assert f"lab {example} is up" in up.stdout
        if example in PAGES:  # up said so: the page is there at once
            ns, url, page = PAGES[example]
            assert ok(box.run_root(f"ip netns exec {ns} curl -s -m 5 {url}")).stdout == page + "\n"
        verify = ok(box.run_root(f"bash /mnt/{example}/verify.sh"))
        assert "FAIL" not in verify.stdout and " 0 failed" in verify.stdout, suite
        again = ok(box.run_root(f"bash /mnt/{example}/up.sh"))
        assert f"lab {example} is already up; nothing changed" in again.stdout
        down = ok(box.run_root(f"bash /mnt/{example}/down.sh"))
        assert f"lab {example} is down" in down.stdout
        assert box.snapshot() == before


@pytest.mark.parametrize("example", NODE_EXAMPLES)
def test_a_lab_with_nodes_runs_unchanged_on_nodes_whose_names_do_not_resolve(debian, example, tmp_path):
    suite, path = debian
    compiled = compile_lab(str(REPO / "examples" / f"{example}.py"))
    write_scripts(compiled, str(tmp_path))
    case = CASES[example]
    with Cluster(compiled.lab.nodes, root=str(path), folder=str(tmp_path), name_resolves=False) as cluster:
        assert ok(cluster.run("node1", "hostname; getent hosts node1 || echo unresolved")).stdout == \
            "node1\nunresolved\n"
        before = {node: cluster.settled_snapshot(node) for node in cluster.nodes}
        for node in cluster.nodes:
            assert f"lab {example} is up" in ok(cluster.run(node, f"bash /mnt/{node}/up.sh")).stdout
        page = ok(cluster.run("node1", f"ip netns exec {case.client} curl -s -m 5 http://{case.address}/"))
        assert page.stdout == f"hello from {case.server}\n"
        for node in cluster.nodes:
            verify = ok(cluster.run(node, f"bash /mnt/{node}/verify.sh"))
            assert "FAIL" not in verify.stdout and " 0 failed" in verify.stdout, (suite, node)
        for node in cluster.nodes:
            again = ok(cluster.run(node, f"bash /mnt/{node}/up.sh"))
            assert f"lab {example} is already up; nothing changed" in again.stdout
        for node in cluster.nodes:
            assert f"lab {example} is down" in ok(cluster.run(node, f"bash /mnt/{node}/down.sh")).stdout
        for node in cluster.nodes:
            assert cluster.settled_snapshot(node) == before[node], f"{node} is not as it was before up"
