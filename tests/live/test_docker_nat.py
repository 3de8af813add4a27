"""examples/docker_nat.py live, in a sandbox: pools, NAT out, a published port, IPv6, and the seed's traffic proof.

The "outside world" is a namespace `outside` joined to the sandbox's host by a veth (host 10.99.0.1 and
fd00:99::1, outside 10.99.0.2 and fd00:99::2). It has no route to the containers' subnets, so an answer from it
reaches a container only through the host's masquerade. The host also has a table of someone else's, which the
lab must leave alone.
"""

import shutil
import time

import pytest
from helpers import REPO, ok, script, wait_for_web

pytestmark = pytest.mark.live

OUTSIDE = """
ip netns add outside
ip link add uplink type veth peer name eth0 netns outside
ip addr add 10.99.0.1/24 dev uplink && ip addr add fd00:99::1/64 dev uplink nodad && ip link set uplink up
ip -n outside addr add 10.99.0.2/24 dev eth0 && ip -n outside addr add fd00:99::2/64 dev eth0 nodad
ip -n outside link set eth0 up && ip -n outside link set lo up
nft add table inet someone-else && nft add chain inet someone-else forward \
  '{ type filter hook forward priority 0; policy accept; }' && nft add rule inet someone-else forward ip saddr 192.0.2.1 drop
"""  # noqa: E501  (shell)

# A TCP server in `outside` that answers each connection with the address it came from.
WHO_ASKS = r"""
nsenter --net=/run/netns/outside python3 -c '
import socket
s = socket.create_server(("::", 8000), family=socket.AF_INET6, dualstack_ipv6=True)
while True:
    c, peer = s.accept()
    c.sendall(peer[0].removeprefix("::ffff:").encode() + b"\n")
    c.close()
' >/dev/null 2>&1 &
echo $! > /run/outside-server.pid
"""


def ask(sandbox, where: str, host: str, port: int) -> str:
    """What a TCP server at host:port answers, asked from namespace `where` (host: the sandbox's own)."""
    enter = "" if where == "host" else f"ip netns exec {where} "
    result = ok(sandbox.run(f"{enter}timeout 5 bash -c 'exec 3<>/dev/tcp/{host}/{port}; cat <&3'"))
    return result.stdout.strip()


def curl(sandbox, where: str, url: str):
    enter = "" if where == "host" else f"ip netns exec {where} "
    return sandbox.run(f"{enter}curl -sg --max-time 5 {url}")


@pytest.fixture
def world(sandbox):
    """The sandbox with the outside namespace and its server; the server is ended afterwards."""
    ok(sandbox.run(OUTSIDE))
    ok(sandbox.run(WHO_ASKS))
    for _ in range(50):
        if sandbox.run("ip netns exec outside bash -c 'exec 3<>/dev/tcp/127.0.0.1/8000'").returncode == 0:
            break
        time.sleep(0.1)
    yield sandbox
    sandbox.run("kill $(cat /run/outside-server.pid)")


def test_a_container_reaches_the_outside_as_the_host(world):
    before = world.settled_snapshot()
    ok(world.run(script("docker_nat", "up")))
    for ns in ("nginx-1", "nginx-2"):
        assert ask(world, ns, "10.99.0.2", 8000) == "10.99.0.1"  # masqueraded to the host's address
        assert ask(world, ns, "fd00:99::2", 8000) == "fd00:99::1"
    ok(world.run(script("docker_nat", "down")))
    assert world.snapshot() == before


def test_the_published_port_is_reachable_from_outside_and_from_the_host(world):
    before = world.settled_snapshot()
    ok(world.run(script("docker_nat", "up")))
    wait_for_web(world, "nginx-1")
    # from outside, on the host's address of either family
    for url in ("http://10.99.0.1:8080/", "http://[fd00:99::1]:8080/"):
        assert curl(world, "outside", url).stdout.strip() == "hello from nginx-1", url
    # the host itself, on any of its addresses (docker0's too), like Docker's 0.0.0.0
    for url in ("http://10.99.0.1:8080/", "http://172.17.0.1:8080/", "http://[fd00:17::1]:8080/"):
        assert curl(world, "host", url).stdout.strip() == "hello from nginx-1", url
    # a container, through the host's address: nginx-2 beside nginx-1, and nginx-1 itself (hairpin)
    for ns in ("nginx-2", "nginx-1"):
        assert curl(world, ns, "http://10.99.0.1:8080/").stdout.strip() == "hello from nginx-1", ns
    # not on loopback: that would need route_localnet (docs/writing-labs.md); the connection is refused at once
    assert curl(world, "host", "http://127.0.0.1:8080/").returncode == 7
    verify = ok(world.run(script("docker_nat", "verify")))
    assert " 0 failed" in verify.stdout
    ok(world.run(script("docker_nat", "down")))
    assert world.snapshot() == before


