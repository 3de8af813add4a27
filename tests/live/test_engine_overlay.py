"""The engine's overlay objects, live, with lab parts written by hand (the engine is the same text whatever
compiled the lab part): a vxlan device as flannel makes it, a permanent neighbour entry, a forwarding entry made
by `bridge -batch` and an onlink route. up builds them, verify names each one that goes missing, a refused
forwarding entry undoes the whole run, and down leaves the host as it was."""

import os

import pytest
from helpers import ok
from sandbox import Sandbox

from netgen import render

pytestmark = pytest.mark.live

COMMON = """set -euo pipefail
LAB='vx'
SCRIPT='{script}'
NAMESPACES=()
EXTERNAL_NS=()
declare -A SYSCTL_KEYS=()
FDB_NS=('host')
NFT_TABLE='' NFT_CHAINS=() NFT_RULES=()
"""

FDB = "flannel.1/0e:00:00:00:00:02/192.168.60.12"
STEPS = f"""
  section 'host'
  expect addr 'host' '192.168.60.11/24' 'eth0'
  step link 'host' 'flannel.1' vxlan \\
    'link add name flannel.1 address 0e:00:00:00:00:01 mtu 1450 type vxlan id 1 local 192.168.60.11 dev eth0 dstport 8472 nolearning' \\
    'link del dev flannel.1'
  step vxlan 'host' 'flannel.1' 'id 1 local 192.168.60.11 dev eth0 dstport 8472 nolearning'
  step state 'host' 'flannel.1' up 'link set dev flannel.1 up'
  step addr 'host' '10.244.1.0/32' 'flannel.1' 'addr add 10.244.1.0/32 dev flannel.1' 'addr del 10.244.1.0/32 dev flannel.1'
  step neigh 'host' 'flannel.1/10.244.2.0' 'lladdr 0e:00:00:00:00:02 nud permanent' \\
    'neigh replace 10.244.2.0 lladdr 0e:00:00:00:00:02 dev flannel.1 nud permanent' 'neigh del 10.244.2.0 dev flannel.1'
  step fdb 'host' '{FDB}' 'self permanent' \\
    'fdb append 0e:00:00:00:00:02 dev flannel.1 dst 192.168.60.12 self permanent' \\
    'fdb del 0e:00:00:00:00:02 dev flannel.1 dst 192.168.60.12 self'
  @EXTRA@
  section host last
  step route4 'host' '10.244.2.0/24' 'via 10.244.2.0 dev flannel.1' \\
    'route add 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink' 'route del 10.244.2.0/24 via 10.244.2.0 dev flannel.1'
"""  # noqa: E501  (shell)

UP = COMMON + """declare -A ADOPT_LINKS=() ADOPT_ADDRS=() ADOPT_ROUTES=()
SERVICES=()
lab_steps() {@STEPS@}
lab_services() { return 0; }
"""
DOWN = COMMON + """lab_teardown() {
  remove link 'host' 'flannel.1' vxlan 'link del dev flannel.1'
}
lab_services() { return 0; }
"""
VERIFY = COMMON + f"""lab_checks() {{
  judge <<'CHECKS'
  link 'host' 'flannel.1' vxlan
  vxlan 'host' 'flannel.1' 'id 1 local 192.168.60.11 dev eth0 dstport 8472 nolearning'
  state 'host' 'flannel.1' up
  addr 'host' '10.244.1.0/32' 'flannel.1'
  neigh 'host' 'flannel.1/10.244.2.0' 'lladdr 0e:00:00:00:00:02 nud permanent'
  fdb 'host' '{FDB}' 'self permanent'
  route4 'host' '10.244.2.0/24' 'via 10.244.2.0 dev flannel.1'
CHECKS
}}
lab_absent_checks() {{
  judge <<'CHECKS'
  link 'host' 'flannel.1' absent
CHECKS
}}
lab_services() {{ return 0; }}
"""


