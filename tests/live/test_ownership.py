"""Issue 23, live: ownership that cannot be fooled. A lab removes and ends only what its own up made, whatever
happened in between: runs killed at any point, objects made by another tool in a race or after a kill, a record
damaged by hand, a full state directory. Each test runs in a sandbox with its own PID namespace, so that what down
ends and what a signal reaches are the sandbox's processes only."""

import os
import re
import signal
import subprocess
import time

import pytest
from helpers import ok, script
from sandbox import KILL_UP_SH, Sandbox

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


def record(box, lab: str) -> str:
    return box.run(f"cat /run/netgen/{lab}.made 2>/dev/null").stdout


# Another tool's objects: a bridge br0 with an address, and a namespace ns1 with a process in it.
OTHER_TOOL = ("ip link add br0 type bridge && ip addr add 10.66.0.1/24 dev br0 && ip netns add ns1 && "
              "(ip netns exec ns1 sleep 600 >/dev/null 2>&1 &)")


def other_tool_intact(box) -> None:
    assert box.run("ip -br addr show br0").stdout.split()[2:3] == ["10.66.0.1/24"], "br0 was taken"
    assert box.run("ip netns list").stdout.split()[:1] == ["ns1"], "ns1 was taken"
    assert box.run("pgrep -xf 'sleep 600'").returncode == 0, "the other tool's process was killed"


# An ip that SIGKILLs up.sh when up's first batch (the host's) is about to run: the record is written, nothing is
# made yet.
KILL_AT_FIRST_BATCH = r"""
mkdir -p /run/kill && cat > /run/kill/ip <<'WRAPPER'
#!/bin/bash
real=$(PATH=/usr/sbin:/sbin:/usr/bin command -v ip)
if [[ $1 == -batch && $2 != - ]]; then
""" + KILL_UP_SH + r"""
  exit 1
fi
exec "$real" "$@"
WRAPPER
chmod +x /run/kill/ip
"""


def test_1_a_killed_up_claims_nothing_another_tool_makes_later(box):
    before = box.snapshot()
    ok(box.run(KILL_AT_FIRST_BATCH))
    result = box.run("PATH=/run/kill:$PATH " + script("bridge", "up"))
    assert result.returncode != 0
    ok(box.run(OTHER_TOOL))
    down = box.run(script("bridge", "down"))
    assert down.returncode == 0, down.stderr
    other_tool_intact(box)
    assert "host/br0: left alone, not made by this lab" in down.stderr
    assert "netns ns1: left alone, not made by this lab" in down.stderr
    ok(box.run("pkill -xf 'sleep 600'; ip netns del ns1; ip link del br0"))
    assert box.settled_snapshot() == before
    assert record(box, "bridge") == ""


def test_1_a_bridge_made_in_the_race_before_the_batch_is_never_claimed(box):
    # another tool makes br0 (with an address) just as up's host batch starts: up fails on "File exists"
    ok(box.run(r"""mkdir -p /run/race && cat > /run/race/ip <<'WRAPPER'
#!/bin/bash
real=$(PATH=/usr/sbin:/sbin:/usr/bin command -v ip)
if [[ $1 == -batch && $2 != - && ! -e /run/race/done ]]; then
  touch /run/race/done
  "$real" link add br0 type bridge && "$real" addr add 10.66.0.1/24 dev br0
fi
exec "$real" "$@"
WRAPPER
chmod +x /run/race/ip"""))
    up = box.run("PATH=/run/race:$PATH " + script("bridge", "up"))
    assert up.returncode == 1 and "File exists" in up.stderr
    assert record(box, "bridge") == ""  # a rolled-back up leaves no record behind
    down = ok(box.run(script("bridge", "down")))
    assert "host/br0: left alone, not made by this lab" in down.stderr
    assert box.run("ip -br addr show br0").stdout.split()[2:3] == ["10.66.0.1/24"]