# A UDP server in nginx-1 on port 53 that answers each datagram with the address it came from.
UDP_ECHO = r"""
ip netns exec nginx-1 python3 -c '
import socket
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", 53))
while True:
    data, peer = s.recvfrom(100)
    s.sendto(peer[0].removeprefix("::ffff:").encode(), peer)
' >/dev/null 2>&1 &
"""


def test_a_udp_port_published_on_one_address(world, tmp_path):
    """UDP 5353 on the host's 10.99.0.1 only goes to nginx-1's port 53; the same port on another address of
    the host goes nowhere."""
    source = (REPO / "examples" / "docker_nat.py").read_text()
    lab = tmp_path / "udp.py"
    lab.write_text(source + 'lab.host.publish(5353, nginx1, 53, proto="udp", address="10.99.0.1")\n')
    from netgen.pipeline import compile_lab, write_scripts

    write_scripts(compile_lab(str(lab)), str(tmp_path / "out"))
    before = world.settled_snapshot()
    ok(world.run(f"bash {tmp_path}/out/up.sh"))
    ok(world.run(UDP_ECHO))
    time.sleep(0.5)
    ask = ("python3 -c 'import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
           "s.settimeout(2); s.sendto(b\"hi\", (sys.argv[1], 5353)); print(s.recv(100).decode())' ")
    # DNAT only: nginx-1 sees the client as it is, from outside and from the host itself
    assert ok(world.run("ip netns exec outside " + ask + "10.99.0.1")).stdout.strip() == "10.99.0.2"
    assert ok(world.run(ask + "10.99.0.1")).stdout.strip() == "10.99.0.1"
    assert world.run(ask + "172.17.0.1").returncode != 0  # not published on the address of docker0
    ok(world.run(f"bash {tmp_path}/out/down.sh"))
    assert world.snapshot() == before


def test_ipv6_works_right_after_up(sandbox):
    """No waiting: up returns when duplicate address detection is over on the host and in the containers."""
    ok(sandbox.run(script("docker_nat", "up") + " >/dev/null && "
                   "ip netns exec nginx-1 ping -c1 -W1 fd00:17::3 && ip netns exec nginx-2 ping -c1 -W1 fd00:17::2 && "
                   "ip netns exec nginx-1 ping -c1 -W1 fd00:17::1 && ping -c1 -W1 fd00:17::2"))
    routes = ok(sandbox.run("ip -n nginx-1 route show default; ip -n nginx-1 -6 route show default")).stdout
    assert "default via 172.17.0.1 dev eth0" in routes and "default via fd00:17::1 dev eth0" in routes
    settled = ok(sandbox.run("ip -n nginx-2 -6 addr show dev eth0; ip -6 addr show dev docker0")).stdout
    assert "fd00:17::3/64" in settled and "fd00:17::1/64" in settled and "tentative" not in settled


