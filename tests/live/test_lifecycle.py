"""Issue-3 promises, live: convergence, drift, signals, SIGKILL then down, the lock, a 50-namespace lab."""

import re
import signal
import subprocess
import time

import pytest
from helpers import EXAMPLES, FAILING_IP, REPO, ip_changes, ok, script
from sandbox import KILL_UP_SH

pytestmark = pytest.mark.live


def built(sandbox, example="docker0"):
    ok(sandbox.run(script(example, "up")))


def test_up_on_a_partly_built_lab_makes_only_what_is_missing(sandbox):
    built(sandbox)
    # (nginx-2's service ended first: a process keeps a deleted namespace, and its veth, alive)
    ok(sandbox.run("pkill -f 'hello from nginx-[2]'; sleep 0.2; ip netns del nginx-2; "
                   "ip -n nginx-1 addr del 172.17.0.2/16 dev eth0; "
                   "ip -n nginx-1 link set lo down"))
    result = ok(sandbox.run(script("docker0", "up")))
    # nginx-2: namespace, its veth, port, up (host); lo, eth0 up, address, route (nginx-2); nginx-1: lo, address
    assert "host: 4 changes" in result.stdout and "nginx-1: 3 changes" in result.stdout
    assert "nginx-2: 4 changes" in result.stdout
    ok(sandbox.run(script("docker0", "verify") + " --absent; test $? = 1"))
    verify = sandbox.run(f"NETGEN_VERIFY_WAIT=1 {script('docker0', 'verify')}")
    fails = [line for line in verify.stdout.splitlines() if line.startswith("FAIL")]
    assert fails == []  # nginx-2's web service too: it ran on in the deleted namespace, and up started it again


def test_the_bridge_comes_up_in_the_hosts_last_batch_and_up_brings_it_up_again(sandbox):
    result = ok(sandbox.run(script("docker0", "up")))
    reports = [line.split(":")[1].strip() for line in result.stdout.splitlines() if re.search(r": \d+ changes?$", line)]
    assert reports == ["host", "nginx-1", "nginx-2", "host"]  # the last: docker0 up, once its ports are in place
    ok(sandbox.run("ip link set docker0 down"))
    again = ok(sandbox.run(script("docker0", "up")))
    assert again.stdout.splitlines()[:-1] == ["up.sh: host: 1 change"]
    assert "ok   host/docker0 state: up" in sandbox.run(script("docker0", "verify")).stdout


DRIFT = [
    ("ip -n nginx-1 addr del 172.17.0.2/16 dev eth0",
     "FAIL nginx-1/eth0 address 172.17.0.2/16: want present, have absent"),
    ("ip -n nginx-2 link set eth0 down", "FAIL nginx-2/eth0 state: want up, have down"),
    ("ip link add br-x type bridge && ip link set veth-nginx-1 master br-x",
     "FAIL host/veth-nginx-1 master: want docker0, have br-x"),
    ("ip -n nginx-2 route del default", "FAIL nginx-2 route default: want via 172.17.0.1 dev eth0, have absent"),
    ("ip netns del nginx-1", "FAIL nginx-1 netns: want present, have absent"),
    ("ip link set docker0 nomaster; ip link set veth-nginx-2 nomaster",
     "FAIL host/veth-nginx-2 master: want docker0, have none"),
]


@pytest.mark.parametrize("change,line", DRIFT, ids=[d[1].split(":")[0][5:] for d in DRIFT])
def test_verify_names_each_drift_exactly(sandbox, change, line):
    built(sandbox)
    ok(sandbox.run(change))
    result = sandbox.run(f"NETGEN_VERIFY_WAIT=1 {script('docker0', 'verify')}")
    assert result.returncode == 1
    assert line in result.stdout.splitlines()


def test_up_refuses_a_port_on_another_bridge_and_an_address_on_another_link(sandbox):
    built(sandbox)
    ok(sandbox.run("ip link add br-x type bridge && ip link set veth-nginx-1 master br-x && "
                   "ip -n nginx-2 addr del 172.17.0.3/16 dev eth0 && "
                   "ip -n nginx-2 link add other type veth peer name other2 && "
                   "ip -n nginx-2 addr add 172.17.0.3/16 dev other"))
    before = sandbox.settled_snapshot()  # docker0 lost a port: the kernel recomputes its state
    result = sandbox.run(script("docker0", "up"))
    assert result.returncode == 1
    assert "up.sh: host/veth-nginx-1 master: want docker0, have br-x" in result.stderr
    assert "up.sh: nginx-2/eth0 address 172.17.0.3/16: want present, have on other" in result.stderr
    assert "nothing was changed: 2 objects" in result.stderr
    assert sandbox.snapshot() == before


