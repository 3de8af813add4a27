"""The plan decides order: namespaces before what goes in them, bridges before ports, each veth made once."""

from helpers import REPO

from netgen.loader import load
from netgen.plan import build


def plan_of(tmp_path, body: str):
    lab = tmp_path / "lab.py"
    lab.write_text("from netgen import Lab\nlab = Lab('t')\n" + body)
    return build(load(str(lab)), "test")


def dos(plan):
    """Every queued command as (section, text), in the order up runs them."""
    return [(s.ns, " ".join(step.do)) for s in plan.sections for step in s.steps if step.do]


def test_sections_run_host_first_then_namespaces_in_lab_order(tmp_path):
    plan = plan_of(tmp_path, "b = lab.netns('b')\na = lab.netns('a')\nlab.veth(b.port('x'), a.port('y'))\n")
    assert [s.ns for s in plan.sections] == ["host", "b", "a"]
    assert dos(plan)[:2] == [("host", "netns add b"), ("host", "netns add a")]


def test_every_veth_is_made_once_by_the_host_with_each_end_straight_in_its_namespace(tmp_path):
    plan = plan_of(tmp_path, "a = lab.netns('a')\nb = lab.netns('b')\n"
                             "lab.veth(b.port('to-a'), a.port('to-b'))\n"
                             "lab.veth(a.port('h'), lab.host.port('a-h'))\n"
                             "lab.veth(a.port('l1'), a.port('l2'))\n")
    made = [(ns, cmd) for ns, cmd in dos(plan) if "type veth" in cmd]
    assert made == [("host", "link add name to-b index 1000000 netns a type veth peer name to-a index 1000001 netns b"),
                    ("host", "link add name l1 netns a type veth peer name l2 netns a"),
                    ("host", "link add name a-h type veth peer name h netns a")]
    # so no namespace's batch waits for another's, and each end is checked once, where it lives
    far = [step for s in plan.sections for step in s.steps if step.check[0] == "link" and not step.do]
    assert {(step.check[1], step.check[2]) for step in far} == {("a", "h"), ("b", "to-a"), ("a", "l2")}
    undo = {" ".join(step.do): (step.owner, " ".join(step.undo)) for s in plan.sections for step in s.steps}
    assert undo["link add name to-b index 1000000 netns a type veth peer name to-a index 1000001 netns b"] == \
        ("a", "link del dev to-b")
    assert undo["netns add a"] == ("host", "netns del a")


def test_bridges_come_before_their_ports_and_settings_follow_creation(tmp_path):
    plan = plan_of(tmp_path, "n = lab.netns('n')\nbr = n.bridge('br0', '10.0.0.1/24', mtu=1400)\n"
                             "lab.veth(br.port('p', mac='02:00:00:00:00:01'), lab.host.port('h'))\n")
    order = [cmd for ns, cmd in dos(plan) if ns == "n"]
    assert order == ["link set dev lo up", "link add name br0 type bridge", "link set dev br0 mtu 1400",
                     "link set dev br0 up", "addr add 10.0.0.1/24 dev br0", "link set dev p address 02:00:00:00:00:01",
                     "link set dev p master br0", "link set dev p up"]


def test_host_bridges_come_up_and_host_routes_are_added_last_once_the_namespaces_are_built(tmp_path):
    plan = plan_of(tmp_path, "br = lab.host.bridge('br0', '10.0.0.1/24')\n"
                             "ext = lab.host.bridge('ext0', external=True)\n"
                             "n = lab.netns('n')\nlab.veth(n.port('e0', '10.0.0.2/24'), br.port('p'))\n"
                             "lab.host.route('10.9.0.0/16', via='10.0.0.2')\n")
    assert [(s.ns, s.last) for s in plan.sections] == [("host", False), ("n", False), ("host", True)]
    assert [cmd for ns, cmd in dos(plan)][-2:] == ["link set dev br0 up", "route add 10.9.0.0/16 via 10.0.0.2 dev br0"]
    first = [" ".join(s.check) for s in plan.sections[0].steps]
    assert "state host p up" in first and "state host ext0 up" in first  # ports, and a bridge up never changes