def test_nodad_addresses_are_usable_at_once(sandbox, tmp_path):
    """Without waiting for DAD: up returns at once, the addresses are never tentative and work straight away."""
    lab = tmp_path / "nodad.py"
    lab.write_text('from netgen import Lab\nlab = Lab("nodad")\nns = lab.netns("ns1")\n'
                   'lab.veth(ns.port("e0", "fd00:5::2/64", nodad=True),\n'
                   '         lab.host.port("h0", "fd00:5::1/64", nodad=True))\n')
    from netgen.pipeline import compile_lab, write_scripts

    write_scripts(compile_lab(str(lab)), str(tmp_path / "out"))
    before = sandbox.snapshot()
    shown = ok(sandbox.run(f"NETGEN_VERIFY_WAIT=0 bash {tmp_path}/out/up.sh >/dev/null && "
                           "ip -n ns1 -6 addr show dev e0 && ip netns exec ns1 ping -c1 -W1 fd00:5::1")).stdout
    line = next(x for x in shown.splitlines() if "fd00:5::2/64" in x)  # the kernel's own fe80:: is tentative a while
    assert "nodad" in line and "tentative" not in line, line
    ok(sandbox.run(f"bash {tmp_path}/out/down.sh"))
    assert sandbox.snapshot() == before


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed (.ci/run installs it)")
def test_the_seed_traffic_proof_arp_and_http_on_eth0_and_on_docker0(sandbox):
    """The article's step 4: nginx-2 asks nginx-1 over HTTP; a capture inside nginx-1 and one on docker0 both
    hold the ARP exchange (neighbour caches are flushed first) and the HTTP request."""
    ok(sandbox.run(script("docker_nat", "up")))
    wait_for_web(sandbox, "nginx-1")
    # --immediate-mode: otherwise tcpdump takes packets from the kernel in blocks, and a capture ended after a
    # second holds none of them (measured here: "14 packets received by filter", "0 packets captured").
    for where, enter, dev in (("eth0", "ip netns exec nginx-1 ", "eth0"), ("docker0", "", "docker0")):
        ok(sandbox.run(f"({enter}tcpdump -i {dev} -nn --immediate-mode -w /run/{where}.pcap 'arp or tcp port 80' "
                       f">/dev/null 2>/run/{where}.log & echo $! > /run/{where}.pid)"))
    for where in ("eth0", "docker0"):
        for _ in range(50):
            if "listening on" in sandbox.run(f"cat /run/{where}.log").stdout:
                break
            time.sleep(0.1)
    ok(sandbox.run("ip -n nginx-2 neigh flush all && ip -n nginx-1 neigh flush all"))
    page = ok(sandbox.run("ip netns exec nginx-2 curl -s --max-time 5 http://172.17.0.2/"))
    assert page.stdout.strip() == "hello from nginx-1"
    time.sleep(0.5)
    ok(sandbox.run("kill $(cat /run/eth0.pid) $(cat /run/docker0.pid); sleep 0.5"))
    for where in ("eth0", "docker0"):
        seen = ok(sandbox.run(f"tcpdump -nn -A -r /run/{where}.pcap")).stdout
        assert "ARP, Request who-has 172.17.0.2 tell 172.17.0.3" in seen, (where, seen)
        assert "ARP, Reply 172.17.0.2 is-at" in seen, (where, seen)
        assert "GET / HTTP/1.1" in seen, (where, seen)
    ok(sandbox.run(script("docker_nat", "down")))


def test_verify_names_a_missing_and_an_extra_rule(sandbox):
    ok(sandbox.run(script("docker_nat", "up")))
    handle = ok(sandbox.run("nft -a list chain inet netgen-docker_nat postrouting | "
                            "sed -n 's/.*oifname != \"docker0\" masquerade # handle //p' | head -1")).stdout.strip()
    ok(sandbox.run(f"nft delete rule inet netgen-docker_nat postrouting handle {handle} && "
                   "nft add rule inet netgen-docker_nat output udp dport 9 drop"))
    result = sandbox.run(f"NETGEN_VERIFY_WAIT=0 {script('docker_nat', 'verify')}")
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert sorted(failed) == sorted([
        "FAIL host/nft netgen-docker_nat postrouting rule [ip saddr 172.17.0.0/16 oifname != \"docker0\" masquerade]: "
        "want once, have absent",
        "FAIL host/nft netgen-docker_nat output rule [udp dport 9 drop]: want absent, have present"]), result.stdout
    ok(sandbox.run(script("docker_nat", "down")))