def test_verify_absent_and_tap(sandbox):
    absent = sandbox.run(script("docker0", "verify") + " --absent")
    assert absent.returncode == 0 and "ok   host/docker0 kind: absent" in absent.stdout
    built(sandbox)
    still = sandbox.run(script("docker0", "verify") + " --absent")
    assert still.returncode == 1
    assert "FAIL nginx-1 netns: want absent, have present" in still.stdout
    ok(sandbox.run("pkill -f 'hello from nginx-[1]'"))
    tap = sandbox.run(script("docker0", "verify") + " --tap")
    lines = tap.stdout.splitlines()
    assert lines[0] == "TAP version 13" and lines[1].startswith("1..")
    assert "ok 1 - nginx-1 netns: present" in lines
    assert any(line.startswith("not ok ") and "nginx-1 service web: want running, have stopped" in line
               for line in lines)
    assert sandbox.run(script("docker0", "verify") + " --bogus").returncode == 2


# An `ip` that announces each batch and then takes its time, so that a signal arrives while up is mid-way.
SLOW_IP = r"""
mkdir -p /run/slow-ip && cat > /run/slow-ip/ip <<'WRAPPER'
#!/bin/bash
real=$(PATH=/usr/sbin:/sbin:/usr/bin command -v ip)
if [[ " $* " == *" -batch "* && " $* " != *" -batch - "* ]]; then  # up's own batches, not its reading
  n=$(( $(cat /run/slow-ip/count 2>/dev/null || echo 0) + 1 )); echo $n > /run/slow-ip/count
  [[ $n == @AT@ ]] && { touch /run/slow-ip/reached; sleep 1; }
fi
exec "$real" "$@"
WRAPPER
chmod +x /run/slow-ip/ip; rm -f /run/slow-ip/count /run/slow-ip/reached
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("at", [1, 2, 3])
def test_signal_during_up_undoes_this_run(sandbox, sig, at):
    before = sandbox.snapshot()
    ok(sandbox.run(SLOW_IP.replace("@AT@", str(at))))
    up = subprocess.Popen([*sandbox.enter, "env",
                           "PATH=/run/slow-ip:/usr/sbin:/usr/bin:/sbin:/bin",
                           "NETGEN_JOBS=1",  # one batch at a time: counted in order
                           "bash", f"{REPO}/out/docker0/up.sh"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(100):
        if sandbox.run("test -e /run/slow-ip/reached").returncode == 0:
            break
        time.sleep(0.05)
    up.send_signal(sig)
    out, err = up.communicate(timeout=60)
    assert up.returncode == (130 if sig == signal.SIGINT else 143), (out, err)
    assert f"interrupted by SIG{sig.name[3:]}" in err and "undoing the" in err
    assert sandbox.snapshot() == before


# The same wrapper idea as FAILING_IP, but at line @K@ the script itself is SIGKILLed: no rollback can run.
KILLING_IP = FAILING_IP.replace('echo "RTNETLINK answers: Operation not permitted (injected)" >&2',
                                KILL_UP_SH + "exit 1")


@pytest.mark.parametrize("example", EXAMPLES)
def test_down_after_up_killed_at_any_point_leaves_nothing(sandbox, example):
    before = sandbox.snapshot()
    ok(sandbox.run(script(example, "up")))
    total = ip_changes(sandbox, example)
    ok(sandbox.run(script(example, "down")))
    for k in range(total + 1):
        killed = sandbox.run(KILLING_IP.replace("@K@", str(k)) + "rm -f /run/failing-ip/last; "
                             + f"NETGEN_JOBS=1 PATH=/run/failing-ip:$PATH {script(example, 'up')}")
        assert killed.returncode != 0 or k == total
        down = ok(sandbox.run(script(example, "down")))
        last = sandbox.run("cat /run/failing-ip/last 2>/dev/null").stdout.split()
        if last[:2] == ["netns", "add"]:
            # ip itself killed between the line that makes a namespace and the next, which marks it: the namespace
            # carries no mark of the lab (nor of anyone), so down leaves it and names it; --force removes it
            assert f"netns {last[2]}: left alone, not made by this lab" in down.stderr, down.stderr
            ok(sandbox.run(script(example, "down") + " --force"))
        assert sandbox.snapshot() == before, f"{example}: down after up was killed at change {k + 1}"


def test_two_ups_at_once_never_interleave(sandbox):
    ok(sandbox.run(SLOW_IP.replace("@AT@", "1")))
    slow = "PATH=/run/slow-ip:$PATH "
    both = ok(sandbox.run(f"({slow}{script('docker0', 'up')} > /run/a 2>&1; echo $? >> /run/a) & sleep 0.3; "
                          f"{script('docker0', 'up')} > /run/b 2>&1; echo $? >> /run/b; wait; cat /run/a; echo ---; "
                          "cat /run/b"))
    first, second = both.stdout.split("---\n")
    assert first.rstrip().endswith("0") and "is up (" in first
    assert second.rstrip().endswith("0") and "already up; nothing changed" in second  # it waited its turn


def test_a_second_run_gives_up_after_the_lock_wait(sandbox):
    ok(sandbox.run(SLOW_IP.replace("@AT@", "1")))
    both = ok(sandbox.run(f"(PATH=/run/slow-ip:$PATH {script('docker0', 'up')} >/dev/null 2>&1 &) ; sleep 0.3; "
                          f"NETGEN_LOCK_WAIT=0 {script('docker0', 'up')}; echo rc=$?"))
    assert "rc=2" in both.stdout
    assert "lab docker0 is in use by another run" in both.stderr


BIG = REPO / "tests" / "labs" / "star.py"


def test_a_lab_of_60_namespaces_lives_and_rolls_back(sandbox, tmp_path):
    from netgen.pipeline import compile_lab, write_scripts

    write_scripts(compile_lab(str(BIG)), str(tmp_path))
    before = sandbox.snapshot()
    up = ok(sandbox.run(f"bash {tmp_path}/up.sh"))
    total = int(up.stdout.rsplit("(", 1)[1].split()[0])
    assert len(re.findall(r": \d+ changes?\n", up.stdout)) == 62  # one ip -batch per namespace, two for the host
    ok(sandbox.run(f"bash {tmp_path}/verify.sh"))
    assert "nothing changed" in ok(sandbox.run(f"bash {tmp_path}/up.sh")).stdout
    ok(sandbox.run(f"bash {tmp_path}/down.sh"))
    assert sandbox.snapshot() == before
    for k in (0, 1, total // 3, total // 2, total - 1):
        failed = sandbox.run(FAILING_IP.replace("@K@", str(k))
                             + f"NETGEN_JOBS=1 PATH=/run/failing-ip:$PATH bash {tmp_path}/up.sh")
        assert failed.returncode == 1 and sandbox.snapshot() == before, k


@pytest.fixture
def external_lab(tmp_path):
    from netgen.pipeline import compile_lab, write_scripts

    write_scripts(compile_lab(str(REPO / "tests" / "labs" / "external.py")), str(tmp_path))
    return tmp_path


# A bridge that exists before the lab, with an address. The kernel recomputes a bridge's carrier, MAC and offload
# sizes as ports come and go, so these tests compare snapshots without them.
EXTERNAL_BRIDGE = "ip link add br-ext type bridge && ip addr add 10.50.0.1/24 dev br-ext && ip link set br-ext up"


def test_an_external_bridge_is_used_and_survives_down_and_sysctls_come_back(sandbox, external_lab):
    ok(sandbox.run(EXTERNAL_BRIDGE + " && sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0"))
    before = sandbox.snapshot(carrier=False)
    up = ok(sandbox.run(f"bash {external_lab}/up.sh"))
    assert "lab external is up" in up.stdout
    verify = ok(sandbox.run(f"bash {external_lab}/verify.sh"))
    assert "ok   host sysctl net.ipv4.ip_forward: 1" in verify.stdout
    assert "ok   host/ext-c1 master: br-ext" in verify.stdout
    assert "nothing changed" in ok(sandbox.run(f"bash {external_lab}/up.sh")).stdout
    down = ok(sandbox.run(f"bash {external_lab}/down.sh"))
    assert "host: sysctl net.ipv4.ip_forward back to 0" in down.stdout
    assert sandbox.snapshot(carrier=False) == before  # br-ext and its address stay; forwarding is off again
    absent = ok(sandbox.run(f"bash {external_lab}/verify.sh --absent"))
    assert "br-ext" not in absent.stdout


def test_a_missing_external_bridge_stops_up_before_any_change(sandbox, external_lab):
    before = sandbox.snapshot()
    result = sandbox.run(f"bash {external_lab}/up.sh")
    assert result.returncode == 1
    assert "up.sh: host/br-ext kind: want bridge, have absent (external: the lab uses it as it is)" in result.stderr
    assert sandbox.snapshot() == before


def test_a_failed_up_puts_host_sysctls_back(sandbox, external_lab):
    ok(sandbox.run(EXTERNAL_BRIDGE + " && sysctl -qw net.ipv4.ip_forward=0"))
    before = sandbox.snapshot(carrier=False)
    # The host's 9 ip lines (8, and the mark of c1) and its sysctls are done; c1's batch fails after 2 of its lines.
    failed = sandbox.run(FAILING_IP.replace("@K@", "11")
                         + f"NETGEN_JOBS=1 PATH=/run/failing-ip:$PATH bash {external_lab}/up.sh")
    assert failed.returncode == 1
    assert "undo in host: sysctl net.ipv4.ip_forward back to 0" in failed.stderr
    assert sandbox.snapshot(carrier=False) == before
    # no record, no scratch
    assert ok(sandbox.run("find /run/netgen -type f ! -name '*.lock' ! -name '*.log'")).stdout == ""


def test_verify_tells_swapped_lookalike_veth_pairs_apart(sandbox):
    """Every end below is ifindex 2 with iflink 2: only the peer's namespace shows ns1 is joined to ns4."""
    ok(sandbox.run("for n in ns1 ns2 ns3 ns4; do ip netns add $n; ip -n $n link set lo up; done && "
                   "ip -n ns1 link add veth0 type veth peer name veth1 netns ns4 && "
                   "ip -n ns3 link add veth0 type veth peer name veth1 netns ns2"))
    result = sandbox.run(f"NETGEN_VERIFY_WAIT=0 {script('veth_pair', 'verify')}")
    assert "FAIL ns1/veth0 peer: want ns2/veth1, have a link in ns4" in result.stdout
    assert "FAIL ns2/veth1 peer: want ns1/veth0, have a link in ns3" in result.stdout