def test_1_a_name_for_the_hosts_namespace_after_a_killed_up_is_refused(box):
    ok(box.run(KILL_AT_FIRST_BATCH))
    assert box.run("PATH=/run/kill:$PATH " + script("veth_pair", "up")).returncode != 0
    ok(box.run("ip netns attach ns1 1"))
    up = box.run(script("veth_pair", "up"))
    assert up.returncode == 1 and "netns ns1: exists" in up.stderr
    assert "veth0" not in box.run("ip -br link").stdout  # nothing of the lab went onto the host
    assert "192.168.10.200" not in box.run("ip -br addr").stdout


# An ip that SIGKILLs down.sh at its @K@-th ip call.
KILL_DOWN_AT = r"""
mkdir -p /run/kd && cat > /run/kd/ip <<'WRAPPER'
#!/bin/bash
real=$(PATH=/usr/sbin:/sbin:/usr/bin command -v ip)
n=$(( $(cat /run/kd/count 2>/dev/null || echo 0) + 1 )); echo $n > /run/kd/count
if (( n == @K@ )); then
  p=$PPID
  while ((p > 1)); do
    parent=$(ps -o ppid= -p "$p") || break
    if [[ $(tr '\0' ' ' </proc/$p/cmdline) == "bash "*/down.sh* ]]; then kill -KILL "$p"; fi
    p=$((parent))
  done
  exit 1
fi
exec "$real" "$@"
WRAPPER
chmod +x /run/kd/ip; rm -f /run/kd/count
"""


def test_2_a_killed_down_run_again_leaves_no_record(box):
    before = box.snapshot()
    for k in (1, 2, 3):
        ok(box.run(script("docker0", "up")))
        box.run(KILL_DOWN_AT.replace("@K@", str(k)) + "PATH=/run/kd:$PATH " + script("docker0", "down"))
        ok(box.run(script("docker0", "down")))
        assert record(box, "docker0") == "", f"down killed at its ip call {k}, then down"
        assert box.snapshot() == before


def test_2_a_down_after_objects_were_deleted_by_hand_leaves_no_record(box):
    for by_hand in ("ip netns del nginx-1", "ip link del veth-nginx-2", "ip link del docker0"):
        ok(box.run(script("docker0", "up")))
        ok(box.run("pkill -f 'hello from nginx-[1]'; " + by_hand))
        ok(box.run(script("docker0", "down")))
        assert record(box, "docker0") == "", by_hand


def test_2_namespaces_an_admin_makes_after_a_lab_went_are_never_the_labs(box):
    # the lab's namespaces go by hand; the kernel may give the admin's new ones the same inode numbers
    ok(box.run(script("docker0", "up")))
    ok(box.run("pkill -f 'hello from nginx-[12]'; sleep 0.3; ip netns del nginx-1; ip netns del nginx-2; sleep 0.3; "
               "ip netns add nginx-1 && ip netns add nginx-2 && (ip netns exec nginx-1 sleep 600 >/dev/null 2>&1 &)"))
    down = ok(box.run(script("docker0", "down")))
    assert "netns nginx-1: left alone, not made by this lab" in down.stderr
    assert ok(box.run("ip netns list")).stdout.split() == ["nginx-2", "nginx-1"] or \
        sorted(ok(box.run("ip netns list")).stdout.split()) == ["nginx-1", "nginx-2"]
    assert box.run("pgrep -xf 'sleep 600'").returncode == 0


