"""Address pools, gateways given as links, published ports and masquerade: allocation, the rules and the plan."""

import pytest
from helpers import REPO, assert_reports, compiles

from netgen.pipeline import compile_lab

# Lines 1-5: a lab with a dual-stack pooled bridge and a helper; a body starts at line 6.
POOLED = ('from netgen import Lab\nlab = Lab("t")\n'
          'br = lab.host.bridge("br0", subnet="10.1.0.0/24", subnet6="fd00:1::/64")\n'
          'def box(name, *addrs, **kw):\n    n = lab.netns(name); lab.veth(n.port("eth0", *addrs), '
          'br.port("v-" + name, **kw)); return n\n')


def addresses(compiled) -> dict[str, list[str]]:
    return {i.ref: [a.cidr for a in i.addresses] for i in compiled.plan.lab.interfaces if i.addresses}


def test_the_gateway_takes_the_first_address_and_namespaces_the_next_in_lab_order(tmp_path):
    got = addresses(compiles(tmp_path, POOLED + 'box("a")\nbox("b")\n'))
    assert got == {"host/br0": ["10.1.0.1/24", "fd00:1::1/64"], "a/eth0": ["10.1.0.2/24", "fd00:1::2/64"],
                   "b/eth0": ["10.1.0.3/24", "fd00:1::3/64"]}


def test_adding_a_namespace_at_the_end_never_renumbers_the_others(tmp_path):
    two = addresses(compiles(tmp_path, POOLED + 'box("a")\nbox("b")\n'))
    three = addresses(compiles(tmp_path, POOLED + 'box("a")\nbox("b")\nbox("c")\n'))
    assert {k: v for k, v in three.items() if k != "c/eth0"} == two
    assert three["c/eth0"] == ["10.1.0.4/24", "fd00:1::4/64"]


def test_explicit_addresses_are_reserved_first(tmp_path):
    # b writes .2, which a would otherwise take; the bridge writes its own IPv6 gateway
    got = addresses(compiles(tmp_path, POOLED.replace('subnet6="fd00:1::/64"', 'subnet6="fd00:1::/64"')
                             + 'br.addr("fd00:1::fe/64")\nbox("a")\nbox("b", "10.1.0.2/24")\n'))
    assert got["host/br0"] == ["fd00:1::fe/64", "10.1.0.1/24"]
    assert got["a/eth0"] == ["10.1.0.3/24", "fd00:1::1/64"]
    assert got["b/eth0"] == ["10.1.0.2/24", "fd00:1::2/64"]


def test_a_pool_on_a_veth_end_numbers_its_pair(tmp_path):
    got = addresses(compiles(tmp_path, 'from netgen import Lab\nlab = Lab("t")\nr, n = lab.netns("r"), lab.netns("n")\n'
                             'lab.veth(r.port("up", subnet="10.4.0.0/30", subnet6="fd00:4::/126"), n.port("e0"))\n'))
    assert got == {"r/up": ["10.4.0.1/30", "fd00:4::1/126"], "n/e0": ["10.4.0.2/30", "fd00:4::2/126"]}


def test_allocations_are_shown_in_check_and_in_the_scripts(tmp_path):
    compiled = compiles(tmp_path, POOLED + 'box("a")\n')
    line = "pool 10.1.0.0/24 of host/br0: gateway 10.1.0.1, a/eth0 10.1.0.2"
    assert line in compiled.plan.summary
    up = compiled.script("up")
    assert f"#   {line}\n" in up
    assert "# a/eth0: address 10.1.0.2/24 (pool 10.1.0.0/24 of host/br0) (" in up
    assert "# host/br0: address 10.1.0.1/24 (pool 10.1.0.0/24 of host/br0, gateway) (" in up


def test_netgen_check_prints_the_allocations():
    from typer.testing import CliRunner

    from netgen.cli import app

    result = CliRunner().invoke(app, ["check", str(REPO / "examples" / "docker_nat.py")])
    assert result.exit_code == 0, result.stderr
    assert ("  pool 172.17.0.0/16 of host/docker0: gateway 172.17.0.1, nginx-1/eth0 172.17.0.2, "
            "nginx-2/eth0 172.17.0.3\n"
            in result.stdout)
    assert "  pool fd00:17::/64 of host/docker0: gateway fd00:17::1, nginx-1/eth0 fd00:17::2" in result.stdout


