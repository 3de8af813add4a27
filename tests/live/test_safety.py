"""Issue 15, live: a lab never takes over, removes or kills what it did not make. Each test runs in a sandbox
with its own PID namespace, so that what down ends and what a signal reaches are the sandbox's processes only."""

import os
import signal
import subprocess
import time

import pytest
from helpers import REPO, ok, script
from sandbox import Sandbox

pytestmark = pytest.mark.live


@pytest.fixture
def box():
    if os.geteuid() != 0:
        pytest.skip("live tests need root")
    sandbox = Sandbox(pid=True)
    yield sandbox
    sandbox.close()


def compiled(tmp_path, text: str, name: str = "lab"):
    from netgen.pipeline import compile_lab, write_scripts

    (tmp_path / f"{name}.py").write_text(text)
    write_scripts(compile_lab(str(tmp_path / f"{name}.py")), str(tmp_path / name))
    return tmp_path / name


# A host whose br0 already carries the uplink, the host's address and its default route (as on a KVM host).
UPLINK_BR0 = ("ip link add uplink type veth peer name uplink-peer && ip link add br0 type bridge && "
              "ip link set uplink master br0 && ip link set uplink up && ip link set uplink-peer up && "
              "ip link set br0 up && ip addr add 10.9.9.9/24 dev br0 && ip route add default via 10.9.9.1")


def test_1_an_existing_bridge_is_a_conflict_and_down_leaves_it(box):
    ok(box.run(UPLINK_BR0))
    before = box.settled_snapshot()
    up = box.run(script("bridge", "up"))
    assert up.returncode == 1
    assert "up.sh: host/br0: exists (bridge), not made by this lab; up does not take it over" in up.stderr
    assert "nothing was changed" in up.stderr
    down = ok(box.run(script("bridge", "down")))
    assert "down.sh: host/br0: left alone, not made by this lab" in down.stderr
    assert box.snapshot() == before  # br0 keeps its port, address and the default route


def test_1_an_existing_namespace_with_a_process_is_neither_taken_nor_emptied(box):
    ok(box.run("ip netns add ns1 && (ip netns exec ns1 sleep 600 >/dev/null 2>&1 &)"))
    before = box.snapshot()
    up = box.run(script("veth_pair", "up"))
    assert up.returncode == 1 and "up.sh: netns ns1: exists (present), not made by this lab" in up.stderr
    down = ok(box.run(script("veth_pair", "down")))
    assert "down.sh: netns ns1: left alone, not made by this lab" in down.stderr
    assert "ending pid" not in down.stdout
    assert box.run("pgrep -x sleep").returncode == 0
    assert box.snapshot() == before


def test_1_a_docker0_made_by_someone_else_with_a_container_port_stays(box):
    ok(box.run("ip link add docker0 type bridge && ip addr add 172.17.0.1/16 dev docker0 && "
               "ip netns add ctr && ip link add vethctr type veth peer name eth0 netns ctr && "
               "ip link set vethctr master docker0 && ip link set docker0 up"))
    before = box.settled_snapshot()
    assert box.run(script("docker0", "up")).returncode == 1
    ok(box.run(script("docker0", "down")))
    assert box.snapshot() == before