@pytest.fixture
def node(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("live tests need root")
    box = Sandbox(pid=True)
    # the node's underlay: eth0 with its address, made before the lab and never changed by it
    ok(box.run("ip link add eth0 type veth peer name wire && ip addr add 192.168.60.11/24 dev eth0 && "
               "ip link set eth0 up && ip link set wire up"))
    yield box
    box.close()


def write(tmp_path, extra=""):
    for name, text in (("up.sh", UP.replace("@STEPS@", STEPS.replace("@EXTRA@", extra))), ("down.sh", DOWN),
                       ("verify.sh", VERIFY)):
        (tmp_path / name).write_text(text.replace("{script}", name) + render.engine())
    return tmp_path


OVERLAY_STATE = "ip -d link show flannel.1; ip neigh show nud permanent; bridge fdb show dev flannel.1; ip route"


def test_up_builds_the_overlay_objects_verify_names_each_missing_one_down_leaves_none(node, tmp_path):
    d = write(tmp_path)
    before = node.settled_snapshot()  # once IPv6 has settled on the underlay it just made
    plan = ok(node.run(f"bash {d}/up.sh --plan"))
    assert "bridge fdb append 0e:00:00:00:00:02 dev flannel.1 dst 192.168.60.12 self permanent" in plan.stdout
    assert "ip neigh replace 10.244.2.0 lladdr 0e:00:00:00:00:02 dev flannel.1 nud permanent" in plan.stdout
    ok(node.run(f"bash {d}/up.sh"))
    state = ok(node.run(OVERLAY_STATE)).stdout
    assert "vxlan id 1 local 192.168.60.11 dev eth0" in state and "dstport 8472 nolearning" in state
    assert "10.244.2.0 dev flannel.1 lladdr 0e:00:00:00:00:02 PERMANENT" in state
    assert "0e:00:00:00:00:02 dst 192.168.60.12 self permanent" in state
    assert "10.244.2.0/24 via 10.244.2.0 dev flannel.1 proto 110 onlink" in state  # netgen's protocol: its mark
    assert "host: bridge fdb append 0e:00:00:00:00:02 dev flannel.1 dst 192.168.60.12 self permanent: 0" in \
        ok(node.run("cat /run/netgen/vx.log")).stdout
    verify = ok(node.run(f"bash {d}/verify.sh"))
    assert f"ok   host fdb {FDB}: self permanent" in verify.stdout
    assert "ok   host/flannel.1 vxlan: id 1 local 192.168.60.11 dev eth0 dstport 8472 nolearning" in verify.stdout
    again = ok(node.run(f"bash {d}/up.sh"))
    assert "already up; nothing changed" in again.stdout

    ok(node.run("bridge fdb del 0e:00:00:00:00:02 dev flannel.1 dst 192.168.60.12 self && "
                "ip neigh del 10.244.2.0 dev flannel.1"))
    broken = node.run(f"NETGEN_VERIFY_WAIT=0 bash {d}/verify.sh")
    assert broken.returncode == 1
    assert f"FAIL host fdb {FDB}: want self permanent, have absent" in broken.stdout
    assert "FAIL host neighbour flannel.1/10.244.2.0: want lladdr 0e:00:00:00:00:02 nud permanent, have absent" \
        in broken.stdout
    assert "2 failed" in broken.stdout
    ok(node.run(f"bash {d}/up.sh"))  # converges: only what is missing is made again
    ok(node.run(f"bash {d}/verify.sh"))

    ok(node.run(f"bash {d}/down.sh"))
    ok(node.run(f"bash {d}/verify.sh --absent"))
    assert node.settled_snapshot() == before
    assert "flannel.1" not in ok(node.run("bridge fdb show; ip neigh show nud permanent")).stdout


def test_a_neighbour_entry_of_another_address_is_a_conflict(node, tmp_path):
    d = write(tmp_path)
    ok(node.run(f"bash {d}/up.sh"))
    ok(node.run("ip neigh replace 10.244.2.0 lladdr 0e:00:00:00:00:09 dev flannel.1 nud permanent"))
    result = node.run(f"bash {d}/up.sh")
    assert result.returncode == 1
    assert "host neighbour flannel.1/10.244.2.0: want lladdr 0e:00:00:00:00:02 nud permanent, have lladdr " \
           "0e:00:00:00:00:09 nud permanent" in result.stderr
    ok(node.run(f"bash {d}/down.sh"))


def test_a_forwarding_entry_bridge_refuses_undoes_the_whole_run(node, tmp_path):
    d = write(tmp_path, "step fdb 'host' 'nosuch/0e:00:00:00:00:03/192.168.60.13' 'self permanent' "
                        "'fdb append 0e:00:00:00:00:03 dev nosuch dst 192.168.60.13 self permanent'")
    before = node.settled_snapshot()
    result = node.run(f"bash {d}/up.sh")
    assert result.returncode == 1
    assert "in host, bridge refused: fdb append 0e:00:00:00:00:03 dev nosuch dst 192.168.60.13 self permanent" \
        in result.stderr
    assert "undo in host: fdb del 0e:00:00:00:00:02 dev flannel.1 dst 192.168.60.12 self" in result.stderr
    assert node.settled_snapshot() == before