TWO_NAMESPACES = """from netgen import Lab
lab = Lab("pair")
a, b = lab.netns("a"), lab.netns("b", adopt=True)
lab.veth(a.port("e0", "10.0.0.1/24"), b.port("e0", "10.0.0.2/24"))
b.sysctl("net.ipv4.ip_forward", 1)
b.sysctl(@KEY@, 1)
"""


@pytest.fixture
def pair_lab(tmp_path):
    """Two namespaces joined by a veth; b sets ip_forward and one more sysctl (KEY, rewritten by the test), and
    may exist before up (adopt=True)."""
    from netgen.pipeline import compile_lab, write_scripts

    def compiled(key="net.ipv4.conf.all.forwarding"):
        (tmp_path / "pair.py").write_text(TWO_NAMESPACES.replace("@KEY@", repr(key)))
        write_scripts(compile_lab(str(tmp_path / "pair.py")), str(tmp_path / "out"))
        return tmp_path / "out"
    return compiled


def test_a_sysctl_this_kernel_lacks_stops_up_and_undoes_it(sandbox, pair_lab):
    scripts = pair_lab("net.ipv4.ip_froward")  # a typo: the compiler cannot know the kernel of the host
    before = sandbox.snapshot()
    result = sandbox.run(f"bash {scripts}/up.sh")
    assert result.returncode == 1
    assert "up.sh: in b, could not set sysctl net.ipv4.ip_froward to 1" in result.stderr
    assert "/proc/sys/net/ipv4/ip_froward" in result.stderr  # the shell says why
    assert "undo in host: netns del b" in result.stderr
    assert sandbox.snapshot() == before