def test_a_route_via_a_pooled_bridge_is_one_default_route_per_family(tmp_path):
    compiled = compiles(tmp_path, POOLED + 'a = box("a")\na.route("default", via=br)\n'
                        'b = box("b")\nb.route("default", via=br, family=6)\n')
    routes = [(r.ns, r.via, r.family) for r in compiled.plan.lab.routes]
    assert routes == [("a", "10.1.0.1", 4), ("a", "fd00:1::1", 6), ("b", "fd00:1::1", 6)]


def test_a_namespace_as_target_stands_for_its_first_address_of_each_family(tmp_path):
    compiled = compiles(tmp_path, POOLED + 'a = box("a")\nb = box("b")\nlab.expect(a).reaches(b)\n'
                        'lab.host.publish(8080, b, 80, proto="udp")\nbr.masquerade()\n')
    assert [p.target for p in compiled.plan.probes] == ["10.1.0.3", "fd00:1::3"]
    rules = [r.text for r in compiled.plan.firewall.rules]
    assert "fib daddr type local udp dport 8080 dnat ip to 10.1.0.3:80" in rules
    assert "ip6 daddr != ::1 fib daddr type local udp dport 8080 dnat ip6 to [fd00:1::3]:80" in rules
    assert 'ip6 saddr fd00:1::/64 oifname != "br0" masquerade' in rules
    assert compiled.plan.firewall.table == "netgen-t"
    keys = [(s.key, s.value) for s in compiled.plan.lab.sysctls]
    assert keys == [("net.ipv4.ip_forward", 1), ("net.ipv6.conf.all.forwarding", 1)]


def test_forwarding_is_only_set_when_nat_needs_it_and_the_lab_value_wins(tmp_path):
    assert not compiles(tmp_path, POOLED + 'box("a")\n').plan.lab.sysctls
    compiled = compiles(tmp_path, POOLED.replace(', subnet6="fd00:1::/64"', '')
                        + 'box("a")\nbr.masquerade()\nlab.host.sysctl("net.ipv4.ip_forward", 1)\n')
    assert [(s.key, s.loc.line) for s in compiled.plan.lab.sysctls] == [("net.ipv4.ip_forward", 8)]


def test_publishing_on_one_address_matches_only_it(tmp_path):
    compiled = compiles(tmp_path, POOLED + 'b = box("b")\nlab.host.publish(53, b, proto="udp", address="10.1.0.1")\n')
    assert [(r.chain, r.text) for r in compiled.plan.firewall.rules] == [
        ("prerouting", "ip daddr 10.1.0.1 udp dport 53 dnat ip to 10.1.0.2:53"),
        ("output", "ip daddr 10.1.0.1 udp dport 53 dnat ip to 10.1.0.2:53"),
        ("postrouting", "ip saddr 10.1.0.0/24 ip daddr 10.1.0.2 udp dport 53 ct status dnat masquerade")]


def test_hairpin_and_nodad_reach_the_commands(tmp_path):
    up = compiles(tmp_path, POOLED + 'box("a", hairpin=True)\nn = lab.netns("n")\n'
                  'lab.veth(n.port("e0", "fd00:9::1/64", nodad=True), lab.host.port("h0"))\n').script("up")
    assert "'link set dev v-a type bridge_slave hairpin on'" in up
    assert "'addr add fd00:9::1/64 dev e0 nodad'" in up
    assert "'addr add fd00:1::2/64 dev eth0'" in up  # no nodad where it was not asked