def test_routes_find_their_device_and_are_written_as_ip_shows_them(tmp_path):
    plan = plan_of(tmp_path, "n = lab.netns('n')\n"
                             "lab.veth(n.port('e0', '10.0.0.2/24', '2001:DB8::2/64'), lab.host.port('h'))\n"
                             "n.route('default', via='10.0.0.1')\nn.route('default', via='2001:db8::1')\n"
                             "n.route('10.5.0.9/32', dev='e0')\n")
    routes = [s for sec in plan.sections for s in sec.steps if s.check[0].startswith("route")]
    assert [s.check for s in routes] == [("route4", "n", "default", "via 10.0.0.1 dev e0"),
                                         ("route6", "n", "default", "via 2001:db8::1 dev e0"),
                                         ("route4", "n", "10.5.0.9", "dev e0")]
    assert [" ".join(s.do) for s in routes] == ["route add default via 10.0.0.1 dev e0",
                                                "route add ::/0 via 2001:db8::1 dev e0",
                                                "route add 10.5.0.9/32 dev e0"]
    addrs = [s.check[2] for sec in plan.sections for s in sec.steps if s.check[0] == "addr"]
    assert "2001:db8::2/64" in addrs  # normalised as ip prints it


def test_every_made_object_is_undone_and_torn_down(tmp_path):
    body = (REPO / "examples" / "docker0.py").read_text().split("from netgen import Lab\n")[1]
    plan = plan_of(tmp_path, body.replace('lab = Lab("docker0")\n', ""))
    for step in (s for sec in plan.sections for s in sec.steps):
        if step.do[:2] in (("link", "add"), ("netns", "add"), ("addr", "add"), ("route", "add")):
            assert step.undo[1] == "del", step
        if step.do[:2] in (("link", "add"), ("netns", "add")):
            assert step.teardown == step.undo
        else:
            assert step.teardown == ()


def test_verify_checks_peers_both_ways_and_carrier(tmp_path):
    plan = plan_of(tmp_path, "a = lab.netns('a')\nb = lab.netns('b')\nlab.veth(a.port('x'), b.port('y'))\n")
    assert {c.check for c in plan.checks} == {("peer", "a", "x", "b/y"), ("peer", "b", "y", "a/x"),
                                              ("oper", "a", "x", "up"), ("oper", "b", "y", "up")}


def test_devices_are_named_after_a_keyword_so_ip_never_reads_a_name_as_one(tmp_path):
    plan = plan_of(tmp_path, "a = lab.netns('a')\nb = lab.netns('b')\n"
                             "lab.veth(a.port('up', '10.0.0.1/30'), b.port('type'))\n"
                             "a.route('default', via='10.0.0.2')\n")
    assert ("host", "link add name up index 1000000 netns a type veth peer name type index 1000001 netns b") in \
        dos(plan)
    assert ("a", "link set dev up up") in dos(plan)
    assert ("a", "route add default via 10.0.0.2 dev up") in dos(plan)


def test_host_veths_go_with_their_namespace_and_veths_between_namespaces_get_their_own_ifindexes(tmp_path):
    plan = plan_of(tmp_path, "a = lab.netns('a')\nb = lab.netns('b')\nc = lab.netns('c')\n"
                             "lab.veth(lab.host.port('h-a'), a.port('x'))\n"
                             "lab.veth(b.port('to-c'), c.port('to-b'))\n"
                             "lab.veth(lab.host.port('h1'), lab.host.port('h2'))\n")
    made = {s.check[2]: s for sec in plan.sections for s in sec.steps if s.check[0] == "link" and s.do}
    assert made["h-a"].gone_with == "a"  # down deletes namespace a and waits for h-a to vanish
    assert made["h1"].gone_with == "" and made["h1"].teardown  # deleted by name: no namespace takes it along
    assert not made["to-c"].teardown  # goes with namespaces b and c: down never enters a namespace
    assert [" ".join(s.teardown) for s in plan.teardowns] == [
        "link del dev h1", "link del dev h-a", "netns del c", "netns del b", "netns del a"]
    assert made["to-c"].do[:6] == ("link", "add", "name", "to-c", "index", "1000000")  # between namespaces:
    assert made["to-c"].do[-5:] == ("to-b", "index", "1000001", "netns", "c")  # ifindexes of their own
    assert "index" not in made["h-a"].do and "index" not in made["h1"].do