def test_3_a_failed_reading_after_the_batches_never_ends_in_a_record_that_lacks_what_up_made(box):
    # ip -j link show (no batch) fails the first time it runs once up has made the namespaces
    ok(box.run(r"""mkdir -p /run/blind && cat > /run/blind/ip <<'WRAPPER'
#!/bin/bash
if [[ " $* " == *" link show"* && " $* " != *" -batch "* && -e /run/netns/nginx-1 && ! -e /run/blind/once ]]; then
  touch /run/blind/once; echo "injected failure" >&2; exit 1
fi
exec /usr/sbin/ip "$@"
WRAPPER
chmod +x /run/blind/ip; sysctl -qw net.ipv4.ip_forward=0"""))
    before = box.snapshot()
    up = box.run("PATH=/run/blind:$PATH " + script("docker_nat", "up"))
    if up.returncode == 0:
        ok(box.run(script("docker_nat", "verify")))
    ok(box.run(script("docker_nat", "down")))
    assert box.snapshot() == before, up.stdout + up.stderr
    ok(box.run(script("docker_nat", "up")))  # nothing of the first run is in the way
    ok(box.run(script("docker_nat", "down")))


def test_3_ip_failing_after_the_last_line_of_the_host_batch_rolls_back(box):
    ok(box.run(r"""mkdir -p /run/late && cat > /run/late/ip <<'WRAPPER'
#!/bin/bash
if [[ $1 == -batch && $2 != - && ! -e /run/late/once ]] && grep -q '^netns add' "$2"; then
  touch /run/late/once; /usr/sbin/ip "$@"; echo "injected failure after the last line" >&2; exit 1
fi
exec /usr/sbin/ip "$@"
WRAPPER
chmod +x /run/late/ip"""))
    before = box.snapshot()
    up = box.run("PATH=/run/late:$PATH " + script("docker0", "up"))
    assert up.returncode == 1, up.stdout + up.stderr
    assert "unbound variable" not in up.stderr
    assert box.snapshot() == before
    assert record(box, "docker0") == ""


def write_record(box, lab: str, text: str) -> None:
    ok(box.run(f"mkdir -p /run/netgen && chmod 700 /run/netgen && printf '%s' {shq(text)} > /run/netgen/{lab}.made"))


