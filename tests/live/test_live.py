"""Real labs built from the committed scripts in out/, each inside its own sandbox (needs root)."""

import os
import re
import shlex
import shutil

import pytest
from helpers import EXAMPLES, FAILING_IP, REPO, ip_changes, ok, script, wait_for_web
from sandbox import KILL_UP_SH

pytestmark = pytest.mark.live


# What the seed article shows working, per scenario: commands that must succeed inside the sandbox.
PINGS = {
    "veth_pair": ["ip netns exec ns1 ping -c1 -W2 192.168.10.201", "ip netns exec ns2 ping -c1 -W2 192.168.10.200"],
    "bridge": ["ip netns exec ns1 ping -c1 -W2 192.168.11.201", "ip netns exec ns2 ping -c1 -W2 192.168.11.200"],
    "docker0": ["ip netns exec nginx-2 ping -c1 -W2 172.17.0.2", "ping -c1 -W2 172.17.0.2",
                "ip netns exec nginx-1 ping -c1 -W2 172.17.0.1"],
    "docker_nat": ["ip netns exec nginx-2 ping -c1 -W2 172.17.0.2", "ip netns exec nginx-2 ping -c1 -W2 fd00:17::2",
                   "ping -c1 -W2 fd00:17::3", "ip netns exec nginx-1 ping -c1 -W2 fd00:17::1"],
}


@pytest.mark.parametrize("example", EXAMPLES)
def test_up_verify_ping_down_leaves_sandbox_as_it_was(sandbox, example):
    before = sandbox.snapshot()
    up = ok(sandbox.run(script(example, "up")))
    assert f"lab {example} is up" in up.stdout
    if example in ("docker0", "docker_nat"):
        wait_for_web(sandbox, "nginx-1")
        page = ok(sandbox.run("ip netns exec nginx-2 curl -s --max-time 5 http://172.17.0.2/"))
        assert page.stdout.strip() == "hello from nginx-1"
        ok(sandbox.run("curl -s --max-time 5 http://172.17.0.2/"))  # the host, through its route to docker0
    verify = ok(sandbox.run(script(example, "verify")))
    assert "FAIL" not in verify.stdout and " 0 failed" in verify.stdout
    for command in PINGS[example]:
        ok(sandbox.run(command))

    down = ok(sandbox.run(script(example, "down")))
    assert f"lab {example} is down" in down.stdout
    assert sandbox.snapshot() == before
    after = sandbox.run(script(example, "verify"), env={"NETGEN_VERIFY_WAIT": "0"})
    assert after.returncode == 1
    assert "netns: want present, have absent" in after.stdout


@pytest.mark.parametrize("example", EXAMPLES)
def test_up_twice_changes_nothing_and_down_twice_succeeds(sandbox, example):
    before = sandbox.snapshot()
    ok(sandbox.run(script(example, "up")))
    built = sandbox.settled_snapshot()
    again = ok(sandbox.run(script(example, "up")))
    assert "already up; nothing changed" in again.stdout
    assert sandbox.snapshot() == built
    ok(sandbox.run(script(example, "down")))
    second = ok(sandbox.run(script(example, "down")))
    assert "not present; nothing to remove" in second.stdout
    assert sandbox.snapshot() == before


def test_up_repairs_a_namespace_alone_and_says_what_it_changed(sandbox):
    """When only a namespace needs work (the host has none), its changes are counted and journaled like any."""
    ok(sandbox.run(script("docker0", "up")))
    built = sandbox.settled_snapshot()
    ok(sandbox.run("ip -n nginx-1 link set eth0 down"))  # the kernel drops the default route with it
    again = ok(sandbox.run(script("docker0", "up")))
    assert "nginx-1: 2 changes" in again.stdout and "lab docker0 is up (2 changes)" in again.stdout
    assert sandbox.settled_snapshot() == built
    ok(sandbox.run(script("docker0", "down")))


def test_down_without_up_succeeds(sandbox):
    before = sandbox.snapshot()
    result = ok(sandbox.run(script("docker0", "down")))
    assert "not present" in result.stdout
    assert sandbox.snapshot() == before


@pytest.mark.parametrize("variant, why", [("up", "it changes network namespaces and links"),
                                          ("verify", "it enters network namespaces to read them")])
def test_scripts_refuse_without_root_and_say_why(sandbox, variant, why):
    before = sandbox.snapshot()
    result = sandbox.run(f"setpriv --reuid=65534 --regid=65534 --clear-groups {script('bridge', variant)}")
    assert result.returncode == 2
    assert f"must run as root ({why})" in result.stderr
    assert sandbox.snapshot() == before


