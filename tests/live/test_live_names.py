"""Foreign links whose names hold bytes a lab name never has (quotes, backslashes, braces, brackets, commas, UTF-8),
some of them a lab object's name and one byte more, on a host where a lab comes up, checks out and goes down (needs
root; each sandbox has its own PID namespace)."""

import pytest
from helpers import REPO, _can_sandbox
from sandbox import Sandbox

pytestmark = pytest.mark.live

# Made in the sandbox's host before the lab (bridge: the bridge br0, its ports brvethotherend0 and brvethotherend1,
# and the namespaces ns1 and ns2 with br-veth0 and br-veth1), in bash's $'...' quoting.
FOREIGN = r"""
set -euo pipefail
ip link add $'d}{"e' type veth peer name $'x{y'
ip link add $'brvethotherend{' type veth peer name $'br-veth0"'
ip link add $'br0{' type bridge
ip link add $'[x]' type veth peer name $'\xc3\xa9{\xc3\xbc'
ip link set $'[x]' master $'br0{'
ip link add $'q"uote' type veth peer name $'br\\0'
ip netns add $'ns1{"'
ip link add $'{' type veth peer name $'a,b' netns $'ns1{"'
for link in $'d}{"e' $'x{y' $'br0{' $'[x]' $'{'; do ip link set "$link" up; done
ip addr add 10.99.0.1/24 dev $'d}{"e'
ip route add 10.98.0.0/16 via 10.99.0.254 dev $'d}{"e'
"""


@pytest.fixture
def sandbox():
    reason = _can_sandbox()
    if reason:
        pytest.skip(reason)
    box = Sandbox(pid=True)
    yield box
    box.close()


def ok(result):
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    return result


def test_a_lab_comes_up_checks_out_and_goes_down_beside_links_with_hostile_names(sandbox):
    ok(sandbox.run(FOREIGN))
    before = sandbox.settled_snapshot()
    up = ok(sandbox.run(f"bash {REPO}/out/bridge/up.sh"))
    assert "lab bridge is up" in up.stdout
    verify = ok(sandbox.run(f"bash {REPO}/out/bridge/verify.sh"))
    assert "FAIL" not in verify.stdout and " 0 failed" in verify.stdout
    down = ok(sandbox.run(f"bash {REPO}/out/bridge/down.sh"))
    assert "lab bridge is down" in down.stdout
    assert sandbox.settled_snapshot() == before