def test_adopt_takes_over_only_what_carries_nothing_else(box, tmp_path):
    lab = compiled(tmp_path, """from netgen import Lab
lab = Lab("adopting")
br = lab.host.bridge("br0", "10.7.0.1/24", adopt=True)
ns = lab.netns("ns1", adopt=True)
lab.veth(ns.port("eth0", "10.7.0.2/24"), br.port("veth-ns1"))
""")
    # a bridge with a port the lab does not name, a namespace with a process: both refused, nothing changed
    ok(box.run("ip link add br0 type bridge && ip link add stray type veth peer name stray-peer && "
               "ip link set stray master br0 && ip netns add ns1 && (ip netns exec ns1 sleep 600 >/dev/null 2>&1 &)"))
    before = box.snapshot()
    up = box.run(f"bash {lab}/up.sh")
    assert up.returncode == 1
    assert "host/br0: adopt=True, but it holds what the lab does not name: port stray" in up.stderr
    assert "netns ns1: adopt=True, but it holds what the lab does not name: process " in up.stderr
    assert box.snapshot() == before
    # once they carry nothing else, up takes them over and down removes them like its own
    ok(box.run("pkill -x sleep; ip link del stray"))
    for _ in range(50):
        if box.run("pgrep -x sleep").returncode:
            break
        time.sleep(0.1)
    up = ok(box.run(f"bash {lab}/up.sh"))
    assert "taking over (adopt=True)" in up.stdout
    ok(box.run(f"bash {lab}/verify.sh"))
    ok(box.run(f"bash {lab}/down.sh"))
    assert ok(box.run("ip netns list; ip -br link show br0 2>/dev/null; true")).stdout == ""


def test_external_namespace_is_used_and_stays(box, tmp_path):
    lab = compiled(tmp_path, """from netgen import Lab
lab = Lab("ext")
ctr = lab.netns("ctr", external=True)
lab.veth(ctr.port("eth1", "10.8.0.2/24"), lab.host.port("veth-ctr", "10.8.0.1/24"))
lab.expect("host").reaches("10.8.0.2")
""")
    ok(box.run("ip netns add ctr && ip -n ctr link set lo up && (ip netns exec ctr sleep 600 >/dev/null 2>&1 &)"))
    before = box.snapshot()
    ok(box.run(f"bash {lab}/up.sh"))
    ok(box.run(f"bash {lab}/verify.sh"))
    down = ok(box.run(f"bash {lab}/down.sh"))
    assert "ending pid" not in down.stdout
    assert box.run("pgrep -x sleep").returncode == 0
    assert box.snapshot() == before


def test_2_a_name_for_the_root_namespace_is_never_emptied(box):
    ok(box.run("ip netns attach ns1 1 && (sleep 600 >/dev/null 2>&1 &)"))
    up = box.run(script("veth_pair", "up"))
    assert up.returncode == 1 and "netns ns1: exists" in up.stderr
    for flags in ("", " --force"):
        down = ok(box.run(script("veth_pair", "down") + flags))
        assert "ending pid" not in down.stdout
        assert box.run("pgrep -x sleep").returncode == 0
    assert "left alone, it is the namespace down.sh runs in" in down.stderr
    assert "ns1" in ok(box.run("ip netns list")).stdout


def test_3_nothing_an_unprivileged_user_makes_can_block_or_bypass_the_lock(box):
    ok(box.run("mkdir -p /run/lock && echo 1 > /run/lock/netgen-docker0.lock; mkfifo /run/lock/netgen-veth_pair.lock; "
               "ln -s /dev/null /run/lock/netgen-bridge.lock"))
    for example in ("docker0", "veth_pair", "bridge"):
        start = time.monotonic()
        ok(box.run(script(example, "up"), timeout=30))
        ok(box.run(script(example, "down"), timeout=30))
        assert time.monotonic() - start < 20


def test_3_a_state_directory_others_can_write_is_refused(box):
    ok(box.run("mkdir -p /run/netgen && chmod 0777 /run/netgen"))
    result = box.run(script("veth_pair", "up"))
    assert result.returncode == 2 and "must belong to root and be writable by root alone" in result.stderr
    ok(box.run("chmod 0755 /run/netgen && chown 65534 /run/netgen"))
    assert box.run(script("veth_pair", "up")).returncode == 2
    ok(box.run("rm -r /run/netgen && ln -s /tmp /run/netgen"))
    result = box.run(script("veth_pair", "verify"))
    assert result.returncode == 2 and "symbolic link" in result.stderr