def test_up_refuses_without_iproute2(sandbox):
    result = sandbox.run(f"PATH=/nonexistent /bin/bash {REPO}/out/bridge/up.sh")
    assert result.returncode == 2
    assert "iproute2" in result.stderr


def test_verify_exits_2_and_says_so_when_awk_cannot_judge_the_checks(sandbox, tmp_path):
    awk = shutil.which("awk")
    (tmp_path / "awk").write_text(f'#!/bin/bash\ncase " $* " in *judge.awk*) exit 7 ;; esac\nexec {awk} "$@"\n')
    (tmp_path / "awk").chmod(0o755)
    ok(sandbox.run(script("veth_pair", "up")))
    result = sandbox.run(f"PATH={tmp_path}:$PATH " + script("veth_pair", "verify"))
    assert result.returncode == 2
    assert "verify.sh: awk could not compare the checks with the live state (exit 7)" in result.stderr
    assert "checks passed" not in result.stdout


def test_up_reports_every_conflict_and_changes_nothing(sandbox):
    # docker0 taken by a veth, and nginx-1 holds an eth0 that is a bridge: both must be named.
    ok(sandbox.run("ip link add docker0 type veth peer name stray0 && ip netns add nginx-1 && "
                   "ip -n nginx-1 link add eth0 type bridge"))
    before = sandbox.snapshot()
    result = sandbox.run(script("docker0", "up"))
    assert result.returncode == 1
    assert "up.sh: host/docker0: exists (veth), not made by this lab; up does not take it over" in result.stderr
    assert "up.sh: netns nginx-1: exists (present), not made by this lab" in result.stderr
    assert "nginx-1/eth0 kind: want veth, have bridge" in result.stderr
    assert "nothing was changed" in result.stderr
    assert sandbox.snapshot() == before


def test_down_leaves_an_object_of_another_kind_alone(sandbox):
    ok(sandbox.run("ip link add br0 type veth peer name stray0"))
    before = sandbox.snapshot()
    result = ok(sandbox.run(script("bridge", "down")))
    assert "down.sh: host/br0: left alone, a veth where the lab makes a bridge" in result.stderr
    assert sandbox.snapshot() == before


def test_host_links_with_shell_code_in_their_names_are_read_as_names(sandbox):
    """The scripts load what ip reads as bash assignments: a name with quotes and $( ) must stay a name."""
    names = ["a'$(id>&2)'", 'b`id>&2`"']
    ok(sandbox.run(f"ip link add {shlex.quote(names[0])} type veth peer name {shlex.quote(names[1])}"))
    assert all(name in sandbox.run("ip -br link").stdout for name in names)
    before = sandbox.snapshot()
    for step in ("up", "verify", "down"):
        result = ok(sandbox.run(script("bridge", step)))
        assert "uid=" not in result.stdout + result.stderr, step
    assert sandbox.snapshot() == before


def test_down_ends_processes_inside_the_lab(sandbox):
    ok(sandbox.run(script("veth_pair", "up")))
    ok(sandbox.run("(ip netns exec ns1 sleep 300 >/dev/null 2>&1 &)"))
    result = ok(sandbox.run(script("veth_pair", "down")))
    assert re.search(r"^down.sh: ns1: ending pid \d+ \(sleep 300\)$", result.stdout, re.M), result.stdout
    assert sandbox.run("ip netns list").stdout == ""
    ok(sandbox.run(script("veth_pair", "up")))  # and up right after down works


@pytest.mark.parametrize("example", EXAMPLES)
def test_failed_up_undoes_what_it_made_at_every_step(sandbox, example):
    before = sandbox.snapshot()
    ok(sandbox.run(script(example, "up")))
    total = ip_changes(sandbox, example)
    ok(sandbox.run(script(example, "down")))
    assert sandbox.snapshot() == before
    for k in range(total):  # one job at a time, so that the wrapper counts lines in the order up runs them
        result = sandbox.run(FAILING_IP.replace("@K@", str(k))
                             + f"NETGEN_JOBS=1 PATH=/run/failing-ip:$PATH {script(example, 'up')}")
        assert result.returncode == 1, (k, result.stdout, result.stderr)
        assert "ip refused" in result.stderr and "(injected)" in result.stderr
        assert sandbox.snapshot() == before, f"after a failure at change {k + 1} of {total}: {result.stderr}"