# (body after POOLED, line, message fragments)
BAD = [
    pytest.param('lab.host.bridge("b1", subnet="10.2.0.1/24")\n', 6,
                 ["host/b1: subnet '10.2.0.1/24' has host bits set; did you mean 10.2.0.0/24?"], id="host-bits"),
    pytest.param('lab.host.bridge("b1", subnet="10.2.0.0")\n', 6,
                 ["subnet '10.2.0.0' must be a prefix in CIDR form"], id="no-prefix"),
    pytest.param('lab.host.bridge("b1", subnet="10.2.0.0/31")\n', 6,
                 ["subnet '10.2.0.0/31' is too small for a pool"], id="too-small"),
    pytest.param('lab.host.bridge("b1", subnet="fd00::/64")\n', 6,
                 ["subnet= takes an IPv4 prefix, got 'fd00::/64'; give it as subnet6="], id="wrong-family"),
    pytest.param('lab.host.bridge("b1", subnet="10.2.0.0/24", external=True)\n', 6,
                 ["host/b1: an external bridge keeps its own addresses"], id="external"),
    pytest.param('n = lab.netns("n")\nlab.veth(n.port("e0"), br.port("p", subnet="10.3.0.0/24"))\n', 7,
                 ["unexpected keyword argument 'subnet'"], id="pool-on-bridge-port"),
    pytest.param('n = lab.netns("n")\nlab.veth(n.port("e0", "10.9.0.2/24"), br.port("p"))\n', 7,
                 ["n/e0: address 10.9.0.2/24 is not in subnet 10.1.0.0/24, the pool of its segment (host/br0, "
                  "line 3)"], id="outside-the-subnet"),
    pytest.param('n = lab.netns("n")\nlab.veth(n.port("e0", "10.1.0.9/16"), br.port("p"))\n', 7,
                 ["n/e0: address 10.1.0.9/16 is not in subnet 10.1.0.0/24"], id="other-prefix-length"),
    pytest.param('b2 = lab.host.bridge("b2", subnet="10.1.0.128/25")\n'
                 'n = lab.netns("n")\nlab.veth(n.port("e0"), b2.port("p"))\n', 6,
                 ["host/b2: subnet 10.1.0.128/25 overlaps 10.1.0.0/24 of host/br0, in the same namespace host"],
                 id="overlap"),
    pytest.param('b2 = lab.host.bridge("b2", subnet="10.1.0.128/25")\nn = box("n")\n'
                 'lab.veth(n.port("e1"), b2.port("p"))\n', 6,
                 ["host/b2: subnet 10.1.0.128/25 overlaps 10.1.0.0/24 of host/br0, in the same namespace host"],
                 id="overlap-in-a-namespace-on-both"),
    pytest.param('b2 = lab.host.bridge("b2", subnet="10.8.0.0/30")\nfor i in range(3):\n'
                 '    n = lab.netns(f"n{i}"); lab.veth(n.port("e0"), b2.port(f"p{i}"))\n', 8,
                 ["n1/e0: pool 10.8.0.0/30 of host/b2 is exhausted: no address left for it; use a larger subnet"],
                 id="exhausted"),
    pytest.param('n = lab.netns("n")\nlab.veth(n.port("e0", subnet="10.1.0.0/24"), br.port("p"))\n', 7,
                 ["n/e0: its L2 segment already has an IPv4 pool (line 3); one per family"], id="two-pools"),
    pytest.param('n = lab.netns("n")\nlab.veth(n.port("e0"), lab.host.port("h"))\nn.route("default", via=br)\n', 8,
                 ["route 'default' in n: gateway 10.1.0.1 is not on any connected subnet of n"], id="via-off-link"),
    pytest.param('b2 = lab.host.bridge("b2")\nn = box("n")\nn.route("default", via=b2)\n', 8,
                 ["route 'default' in n: host/b2 has no address to be its gateway"], id="via-no-address"),
    pytest.param('b2 = lab.host.bridge("b2", "10.5.0.1/24")\nn = box("n")\nn.route("default", via=b2, family=6)\n',
                 8, ["route 'default' in n: host/b2 has no IPv6 address to be its gateway"], id="via-no-family"),
    pytest.param('n = lab.netns("n")\nlab.host.publish(80, n)\n', 7,
                 ["published port 80: namespace n has no address to forward it to"], id="target-no-address"),
    pytest.param('n = box("n")\nlab.host.publish(80, "nowhere")\n', 7,
                 ["published port 80: target 'nowhere' is neither a namespace of the lab nor an IP address"],
                 id="target-unknown"),
    pytest.param('n = box("n")\nlab.host.publish(0, n)\n', 7,
                 ["published port 0: port must be a whole number from 1 to 65535, got 0"], id="port-zero"),
    pytest.param('n = box("n")\nlab.host.publish(80, n, 70000)\n', 7,
                 ["target port must be a whole number from 1 to 65535, got 70000"], id="to-port"),
    pytest.param('n = box("n")\nlab.host.publish(80, n, proto="sctp")\n', 7,
                 ["proto must be \"tcp\" or \"udp\", got 'sctp'"], id="proto"),
    pytest.param('n = box("n")\nlab.host.publish(80, n, address="127.0.0.1")\n', 7,
                 ["address 127.0.0.1 is a loopback address"], id="loopback"),
    pytest.param('n = box("n")\nlab.host.publish(80, n, address="10.1.0.1/24")\n', 7,
                 ["address '10.1.0.1/24' must be an IP address of the host without a prefix length"],
                 id="address-with-prefix"),
    pytest.param('n = box("n")\nlab.host.publish(80, "10.1.0.2", address="fd00:1::1")\n', 7,
                 ["address fd00:1::1 and target 10.1.0.2 are of different IP versions"], id="families"),
    pytest.param('n = box("n")\nlab.host.publish(80, n)\nlab.host.publish(80, "10.1.0.9", address="10.1.0.1")\n', 8,
                 ["tcp port 80 of the host is already published at line 7"], id="published-twice"),
    pytest.param('n = box("n")\nn.publish(80, "10.1.0.1")\n', 7,
                 ["netgen publishes ports of the host only, not of n: use lab.host.publish()"], id="publish-in-netns"),
    pytest.param('n = box("n")\nn.bridge("sw", "10.7.0.1/24").masquerade()\n', 7,
                 ["n/sw: netgen writes NAT rules in the host only"], id="masquerade-in-netns"),
    pytest.param('lab.host.bridge("b2").masquerade()\n', 6,
                 ["host/b2: masquerade needs its subnets, and it has no address or pool"], id="masquerade-no-subnet"),
    pytest.param('br.masquerade()\nbr.masquerade()\n', 7, ["host/br0 is already masqueraded at line 6"],
                 id="masquerade-twice"),
    pytest.param('n = lab.netns("n")\nlab.veth(n.port("e0", hairpin=True), br.port("p"))\n', 7,
                 ["unexpected keyword argument 'hairpin'"], id="hairpin-off-a-bridge"),
    pytest.param('box("n", hairpin="yes")\n', 5, ["host/v-n: hairpin must be True or False, got 'yes'"],
                 id="hairpin-not-a-bool"),
    pytest.param('lab.host.bridge("b2", "fd00:5::1/64", nodad=1)\n', 6,
                 ["host/b2: nodad must be True or False, got 1"], id="nodad-not-a-bool"),
    pytest.param('n = box("n")\nlab.expect(n).reaches(lab.netns("m"))\n', 7,
                 ["expectation: namespace m has no address to reach"], id="expect-no-address"),
]


@pytest.mark.parametrize("body, line, fragments", BAD)
def test_bad_pool_or_nat(tmp_path, body, line, fragments):
    assert_reports(tmp_path, POOLED + body, line, *fragments)


def test_a_lab_name_too_long_for_its_nftables_table(tmp_path):
    source = POOLED.replace('Lab("t")', 'Lab("t" * 250)') + 'br.masquerade()\n'
    assert_reports(tmp_path, source, 2, "lab name is too long for its nftables table netgen-NAME: at most 248 bytes")


def test_the_docker_nat_example_allocates_as_docker_does():
    compiled = compile_lab(str(REPO / "examples" / "docker_nat.py"))
    assert addresses(compiled)["nginx-1/eth0"] == ["172.17.0.2/16", "fd00:17::2/64"]
    assert addresses(compiled)["host/docker0"] == ["172.17.0.1/16", "fd00:17::1/64"]