# Labs over nodes (issue 18): each node's lab (nodes.split) is planned like a lab without nodes.

def node_plans(name: str) -> dict:
    from netgen.nodes import split

    return {node: build(lab, "test") for node, lab in split(load(str(REPO / "examples" / f"{name}.py"))).items()}


def steps_of(plan, attr: str) -> list:
    return [step for section in plan.sections for step in section.steps if step.check[0] == attr]


def shape(step) -> tuple:
    return step.check, " ".join(step.do), " ".join(step.undo), " ".join(step.teardown), step.expect


def test_flannel_vxlan_steps_are_what_flannel_makes_on_node1():
    plan = node_plans("flannel_vxlan")["node1"]
    link = next(s for s in steps_of(plan, "link") if s.check[2] == "flannel.1")
    assert shape(link) == (
        ("link", "host", "flannel.1", "vxlan"),
        "link add name flannel.1 type vxlan id 1 local 192.168.60.11 dev eth0 dstport 8472 nolearning",
        "link del dev flannel.1", "link del dev flannel.1", False)
    assert [shape(s) for s in steps_of(plan, "vxlan")] == [
        (("vxlan", "host", "flannel.1", "id 1 local 192.168.60.11 dev eth0 dstport 8472 nolearning"), "", "", "",
         False)]  # made so with the device: verify compares, up only reports a device made otherwise
    assert [shape(s) for s in steps_of(plan, "neigh")] == [
        (("neigh", "host", "flannel.1/10.244.2.0", "lladdr 02:01:c0:a8:3c:0c nud permanent"),
         "neigh replace 10.244.2.0 lladdr 02:01:c0:a8:3c:0c dev flannel.1 nud permanent",
         "neigh del 10.244.2.0 dev flannel.1", "", False)]  # goes with flannel.1
    assert [shape(s) for s in steps_of(plan, "fdb")] == [
        (("fdb", "host", "flannel.1/02:01:c0:a8:3c:0c/192.168.60.12", "self permanent"),
         "fdb replace 02:01:c0:a8:3c:0c dev flannel.1 dst 192.168.60.12 self permanent",
         "fdb del 02:01:c0:a8:3c:0c dev flannel.1 dst 192.168.60.12 self", "", False)]
    assert [shape(s) for s in steps_of(plan, "route4") if s.check[1] == "host"] == [
        (("route4", "host", "10.244.2.0/24", "via 10.244.2.0 dev flannel.1"),
         "route add 10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink",
         "route del 10.244.2.0/24 via 10.244.2.0 dev flannel.1", "", False)]
    settings = {s.check[0]: s.check[3] for s in plan.sections[0].steps if s.check[2] in ("flannel.1", "10.244.1.0/32")}
    assert settings == {"link": "vxlan", "vxlan": "id 1 local 192.168.60.11 dev eth0 dstport 8472 nolearning",
                        "mtu": "1450", "mac": "02:01:c0:a8:3c:0b", "state": "up", "addr": "flannel.1"}
    assert plan.fdb_namespaces == ("host",)


def test_the_underlay_device_is_checked_and_never_made_changed_or_removed():
    plan = node_plans("host_gw")["node1"]
    underlay = [shape(s) for sec in plan.sections for s in sec.steps if "eth0" in (s.check[2], s.check[3])
                and s.check[1] == "host" and s.check[0] != "route4"]
    assert underlay == [(("state", "host", "eth0", "up"), "", "", "", True),
                        (("addr", "host", "192.168.60.11/24", "eth0"), "", "", "", True)]
    assert not any(s.check[2] == "eth0" for s in plan.made + plan.teardowns if s.check[1] == "host")