# An nsenter first on PATH that cannot enter namespace b to run its batch (reading it still works), and an ip
# that applies the first line of b's batch and is then killed: the two ways a batch can end without ip's
# "Command failed" line.
NSENTER_FAILS = r"""
mkdir -p /run/inject && cat > /run/inject/nsenter <<'WRAPPER'
#!/bin/bash
if [[ $1 == --net=/run/netns/b && $2 == ip && $3 == -batch ]]; then
  echo "nsenter: cannot open /run/netns/b: No such file or directory (injected)" >&2
  exit 1
fi
exec /usr/bin/nsenter "$@"
WRAPPER
chmod +x /run/inject/nsenter
"""
IP_KILLED = r"""
mkdir -p /run/inject && cat > /run/inject/ip <<'WRAPPER'
#!/bin/bash
real=$(PATH=/usr/sbin:/sbin:/usr/bin command -v ip)
if [[ $1 == -batch && $2 != - ]] && grep -q '^addr add 10.0.0.2/24' "$2"; then
  head -n 1 "$2" | "$real" -batch -
  kill -KILL $$
fi
exec "$real" "$@"
WRAPPER
chmod +x /run/inject/ip
"""


@pytest.mark.parametrize("wrapper, message", [
    (NSENTER_FAILS, "up.sh: in b, the batch did not run: the namespace could not be entered"),
    (IP_KILLED, "up.sh: in b, ip was ended by signal 9"),
])
def test_a_batch_that_ends_without_saying_where_is_undone_whole(sandbox, pair_lab, wrapper, message):
    scripts = pair_lab()
    ok(sandbox.run("ip netns add b && ip -n b link set lo up"))  # there before the lab: rollback leaves it so
    before = sandbox.snapshot()
    result = sandbox.run(wrapper + f"PATH=/run/inject:$PATH bash {scripts}/up.sh")
    assert result.returncode == 1
    assert message in result.stderr
    assert sandbox.snapshot() == before
    ok(sandbox.run(f"bash {scripts}/up.sh"))  # nothing of the failed run is in the way
    ok(sandbox.run(f"bash {scripts}/verify.sh"))