def shq(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.mark.parametrize("line", ["netns/$(touch /run/pwned)/ 1", "link/host/$(touch${IFS}/run/pwned) 5",
                                  "service/x/$(touch /run/pwned) 1:1", "netns $(touch /run/pwned) 5",
                                  "link host $(touch${IFS}/run/pwned)", "service ns1 a[$(touch /run/pwned)] 5 5"])
def test_4_a_record_line_is_never_run_as_code(box, line):
    write_record(box, "veth_pair", line + "\n")
    for command in (script("veth_pair", "up") + " --plan", script("veth_pair", "up"), script("veth_pair", "down"),
                    script("veth_pair", "verify")):
        result = box.run(command)
        assert box.run("test -e /run/pwned").returncode == 1, command
        assert re.search(r"/run/netgen/veth_pair\.made:\d+: .*never used", result.stderr), (command, result.stderr)


def test_4_services_the_lab_does_not_declare_and_pid_1_are_never_signalled(box):
    ok(box.run("(setsid sleep 600 >/dev/null 2>&1 &) ; sleep 0.2"))
    pid = ok(box.run("pgrep -xf 'sleep 600'")).stdout.split()[0]
    start = ok(box.run(f"cut -d' ' -f22 /proc/{pid}/stat")).stdout.strip()
    ok(box.run(script("docker0", "up")))
    text = record(box, "docker0")
    # in the form of today's record and of the one before it: a service the lab does not declare, and pid 1
    write_record(box, "docker0", text + f"service nginx-1 ssh {pid} {start}\nservice nginx-1 web 1 1\n"
                 f"service/nginx-1/ssh {pid}:{start}\nservice/nginx-1/web2 1:1\n\n   \n")
    down = box.run(script("docker0", "down"))
    assert box.run(f"kill -0 {pid}").returncode == 0, "an undeclared service was signalled"
    assert "/run/netgen/docker0.made:" in down.stderr
    assert down.returncode == 1  # it names what it left
    assert box.run("ip netns list").stdout == ""  # what it could prove is the lab's went
    ok(box.run(script("docker0", "down") + " --force"))
    assert record(box, "docker0") == ""


@pytest.mark.parametrize("text", ["\n", "   \n", "\t\n"])
def test_4_a_blank_line_is_named_and_down_force_works(box, text):
    ok(box.run(script("veth_pair", "up")))
    write_record(box, "veth_pair", record(box, "veth_pair") + text)
    up = box.run(script("veth_pair", "up"))
    assert "bad array subscript" not in up.stderr
    down = box.run(script("veth_pair", "down"))
    assert "bad array subscript" not in down.stderr and "veth_pair.made:" in down.stderr
    assert box.run("ip netns list").stdout == ""
    ok(box.run(script("veth_pair", "down") + " --force"))


def test_4_a_record_that_is_a_directory_says_the_way_out(box):
    ok(box.run("mkdir -p /run/netgen/veth_pair.made && chmod 700 /run/netgen"))
    for variant in ("up", "down"):
        result = box.run(script("veth_pair", variant))
        assert result.returncode == 2 and "down.sh --force" in result.stderr, result.stderr
    ok(box.run(script("veth_pair", "down") + " --force"))
    ok(box.run(script("veth_pair", "up")))
    ok(box.run(script("veth_pair", "down")))


ESCAPING_SERVICE = """from netgen import Lab
lab = Lab("svc")
ns = lab.netns("ns1")
ns.service("runaway", "setsid sleep 600 & exec sleep 601")
"""


def test_5_a_rollback_ends_a_services_child_that_left_its_group(box, tmp_path):
    lab = compiled(tmp_path, ESCAPING_SERVICE, "svc")
    # awk fails when up judges what it built, once the service runs: the run is undone
    ok(box.run(r"""mkdir -p /run/bad && cat > /run/bad/awk <<'WRAPPER'
#!/bin/bash
if [[ " $* " == *judge.awk* ]] && pgrep -xf 'sleep 601' >/dev/null; then exit 9; fi
exec /usr/bin/awk "$@"
WRAPPER
chmod +x /run/bad/awk"""))
    before = box.snapshot()
    result = box.run(f"PATH=/run/bad:$PATH bash {lab}/up.sh")
    assert result.returncode != 0 and "undoing the" in result.stderr, result.stderr
    time.sleep(0.5)
    assert box.run("pgrep -f '^sleep 60[01]$'").returncode == 1, "a process of the rolled-back lab is still running"
    assert box.snapshot() == before


def _start_up(box, command: str) -> subprocess.Popen:
    return subprocess.Popen([*box.enter, "bash", "-c", f"trap : HUP INT QUIT TERM; {command} 2>/run/err; "
                             "echo $? >/run/rc"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _exit_code(box) -> int:
    for _ in range(600):
        rc = box.run("cat /run/rc 2>/dev/null").stdout.strip()
        if rc:
            return int(rc)
        time.sleep(0.05)
    raise AssertionError("the script did not end within 30 s")


def test_5_a_signal_to_the_group_while_a_service_starts_leaves_no_service(box, tmp_path):
    lab = compiled(tmp_path, ESCAPING_SERVICE, "svc")
    # a setsid that says when it starts and takes a moment before it runs the service
    ok(box.run(r"""mkdir -p /run/slowsid && cat > /run/slowsid/setsid <<'WRAPPER'
#!/bin/bash
touch /run/slowsid/reached; sleep 0.2
exec /usr/bin/setsid "$@"
WRAPPER
chmod +x /run/slowsid/setsid"""))
    for delay in (0, 0.1, 0.2, 0.3):
        ok(box.run("rm -f /run/slowsid/reached /run/rc"))
        up = _start_up(box, f"PATH=/run/slowsid:$PATH bash {lab}/up.sh")
        for _ in range(200):
            if box.run("test -e /run/slowsid/reached").returncode == 0:
                break
            time.sleep(0.02)
        time.sleep(delay)
        os.killpg(up.pid, signal.SIGTERM)
        code = _exit_code(box)
        up.wait(timeout=10)
        time.sleep(0.3)
        ok(box.run(f"bash {lab}/down.sh"))
        alive = box.run("pgrep -f '^sleep 60[01]$'").returncode == 0
        assert not alive, f"delay {delay}: a service outlived up (exit {code})"
        assert box.run("ip netns list").stdout == ""


def test_6_a_tiny_state_directory_fails_before_any_change_or_rolls_back_whole(box):
    ok(box.run("mkdir -p /run/netgen && mount -t tmpfs -o size=64k,mode=700 tiny /run/netgen"))
    before = box.snapshot()
    up = box.run(script("docker_nat", "up"))
    if up.returncode != 0:
        assert up.returncode in (1, 2), up.stderr
        assert "nothing to undo" not in up.stderr or box.snapshot() == before
        assert box.snapshot() == before, up.stderr
    else:
        ok(box.run(script("docker_nat", "down")))
        assert box.snapshot() == before


def test_6_down_on_a_full_state_directory_removes_the_lab(box):
    before = box.snapshot()
    ok(box.run("mkdir -p /run/netgen && mount -t tmpfs -o size=1m,mode=700 small /run/netgen"))
    ok(box.run(script("docker0", "up")))
    box.run("dd if=/dev/zero of=/run/netgen/filler bs=4k 2>/dev/null")  # until it is full
    down = box.run(script("docker0", "down"))
    assert down.returncode == 0, down.stderr
    assert box.snapshot() == before
    assert record(box, "docker0") == ""


def test_6_an_empty_namespace_file_left_by_a_killed_ip_netns_add(box):
    # what SIGKILL during `ip netns add` leaves: the record names ns1, /run/netns/ns1 is an empty file
    ok(box.run(KILL_AT_FIRST_BATCH))
    assert box.run("PATH=/run/kill:$PATH " + script("veth_pair", "up")).returncode != 0
    ok(box.run("mkdir -p /run/netns && touch /run/netns/ns1"))
    ok(box.run(script("veth_pair", "down") + " --force"))
    ok(box.run("touch /run/netns/ns1"))
    ok(box.run(script("veth_pair", "up")))
    ok(box.run(script("veth_pair", "verify")))
    ok(box.run(script("veth_pair", "down")))
    assert box.run("ls /run/netns").stdout == ""


def test_8_a_process_elsewhere_whose_working_directory_looks_like_the_scratch_never_delays_up(box):
    # a slow first batch; meanwhile another mount namespace holds a process whose cwd has the scratch's path
    ok(box.run(r"""mkdir -p /run/slow && cat > /run/slow/ip <<'WRAPPER'
#!/bin/bash
if [[ $1 == -batch && $2 != - ]]; then touch /run/slow/reached; sleep 1; fi
exec /usr/sbin/ip "$@"
WRAPPER
chmod +x /run/slow/ip"""))
    up = _start_up(box, "NETGEN_STRAGGLER_WAIT=10 PATH=/run/slow:$PATH " + script("docker0", "up"))
    for _ in range(200):
        if box.run("test -e /run/slow/reached").returncode == 0:
            break
        time.sleep(0.02)
    scratch = ok(box.run("ls -d /run/netgen/run.docker0.*")).stdout.split()[0]
    ok(box.run(f"unshare --mount --propagation private bash -c 'mount -t tmpfs x /run/netgen && mkdir -p {scratch} "
               f"&& cd {scratch} && exec setsid sleep 60' >/dev/null 2>&1 & sleep 0.3"))
    start = time.monotonic()
    os.killpg(up.pid, signal.SIGTERM)
    assert _exit_code(box) == 143
    up.wait(timeout=20)
    assert time.monotonic() - start < 6, "up waited for a process it did not start"


# An ip that, at its @K@-th call (counted over up.sh or down.sh: readings and batches alike), fails (@HOW@ =
# fail) or SIGKILLs the script that runs it (@HOW@ = kill).
AT_CALL = r"""
mkdir -p /run/at && cat > /run/at/ip <<'WRAPPER'
#!/bin/bash
real=$(PATH=/usr/sbin:/sbin:/usr/bin command -v ip)
n=$(( $(cat /run/at/count 2>/dev/null || echo 0) + 1 )); echo $n > /run/at/count
if (( n == @K@ )); then
  if [[ @HOW@ == kill ]]; then
    p=$PPID
    while ((p > 1)); do
      parent=$(ps -o ppid= -p "$p") || break
      if [[ $(tr '\0' ' ' </proc/$p/cmdline) == "bash "*/@SCRIPT@* ]]; then kill -KILL "$p"; fi
      p=$((parent))
    done
  fi
  echo "RTNETLINK answers: Operation not permitted (injected at call $n)" >&2
  exit 1
fi
exec "$real" "$@"
WRAPPER
chmod +x /run/at/ip; rm -f /run/at/count
"""


def _calls(box, command: str) -> int:
    """How many times `command` runs ip."""
    ok(box.run(AT_CALL.replace("@K@", "0").replace("@HOW@", "fail").replace("@SCRIPT@", "x")
               + "PATH=/run/at:$PATH " + command))
    return int(ok(box.run("cat /run/at/count")).stdout)


@pytest.mark.parametrize("how", ["fail", "kill"])
def test_fault_injection_at_every_ip_call_of_up_and_down(box, how):
    ok(box.run(OTHER_TOOL.replace("br0", "br-other").replace("ns1", "other")))
    before = box.settled_snapshot()
    example = "docker_nat"
    up_calls = _calls(box, script(example, "up"))
    down_calls = _calls(box, script(example, "down"))
    assert box.snapshot() == before
    for variant, calls in (("up", up_calls), ("down", down_calls)):
        for k in range(1, calls + 1):
            if variant == "down":
                ok(box.run(script(example, "up")))
            injected = AT_CALL.replace("@K@", str(k)).replace("@HOW@", how).replace("@SCRIPT@", f"{variant}.sh")
            box.run(injected + "NETGEN_VERIFY_WAIT=2 PATH=/run/at:$PATH " + script(example, variant))
            box.run(script(example, "down"))  # and a second time: killed runs leave nothing to claim
            down = box.run(script(example, "down"))
            assert down.returncode == 0, down.stderr
            where = f"{how} at ip call {k} of {calls} of {variant}.sh"
            assert record(box, example) == "", where
            assert box.run("pgrep -xf 'sleep 600'").returncode == 0, where
            assert box.settled_snapshot() == before, where


SYSCTL_LAB = """from netgen import Lab
lab = Lab("ttl")
ns = lab.netns("ttl-ns")
lab.host.sysctl("net.ipv4.ip_default_ttl", 99)
"""


@pytest.mark.parametrize("text", ["original 64\nttl 99\n\n", "original $(touch /run/pwned)\nttl 99\n",
                                  "ttl 99\noriginal 64\n", "original 64\nt*l 99\n"])
def test_4_a_damaged_sysctl_record_is_named_and_used_for_nothing(box, tmp_path, text):
    lab = compiled(tmp_path, SYSCTL_LAB, "ttl")
    ok(box.run("sysctl -qw net.ipv4.ip_default_ttl=64"))
    ok(box.run(f"bash {lab}/up.sh"))
    ok(box.run(f"printf '%s' {shq(text)} > /run/netgen/sysctl/net.ipv4.ip_default_ttl"))
    down = box.run(f"bash {lab}/down.sh")
    assert re.search(r"/run/netgen/sysctl/net\.ipv4\.ip_default_ttl:\d+: not a line of a sysctl record", down.stderr)
    assert down.returncode == 1 and "not put back" in down.stderr
    assert box.run("test -e /run/pwned").returncode == 1
    assert ok(box.run("cat /proc/sys/net/ipv4/ip_default_ttl")).stdout.strip() == "99"  # left as it is
    assert box.run("ip netns list").stdout == ""  # the rest went