def test_host_gw_routes_go_via_the_other_node_and_down_removes_them():
    plans = node_plans("host_gw")
    for me, other, ip in (("node1", "10.244.2.0/24", "192.168.60.12"), ("node2", "10.244.1.0/24", "192.168.60.11")):
        (route,) = [s for s in steps_of(plans[me], "route4") if s.check[1] == "host"]
        assert shape(route) == (("route4", "host", other, f"via {ip} dev eth0"), f"route add {other} via {ip} dev eth0",
                                f"route del {other} via {ip} dev eth0", f"route del {other} via {ip} dev eth0", False)
        assert route in plans[me].teardowns  # eth0 stays after down: its route would too
        assert ("sysctl", "host", "net.ipv4.ip_forward", "1") in [s.check for s in steps_of(plans[me], "sysctl")]
        assert plans[me].sections[-1].last and route in plans[me].sections[-1].steps


def test_fdb_steps_are_bridge_words_and_the_last_of_their_section():
    for example in ("flannel_vxlan", "overlay_l2"):
        for plan in node_plans(example).values():
            for section in plan.sections:
                kinds = [s.check[0] == "fdb" for s in section.steps]
                assert kinds == sorted(kinds), "fdb steps come last, for one bridge -batch after ip -batch"
                assert all(s.do[0] == "fdb" and s.undo[0] == "fdb" for s in section.steps if s.check[0] == "fdb")
                assert all(s.do[:1] != ("fdb",) for s in section.steps if s.check[0] != "fdb")


def test_l2_segment_joins_the_bridges_with_a_vxlan_port_and_a_flood_list():
    plan = node_plans("overlay_l2")["node2"]
    vx0 = {s.check[0]: shape(s) for sec in plan.sections for s in sec.steps if s.check[2] == "vx0"}
    assert vx0["link"][1] == "link add name vx0 type vxlan id 4097 local 192.168.60.12 dev eth0 dstport 4789 learning"
    assert vx0["master"][:2] == (("master", "host", "vx0", "br0"), "link set dev vx0 master br0")
    assert vx0["mtu"][0] == ("mtu", "host", "vx0", "1450")
    assert [shape(s) for s in steps_of(plan, "fdb")] == [
        (("fdb", "host", "vx0/00:00:00:00:00:00/192.168.60.11", "self permanent"),
         "fdb append 00:00:00:00:00:00 dev vx0 dst 192.168.60.11 self permanent",
         "fdb del 00:00:00:00:00:00 dev vx0 dst 192.168.60.11 self", "", False)]
    assert not steps_of(plan, "neigh") and not steps_of(plan, "sysctl") and plan.firewall is None


def test_cross_node_expectations_are_checked_by_the_source_node_against_an_address():
    plans = node_plans("flannel_vxlan")
    assert [(p.ns, p.target, p.port) for p in plans["node1"].probes] == [("pod-1-1", "10.244.2.2", "80"),
                                                                          ("pod-1-1", "10.244.1.3", "")]
    assert [(p.ns, p.target, p.port) for p in plans["node2"].probes] == [("pod-2-2", "10.244.1.3", "80")]


def test_the_cluster_masquerades_what_leaves_it_and_not_pod_to_pod_traffic():
    plan = node_plans("flannel_vxlan")["node2"]
    assert [r.text for r in plan.firewall.rules] == [
        'ip saddr 10.244.2.0/24 ip daddr != 10.244.1.0/24 ip daddr != 10.244.2.0/24 oifname != "cni0" masquerade']


def test_masquerade_not_to_leaves_those_destinations_alone(tmp_path):
    plan = plan_of(tmp_path, "br = lab.host.bridge('br0', '10.1.0.1/24', '2001:db8::1/64')\n"
                             "br.masquerade(not_to=['10.0.0.0/8', '2001:db8:ff::/48'])\n")
    assert [r.text for r in plan.firewall.rules] == [
        'ip saddr 10.1.0.0/24 ip daddr != 10.0.0.0/8 oifname != "br0" masquerade',
        'ip6 saddr 2001:db8::/64 ip6 daddr != 2001:db8:ff::/48 oifname != "br0" masquerade']