# An `ip` whose batch fails at the line that gives namespace ns-9's leaf its address, while other batches run.
FAILING_NS_IP = r"""
mkdir -p /run/failing-ns && cat > /run/failing-ns/ip <<'WRAPPER'
#!/bin/bash
real=$(PATH=/usr/sbin:/sbin:/usr/bin command -v ip)
args=("$@") file=
for ((i = 0; i < ${#args[@]}; i++)); do [[ ${args[i]} == -batch ]] && file=${args[i+1]}; done
if [[ -n $file && $file != - ]] && line=$(grep -n '^addr add 10.200.0.11/16' "$file"); then
  keep=$((${line%%:*} - 1))
  head -n "$keep" "$file" > "$file.part"
  "$real" "${args[@]/$file/$file.part}" || exit 1
  echo "RTNETLINK answers: Operation not permitted (injected)" >&2
  echo "Command failed $file:$((keep + 1))" >&2; exit 1
fi
exec "$real" "$@"
WRAPPER
chmod +x /run/failing-ns/ip
"""


def test_a_batch_failing_while_others_run_undoes_every_namespace(sandbox, tmp_path):
    from netgen.pipeline import compile_lab, write_scripts

    os.environ["STAR_N"] = "12"
    try:
        write_scripts(compile_lab(str(REPO / "bench" / "labs" / "star.py")), str(tmp_path))
    finally:
        del os.environ["STAR_N"]
    before = sandbox.snapshot()
    result = sandbox.run(FAILING_NS_IP + f"NETGEN_JOBS=4 PATH=/run/failing-ns:$PATH bash {tmp_path}/up.sh")
    assert result.returncode == 1, result.stdout
    assert "in leaf-9, ip refused: addr add 10.200.0.11/16 dev eth0" in result.stderr
    assert "undo in host: netns del leaf-12" in result.stderr  # what was made inside goes with the namespace
    assert sandbox.snapshot() == before
    # namespaces that were there before the run stay, and what the run did inside them is undone line by line
    # (their lo is up already: once up, the kernel keeps 127.0.0.1 on lo, which no undo can take back)
    # (adopt=True: namespaces that exist before up are the lab's only when it says so)
    os.environ.update(STAR_N="12", STAR_ADOPT="1")
    try:
        write_scripts(compile_lab(str(REPO / "bench" / "labs" / "star.py")), str(tmp_path / "adopt"))
    finally:
        del os.environ["STAR_N"], os.environ["STAR_ADOPT"]
    ok(sandbox.run("for i in $(seq 1 12); do ip netns add leaf-$i && ip -n leaf-$i link set lo up; done"))
    before = sandbox.snapshot()
    result = sandbox.run(FAILING_NS_IP + f"NETGEN_JOBS=4 PATH=/run/failing-ns:$PATH bash {tmp_path}/adopt/up.sh")
    assert result.returncode == 1, result.stdout
    assert "undo in leaf-1: addr del 10.200.0.3/16 dev eth0" in result.stderr
    assert sandbox.snapshot() == before


def test_down_after_up_killed_while_batches_run_leaves_nothing(sandbox, tmp_path):
    from netgen.pipeline import compile_lab, write_scripts

    os.environ["STAR_N"] = "12"
    try:
        write_scripts(compile_lab(str(REPO / "bench" / "labs" / "star.py")), str(tmp_path))
    finally:
        del os.environ["STAR_N"]
    before = sandbox.snapshot()
    killing = FAILING_NS_IP.replace('echo "RTNETLINK answers: Operation not permitted (injected)" >&2',
                                    KILL_UP_SH + "exit 1")
    killed = sandbox.run(killing + f"NETGEN_JOBS=4 PATH=/run/failing-ns:$PATH bash {tmp_path}/up.sh")
    assert killed.returncode in (-9, 137) and "lab star is up" not in killed.stdout
    assert "leaf-12" in sandbox.run("ip netns list").stdout  # half built: the kill left no chance to undo
    ok(sandbox.run(f"bash {tmp_path}/down.sh"))
    assert sandbox.snapshot() == before