def test_3_a_killed_holder_never_keeps_the_lock_and_two_runs_never_hold_it_at_once(box):
    # the lock is the kernel's: SIGKILL the holder and the next run goes at once
    ok(box.run(script("veth_pair", "up")))
    holder = subprocess.Popen([*box.enter, "flock", "/run/netgen/veth_pair.lock", "sleep", "600"])
    time.sleep(0.5)
    blocked = box.run("NETGEN_LOCK_WAIT=0 " + script("veth_pair", "down"))
    assert blocked.returncode == 2 and "in use by another run" in blocked.stderr
    verify = box.run("NETGEN_LOCK_WAIT=0 " + script("veth_pair", "verify"))
    assert verify.returncode == 2  # verify shares the lock with verifies only: never reads a lab being changed
    ok(box.run("pkill -KILL -x flock; pkill -KILL -x sleep"))
    holder.wait()
    ok(box.run("NETGEN_LOCK_WAIT=2 " + script("veth_pair", "down")))


def _start_up(box, example_script: str, env: str = "") -> subprocess.Popen:
    """The script in a process group of its own, its exit code written to /run/rc by a shell that outlives a signal
    sent to the whole group (it handles them, so the script still gets them as a terminal would deliver them)."""
    return subprocess.Popen([*box.enter, "bash", "-c", f"trap : HUP INT QUIT TERM; {env} {example_script} "
                             "2>/run/err; echo $? >/run/rc"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _exit_code(box) -> tuple[int, str]:
    for _ in range(600):
        rc = box.run("cat /run/rc 2>/dev/null")
        if rc.stdout.strip():
            return int(rc.stdout), box.run("cat /run/err").stdout
        time.sleep(0.05)
    raise AssertionError("the script did not end within 30 s")


# An ip that announces the first batch of up and then takes its time.
SLOW = r"""
mkdir -p /run/slow && cat > /run/slow/ip <<'WRAPPER'
#!/bin/bash
real=$(PATH=/usr/sbin:/sbin:/usr/bin command -v ip)
if [[ " $* " == *" -batch "* && " $* " != *" -batch - "* ]]; then touch /run/slow/reached; sleep 1; fi
exec "$real" "$@"
WRAPPER
chmod +x /run/slow/ip
"""


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("group", [False, True], ids=["script", "group"])
def test_4_signals_roll_back_within_seconds(box, tmp_path, sig, group):
    from netgen.pipeline import compile_lab, write_scripts

    os.environ["STAR_N"] = "50"
    try:
        write_scripts(compile_lab(str(REPO / "bench" / "labs" / "star.py")), str(tmp_path))
    finally:
        del os.environ["STAR_N"]
    ok(box.run(SLOW))
    before = box.snapshot()
    up = _start_up(box, f"bash {tmp_path}/up.sh", "PATH=/run/slow:$PATH")
    for _ in range(200):
        if box.run("test -e /run/slow/reached").returncode == 0:
            break
        time.sleep(0.05)
    if group:
        os.killpg(up.pid, sig)  # as Ctrl-C in a terminal, or timeout, sends it: to every process of the run
    else:
        ok(box.run(f"pkill -o -{sig.name[3:]} -f '^bash {tmp_path}/up.sh'"))  # the script, not its subshells
    code, err = _exit_code(box)
    up.wait(timeout=10)
    assert code == 128 + sig.value, err
    assert f"interrupted by SIG{sig.name[3:]}" in err
    assert box.snapshot() == before, err
    assert ok(box.run("find /run/netgen -type f ! -name '*.lock' ! -name '*.log'; ls /run/netgen | grep run. || true")
              ).stdout == ""


def test_4_a_failing_command_after_apply_began_rolls_back(box):
    # awk fails once up judges what it built: a command failing under set -e, after its changes
    ok(box.run(r"""mkdir -p /run/bad && cat > /run/bad/awk <<'WRAPPER'
#!/bin/bash
if [[ " $* " == *judge.awk* && -e /run/netns/nginx-1 ]]; then exit 9; fi
exec /usr/bin/awk "$@"
WRAPPER
chmod +x /run/bad/awk"""))
    before = box.snapshot()
    result = box.run("PATH=/run/bad:$PATH " + script("docker0", "up"))
    assert result.returncode != 0
    assert "undoing the" in result.stderr
    assert box.snapshot() == before


def test_4_a_host_link_without_carrier_at_the_final_check_undoes_the_run(box):
    # ip leaves docker0 down (its batch line is dropped, and ip says nothing): docker0 has no carrier, which up's
    # last check (judged from the steps it ran) must see, name, and undo
    ok(box.run(r"""mkdir -p /run/dark && cat > /run/dark/ip <<'WRAPPER'
#!/bin/bash
real=$(PATH=/usr/sbin:/sbin:/usr/bin command -v ip)
if [[ $1 == -batch && -f $2 ]] && grep -q '^link set dev docker0 up$' "$2"; then
  grep -v '^link set dev docker0 up$' "$2" >"$2.dark"
  exec "$real" -batch "$2.dark"
fi
exec "$real" "$@"
WRAPPER
chmod +x /run/dark/ip"""))
    before = box.snapshot()
    result = box.run("NETGEN_VERIFY_WAIT=1 PATH=/run/dark:$PATH " + script("docker0", "up"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL host/docker0 carrier: want up, have down" in result.stderr
    assert "1 check failed after building the lab" in result.stderr
    assert box.snapshot() == before


SYSCTL_LAB = """from netgen import Lab
lab = Lab("@NAME@")
ns = lab.netns("@NAME@-ns")
lab.host.sysctl("net.ipv4.ip_default_ttl", 99)
"""


def test_5_a_host_sysctl_goes_back_only_if_unchanged_and_last_lab_restores(box, tmp_path):
    a = compiled(tmp_path, SYSCTL_LAB.replace("@NAME@", "a"), "a")
    b = compiled(tmp_path, SYSCTL_LAB.replace("@NAME@", "b"), "b")
    ttl = "cat /proc/sys/net/ipv4/ip_default_ttl"
    ok(box.run("sysctl -qw net.ipv4.ip_default_ttl=64"))
    ok(box.run(f"bash {a}/up.sh && bash {b}/up.sh"))
    down_a = ok(box.run(f"bash {a}/down.sh"))
    assert "sysctl net.ipv4.ip_default_ttl left at 99: lab b sets it too" in down_a.stdout
    assert ok(box.run(ttl)).stdout.strip() == "99"  # b is still up: its verify still passes
    ok(box.run(f"bash {b}/verify.sh"))
    down_b = ok(box.run(f"bash {b}/down.sh"))
    assert "sysctl net.ipv4.ip_default_ttl back to 64" in down_b.stdout
    assert ok(box.run(ttl)).stdout.strip() == "64"
    # changed by someone after up: down leaves the new value
    ok(box.run(f"bash {a}/up.sh && sysctl -qw net.ipv4.ip_default_ttl=77"))
    down = ok(box.run(f"bash {a}/down.sh"))
    assert "left at 77: changed since the lab set it to 99" in down.stdout
    assert ok(box.run(ttl)).stdout.strip() == "77"
    assert ok(box.run("find /run/netgen -type f ! -name '*.lock' ! -name '*.log'")).stdout == ""


def test_7_down_leaves_what_up_refused(box):
    ok(box.run("ip link add br-foreign type bridge && ip link add veth-nginx-1 type veth peer name theirs && "
               "ip link set veth-nginx-1 master br-foreign"))
    ok(box.run("ip netns add nginx-2 && ip link add hostlink type veth peer name eth0 netns nginx-2"))
    before = box.snapshot()
    assert box.run(script("docker0", "up")).returncode == 1
    down = ok(box.run(script("docker0", "down")))
    assert "host/veth-nginx-1: left alone, not made by this lab" in down.stderr
    assert "netns nginx-2: left alone, not made by this lab" in down.stderr
    assert box.snapshot() == before  # theirs and hostlink (whose peer is in nginx-2) are still there


def test_8_up_stops_when_it_cannot_read_the_host(box):
    ok(box.run(r"""mkdir -p /run/blind && cat > /run/blind/ip <<'WRAPPER'
#!/bin/bash
if [[ " $* " == *" -j -d -batch - "* && ! -e /run/blind/once ]]; then touch /run/blind/once; exit 1; fi
exec /usr/sbin/ip "$@"
WRAPPER
chmod +x /run/blind/ip; sysctl -qw net.ipv4.ip_forward=0"""))
    before = box.snapshot()
    result = box.run("PATH=/run/blind:$PATH " + script("docker_nat", "up"))
    assert result.returncode == 2
    assert "could not read the live state of the host" in result.stderr and "nothing was changed" in result.stderr
    assert box.snapshot() == before
    # no record of a value never read
    assert ok(box.run("find /run/netgen -type f ! -name '*.lock' ! -name '*.log'")).stdout == ""


def test_8_a_killed_up_leaves_scratch_the_next_run_removes(box):
    ok(box.run(SLOW))
    up = _start_up(box, script("docker0", "up"), "PATH=/run/slow:$PATH")
    for _ in range(200):
        if box.run("test -e /run/slow/reached").returncode == 0:
            break
        time.sleep(0.05)
    os.killpg(up.pid, signal.SIGKILL)
    up.wait()
    time.sleep(1.5)  # the batch it started finishes
    assert ok(box.run("ls -d /run/netgen/run.docker0.* | wc -l")).stdout.strip() != "0"
    ok(box.run(script("docker0", "down")))
    assert ok(box.run("ls /run/netgen | grep -v '[.]lo[cg]k*$' || true")).stdout == ""  # no record, no scratch
    assert ok(box.run("ip netns list; ip -br link | grep -v '^lo ' || true")).stdout == ""


def test_8_a_pair_made_again_is_reachable_at_once(box):
    """nginx-2 had talked to nginx-1; up makes nginx-1 again (new MACs): nginx-2's neighbour entry for it would
    point at a MAC that is gone for tens of seconds, so up flushes the entries for the addresses it made."""
    ok(box.run(script("docker0", "up")))
    ok(box.run("ip netns exec nginx-2 ping -c1 -W1 172.17.0.2 && ip netns del nginx-1"))
    ok(box.run(script("docker0", "up")))
    ok(box.run("ip netns exec nginx-2 ping -c1 -W2 172.17.0.2"))


# An ip that takes its time when up reads the host's carriers for its final check (ip -j link show, no batch).
SLOW_FINAL_CHECK = r"""
mkdir -p /run/slow && cat > /run/slow/ip <<'WRAPPER'
#!/bin/bash
real=$(PATH=/usr/sbin:/sbin:/usr/bin command -v ip)
if [[ " $* " == *" link show"* && " $* " != *" -batch "* && -e /run/netns/nginx-2 ]]; then touch /run/slow/reached; sleep 1; fi
exec "$real" "$@"
WRAPPER
chmod +x /run/slow/ip
"""  # noqa: E501  (shell)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("group", [False, True], ids=["script", "group"])
def test_4_a_signal_during_the_final_check_undoes_the_run(box, sig, group):
    ok(box.run(SLOW_FINAL_CHECK))
    before = box.snapshot()
    up = _start_up(box, script("docker0", "up"), "PATH=/run/slow:$PATH")
    for _ in range(200):
        if box.run("test -e /run/slow/reached").returncode == 0:
            break
        time.sleep(0.05)
    if group:
        os.killpg(up.pid, sig)
    else:
        ok(box.run(f"pkill -o -{sig.name[3:]} -f '^bash {REPO}/out/docker0/up.sh'"))
    code, err = _exit_code(box)
    up.wait(timeout=10)
    assert code == 128 + sig.value, err
    assert "undoing the" in err
    assert box.snapshot() == before