def test_verify_names_bridge_settings_that_drift(sandbox):
    ok(sandbox.run(script("docker_nat", "up")))
    ok(sandbox.run("ip link set dev veth-nginx-1 type bridge_slave hairpin off && ip link set dev docker0 mtu 1400 && "
                   "ip link set dev docker0 address 02:42:ac:11:00:99"))
    result = sandbox.run(f"NETGEN_VERIFY_WAIT=0 {script('docker_nat', 'verify')}")
    assert result.returncode == 1
    for line in ("FAIL host/veth-nginx-1 hairpin: want on, have off", "FAIL host/docker0 mtu: want 1500, have 1400",
                 "FAIL host/docker0 mac: want 02:42:ac:11:00:01, have 02:42:ac:11:00:99"):
        assert line in result.stdout, result.stdout
    again = ok(sandbox.run(script("docker_nat", "up")))  # settings are simply set again
    assert "lab docker_nat is up (3 changes)" in again.stdout
    ok(sandbox.run(script("docker_nat", "down")))


def test_up_refuses_a_table_of_its_name_that_is_not_the_labs(sandbox):
    ok(sandbox.run("nft add table inet netgen-docker_nat && nft add chain inet netgen-docker_nat postrouting "
                   "'{ type nat hook postrouting priority srcnat; policy accept; }' && "
                   "nft add rule inet netgen-docker_nat postrouting masquerade"))
    before = sandbox.snapshot()
    result = sandbox.run(script("docker_nat", "up"))
    assert result.returncode == 1
    assert "up.sh: host/nft netgen-docker_nat chain prerouting: want type nat hook prerouting priority -100; " \
           "policy accept;, have absent" in result.stderr
    assert "up.sh: host/nft netgen-docker_nat postrouting rule [masquerade]: want absent, have present" in result.stderr
    assert "nothing was changed" in result.stderr
    assert sandbox.snapshot() == before
    # down deletes the table of the lab's name, whoever made it: the name says it is the lab's
    ok(sandbox.run(script("docker_nat", "down")))
    assert "netgen-docker_nat" not in ok(sandbox.run("nft list tables")).stdout


def test_up_without_nft_stops_before_any_change(sandbox):
    before = sandbox.snapshot()
    result = sandbox.run("mkdir -p /run/only-ip && for t in ip awk flock setsid stat mktemp; do "
                         "ln -sf \"$(command -v $t)\" /run/only-ip/$t; done && "
                         f"PATH=/run/only-ip /bin/bash {REPO}/out/docker_nat/up.sh")
    assert result.returncode == 2
    assert "the nft command (nftables) is not installed" in result.stderr
    ok(sandbox.run("rm -r /run/only-ip"))
    assert sandbox.snapshot() == before


def test_down_restores_forwarding_that_was_on_and_off(sandbox):
    """Forwarding is recorded as it was: on stays on after down, off goes back to off."""
    ok(sandbox.run("sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=0"))
    before = sandbox.snapshot()
    ok(sandbox.run(script("docker_nat", "up")))
    assert ok(sandbox.run("cat /proc/sys/net/ipv6/conf/all/forwarding")).stdout.strip() == "1"
    down = ok(sandbox.run(script("docker_nat", "down")))
    assert "sysctl net.ipv6.conf.all.forwarding back to 0" in down.stdout
    assert sandbox.snapshot() == before


@pytest.mark.skipif(shutil.which("nft") is None, reason="nft is not installed (.ci/run installs it)")
def test_up_words_nft_refusing_the_table_with_what_to_check_and_undoes_the_run(sandbox):
    """nft's own message is shown, under a line of netgen's saying what was undone and what to check."""
    before = sandbox.snapshot()
    fake = ("mkdir -p /run/fake-nft && printf '%s\\n' '#!/bin/bash' "
            "'if [[ $1 == -f ]]; then echo \"Error: Could not process rule: No such file or directory\" >&2; "
            "exit 1; fi' "
            "\"exec $(command -v nft) \\\"\\$@\\\"\" >/run/fake-nft/nft && chmod +x /run/fake-nft/nft && ")
    result = sandbox.run(fake + f"PATH=/run/fake-nft:$PATH bash {REPO}/out/docker_nat/up.sh")
    assert result.returncode == 1, result.stdout + result.stderr
    assert ("up.sh: in host, nft refused the table netgen-docker_nat (below); this run is undone. Check that the "
            "kernel has nftables NAT and fib (modprobe nft_chain_nat nft_fib_inet):\n"
            "  Error: Could not process rule: No such file or directory\n") in result.stderr
    ok(sandbox.run("rm -r /run/fake-nft"))
    assert sandbox.snapshot() == before