def test_every_feature_builds_verifies_converges_and_goes(sandbox, tmp_path):
    """IPv6, routes by gateway and by device, pinned MTU and MAC, a bridge inside a namespace, a veth with both
    ends in one namespace and an isolation expectation, all live."""
    from netgen.pipeline import compile_lab, write_scripts

    write_scripts(compile_lab(str(REPO / "tests" / "labs" / "features.py")), str(tmp_path))
    before = sandbox.snapshot()
    ok(sandbox.run(f"bash {tmp_path}/up.sh"))
    # up returns once duplicate address detection is over: IPv6 works as soon as it has finished
    assert ok(sandbox.run("for n in ns-a router ns-b; do ip -n $n -6 addr show tentative; done")).stdout == ""
    assert ok(sandbox.run("ip -n router -6 route get 2001:db8:2::2 && ip netns exec ns-a ping -c1 -W1 2001:db8:2::2"))
    verify = ok(sandbox.run(f"bash {tmp_path}/verify.sh"))
    for line in ("ok   ns-a/to-r mtu: 1400", "ok   router/sw0 mac: 02:00:00:00:02:01",
                 "ok   ns-b route6 2001:db8:1::/64: via 2001:db8:2::1 dev to-r",
                 "ok   router route 10.7.0.7: dev to-a", "ok   router/loop-x peer: router/loop-y",
                 "ok   ns-a/to-r address 2001:db8:1::2/64: present",
                 "ok   lonely icmp 10.1.0.1: no reply", "ok   router sysctl net.ipv4.ip_forward: 1",
                 "ok   ns-a icmp 2001:db8:2::2: reply"):
        assert line in verify.stdout
    settled = sandbox.settled_snapshot()
    assert "nothing changed" in ok(sandbox.run(f"bash {tmp_path}/up.sh")).stdout
    assert sandbox.snapshot() == settled
    ok(sandbox.run(f"bash {tmp_path}/down.sh"))
    assert sandbox.snapshot() == before


# An `ip` that, just before up's first batch runs, lets another program take a name the lab wants.
RACING_IP = r"""
mkdir -p /run/racing-ip && cat > /run/racing-ip/ip <<'WRAPPER'
#!/bin/bash
real=$(PATH=/usr/sbin:/sbin:/usr/bin command -v ip)
if [[ " $* " == *" -batch "* && " $* " != *" -batch - "* && ! -e /run/racing-ip/done ]]; then
  touch /run/racing-ip/done
  "$real" link add veth-nginx-2 type veth peer name racer
fi
exec "$real" "$@"
WRAPPER
chmod +x /run/racing-ip/ip; rm -f /run/racing-ip/done
"""


def test_a_name_taken_between_check_and_use_fails_up_and_the_other_object_stays(sandbox):
    ok(sandbox.run(RACING_IP))
    result = sandbox.run(f"PATH=/run/racing-ip:$PATH {script('docker0', 'up')}")
    assert result.returncode == 1
    # (the host's end made in the lab's link group: its mark)
    assert re.search(r"ip refused: link add name veth-nginx-2 group \d+ type veth peer name eth0 netns nginx-2\n",
                     result.stderr)
    assert "File exists" in result.stderr
    links = sandbox.run("ip -br link show; ip netns list").stdout
    assert "veth-nginx-2@racer" in links and "racer@veth-nginx-2" in links  # the racer's pair is not undone
    assert "docker0" not in links and "nginx-1" not in links  # what this run made is


# A PATH with every tool of the machine but nsenter.
NO_NSENTER = r"""
rm -rf /run/no-nsenter && mkdir -p /run/no-nsenter
for d in /usr/sbin /usr/bin /sbin /bin; do
  for f in "$d"/*; do n=${f##*/}; [[ $n == nsenter || -e /run/no-nsenter/$n ]] || ln -s "$f" "/run/no-nsenter/$n"; done
done
"""


def test_without_nsenter_the_scripts_enter_namespaces_with_ip_netns_exec(sandbox, tmp_path):
    from netgen.pipeline import compile_lab, write_scripts

    write_scripts(compile_lab(str(REPO / "tests" / "labs" / "features.py")), str(tmp_path))
    before = sandbox.snapshot()
    ok(sandbox.run(NO_NSENTER))
    run = "PATH=/run/no-nsenter bash -c 'command -v nsenter || bash \"$0\"' "
    ok(sandbox.run(run + f"{tmp_path}/up.sh"))
    assert "70 checks passed, 0 failed" in ok(sandbox.run(run + f"{tmp_path}/verify.sh")).stdout
    assert "nothing changed" in ok(sandbox.run(run + f"{tmp_path}/up.sh")).stdout
    ok(sandbox.run(run + f"{tmp_path}/down.sh"))
    assert sandbox.snapshot() == before
