"""inventory reads `ip -j` output into namespaces and interfaces, pairs every veth with its peer across namespaces,
and shows the lab's objects as present or absent; tests/live/test_inventory_live.py checks it against the docker0
lab itself."""

import json

import pytest
from helpers import DOCKER0_OBJECTS, docker0_lab, link, statuses

from netgen import inventory
from netgen.inventory import ABSENT, PRESENT, UNREADABLE, InventoryError, Link, Row
from netgen.model import HOST, Lab, Loc, Namespace

# Captured in a sandbox (iproute2 6.1) with the docker0 lab up and one more namespace, "same", holding a veth pair
# of its own (va up, vb down); trimmed to the fields inventory reads. Note the index 2 of docker0 and of both eth0,
# and that both host veths point at index 2: only the two-way match tells the pairs apart.
DOCKER0 = {
    "netns": '[{"name":"same"},{"name":"nginx-2","id":1},{"name":"nginx-1","id":0}]\n',
    HOST: (
        '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"operstate":"UNKNOWN",'
        '"link_type":"loopback"},'
        '{"ifindex":2,"ifname":"docker0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"operstate":"UP",'
        '"link_type":"ether","linkinfo":{"info_kind":"bridge"}},'
        '{"ifindex":3,"ifname":"veth-nginx-1","link_index":2,"link_netnsid":0,'
        '"flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"master":"docker0","operstate":"UP","link_type":"ether",'
        '"linkinfo":{"info_kind":"veth"}},'
        '{"ifindex":4,"ifname":"veth-nginx-2","link_index":2,"link_netnsid":1,'
        '"flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"master":"docker0","operstate":"UP","link_type":"ether",'
        '"linkinfo":{"info_kind":"veth"}}]\n',
        '[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host"},'
        '{"family":"inet6","local":"::1","prefixlen":128,"scope":"host"}]},'
        '{"ifindex":2,"ifname":"docker0","addr_info":[{"family":"inet","local":"172.17.0.1","prefixlen":16,'
        '"scope":"global"},{"family":"inet6","local":"fe80::449a:50ff:fea8:ba79","prefixlen":64,"scope":"link"}]},'
        '{"ifindex":3,"ifname":"veth-nginx-1","addr_info":[]},'
        '{"ifindex":4,"ifname":"veth-nginx-2","addr_info":[]}]\n'),
    **{f"nginx-{i}": (
        '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"operstate":"UNKNOWN",'
        '"link_type":"loopback"},'
        f'{{"ifindex":2,"ifname":"eth0","link_index":{i + 2},"link_netnsid":0,'
        '"flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"operstate":"UP","link_type":"ether",'
        '"linkinfo":{"info_kind":"veth"}}]\n',
        '[{"ifindex":1,"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,'
        '"scope":"host"}]},'
        f'{{"ifindex":2,"ifname":"eth0","addr_info":[{{"family":"inet","local":"172.17.0.{i + 1}","prefixlen":16,'
        '"scope":"global"}]}]\n') for i in (1, 2)},
    "same": (
        '[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK"],"operstate":"DOWN","link_type":"loopback"},'
        '{"ifindex":2,"ifname":"vb","link":"va","flags":["BROADCAST","MULTICAST"],"operstate":"DOWN",'
        '"link_type":"ether","linkinfo":{"info_kind":"veth"}},'
        '{"ifindex":3,"ifname":"va","link":"vb","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP","M-DOWN"],'
        '"operstate":"LOWERLAYERDOWN","link_type":"ether","linkinfo":{"info_kind":"veth"}}]\n',
        '[{"ifindex":1,"ifname":"lo","addr_info":[]},{"ifindex":2,"ifname":"vb","addr_info":[]},'
        '{"ifindex":3,"ifname":"va","addr_info":[]}]\n'),
}

# Captured with the veth_pair lab up (ns1/veth0 -- ns2/veth1) and a second pair made the same way in fresh
# namespaces ns3 and ns4: all four ends are ifindex 2 pointing at index 2.
_PAIR_END = ('[{{"ifindex":1,"ifname":"lo","flags":["LOOPBACK"],"operstate":"DOWN","link_type":"loopback"}},'
             '{{"ifindex":2,"ifname":"{}","link_index":2,"link_netnsid":0,"flags":["BROADCAST","MULTICAST"],'
             '"operstate":"DOWN","link_type":"ether","linkinfo":{{"info_kind":"veth"}}}}]')
ALIKE = {
    "netns": '[{"name":"ns4"},{"name":"ns3"},{"name":"ns2"},{"name":"ns1"}]',
    HOST: (DOCKER0[HOST][0].split(",{")[0] + "]", "[]"),
    **{ns: (_PAIR_END.format(name), "[]") for ns, name in
       (("ns1", "veth0"), ("ns2", "veth1"), ("ns3", "veth0"), ("ns4", "veth1"))},
}


class FakeIp:
    """A `run` answering from canned output; records its calls; namespaces in `broken` cannot be read."""

    def __init__(self, state: dict, broken: tuple[str, ...] = ()):
        self.state, self.broken, self.calls = state, broken, []

    def __call__(self, ns, args):
        self.calls.append((ns, args))
        if args == ["-j", "netns", "list"]:
            return self.state["netns"]
        if ns in self.broken or (ns or HOST) not in self.state:
            return None
        links, addrs, *ids = self.state[ns or HOST]  # ids: `ip netns list-id` there, when the test gives it
        if args[-1] == "list-id":
            return ids[0] if ids else "[]"
        return {"link": links, "addr": addrs}[args[-2]]


def without(state: dict, ns: str, name: str | None = None) -> dict:
    """The canned state with namespace `ns` gone, or only its interface `name`."""
    state = dict(state)
    if name is None:
        del state[ns]
        entries = [e for e in json.loads(state["netns"]) if e["name"] != ns]
        state["netns"] = json.dumps(entries)
    else:
        links, addrs = state[ns]
        state[ns] = tuple(json.dumps([e for e in json.loads(text) if e["ifname"] != name]) for text in (links, addrs))
    return state


# --- reading ------------------------------------------------------------------------------------------------------

def test_collect_reads_the_host_and_every_named_namespace_with_four_kinds_of_call():
    run = FakeIp(DOCKER0)
    inv = inventory.collect(run)
    assert [ns.name for ns in inv.namespaces] == [HOST, "nginx-1", "nginx-2", "same"]
    assert run.calls[0] == (None, ["-j", "netns", "list"])
    reads = [(ns, args) for ns in (None, "nginx-1", "nginx-2", "same")
             for args in (["-j", "-d", "link", "show"], ["-j", "addr", "show"], ["-j", "netns", "list-id"])]
    assert sorted(run.calls[1:], key=str) == sorted(reads, key=str)


def test_no_named_namespaces_gives_the_host_alone():
    for listing in ("", "\n", "[]\n"):
        inv = inventory.collect(FakeIp({"netns": listing, HOST: DOCKER0[HOST]}))
        assert [ns.name for ns in inv.namespaces] == [HOST]


def test_parses_kind_state_addresses_and_master():
    inv = inventory.collect(FakeIp(DOCKER0))
    assert link(inv, HOST, "lo") == Link("lo", 1, "loopback", True, True, ("127.0.0.1/8", "::1/128"), None)
    bridge = link(inv, HOST, "docker0")
    assert (bridge.kind, bridge.up, bridge.carrier, bridge.master) == ("bridge", True, True, None)
    assert bridge.addresses == ("172.17.0.1/16", "fe80::449a:50ff:fea8:ba79/64")
    port = link(inv, HOST, "veth-nginx-1")
    assert (port.kind, port.master, port.addresses, port.ifindex) == ("veth", "docker0", (), 3)
    assert link(inv, "nginx-2", "eth0").addresses == ("172.17.0.3/16",)
    va, vb = link(inv, "same", "va"), link(inv, "same", "vb")
    assert (va.up, va.carrier) == (True, False)  # its peer vb is down
    assert (vb.up, vb.carrier) == (False, False)
    assert [lnk.name for lnk in inv.namespace("same").links] == ["lo", "va", "vb"]  # by name


def test_a_link_of_no_kind_is_a_device():
    host_links = json.loads(DOCKER0[HOST][0]) + [  # a physical NIC: -d shows no linkinfo for it
        {"ifindex": 7, "ifname": "enp1s0", "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"],
         "link_type": "ether"}]
    inv = inventory.collect(FakeIp({"netns": "", HOST: (json.dumps(host_links), DOCKER0[HOST][1])}))
    assert link(inv, HOST, "enp1s0").kind == "device"
    assert link(inv, HOST, "enp1s0").peer is None


# --- peers --------------------------------------------------------------------------------------------------------

def test_veth_peers_are_paired_across_namespaces_both_ways():
    inv = inventory.collect(FakeIp(DOCKER0))
    for i in (1, 2):
        assert link(inv, HOST, f"veth-nginx-{i}").peer == (f"nginx-{i}", "eth0")
        assert link(inv, f"nginx-{i}", "eth0").peer == (HOST, f"veth-nginx-{i}")
    assert link(inv, HOST, "docker0").peer is None  # index 2 like both eth0, but not a veth


def test_veth_peers_in_one_namespace_are_paired_by_name():
    inv = inventory.collect(FakeIp(DOCKER0))
    assert link(inv, "same", "va").peer == ("same", "vb")
    assert link(inv, "same", "vb").peer == ("same", "va")


def test_pairs_that_look_alike_are_told_apart_by_the_peer_namespace_id():
    ids = {"ns1": "ns2", "ns2": "ns1", "ns3": "ns4", "ns4": "ns3"}  # as `ip -n NS netns list-id` names nsid 0
    state = {ns: (*value, f'[{{"nsid":0,"name":"{ids[ns]}"}}]') if ns in ids else value
             for ns, value in ALIKE.items()}
    inv = inventory.collect(FakeIp(state))
    assert link(inv, "ns1", "veth0").peer == ("ns2", "veth1")
    assert link(inv, "ns4", "veth1").peer == ("ns3", "veth0")


def test_pairs_that_look_alike_without_namespace_ids_are_left_unpaired_rather_than_guessed():
    inv = inventory.collect(FakeIp(ALIKE))
    for ns, name in (("ns1", "veth0"), ("ns2", "veth1"), ("ns3", "veth0"), ("ns4", "veth1")):
        assert link(inv, ns, name).peer is None
    table = [line.split() for line in inventory.to_table(inventory.rows(inv)).splitlines()]
    assert [cells[-1] for cells in table if cells[2] == "veth"] == ["?"] * 4


def test_a_peer_in_a_namespace_not_read_is_unknown():
    run = FakeIp(DOCKER0)
    inv = inventory.collect(run, ["nginx-1"])
    assert {ns for ns, _ in run.calls} == {None, "nginx-1"}
    assert link(inv, HOST, "veth-nginx-1").peer == ("nginx-1", "eth0")
    assert link(inv, HOST, "veth-nginx-2").peer is None


# --- what cannot be read ------------------------------------------------------------------------------------------

def test_an_unreadable_namespace_is_reported_not_fatal():
    inv = inventory.collect(FakeIp(DOCKER0, broken=("nginx-2",)))
    assert inv.namespace("nginx-2").links is None
    assert link(inv, HOST, "veth-nginx-2").peer is None
    assert link(inv, HOST, "veth-nginx-1").peer == ("nginx-1", "eth0")
    table = inventory.rows(inv)
    assert Row("nginx-2", None, UNREADABLE) in table
    assert "nginx-2 - - unreadable - - -".split() in [line.split() for line in inventory.to_table(table).splitlines()]


def test_namespaces_that_cannot_be_listed_raise():
    with pytest.raises(InventoryError, match="netns list"):
        inventory.collect(FakeIp({"netns": None}))


# --- the lab's objects --------------------------------------------------------------------------------------------

def test_for_lab_shows_only_the_lab_objects_all_present():
    lab = docker0_lab()
    table = inventory.for_lab(inventory.collect(FakeIp(DOCKER0), ["nginx-1", "nginx-2"]), lab)
    assert statuses(table) == [(ns, name, PRESENT) for ns, name in DOCKER0_OBJECTS]  # no lo, no "same"
    assert table[1].link.peer == ("nginx-1", "eth0")


def test_for_lab_marks_missing_interfaces_and_namespaces_absent():
    lab = docker0_lab()
    half_down = without(without(DOCKER0, "nginx-2"), HOST, "veth-nginx-2")
    table = inventory.for_lab(inventory.collect(FakeIp(half_down), ["nginx-1", "nginx-2"]), lab)
    assert statuses(table) == [(HOST, "docker0", PRESENT), (HOST, "veth-nginx-1", PRESENT),
                               (HOST, "veth-nginx-2", ABSENT), ("nginx-1", "eth0", PRESENT),
                               ("nginx-2", "eth0", ABSENT)]
    assert table[2].link is None and table[4].link is None

    down = {"netns": "", HOST: (DOCKER0[HOST][0].split(",{")[0] + "]", "[]")}
    table = inventory.for_lab(inventory.collect(FakeIp(down), ["nginx-1", "nginx-2"]), lab)
    assert statuses(table) == [(ns, name, ABSENT) for ns, name in DOCKER0_OBJECTS]


def test_for_lab_unreadable_namespace_and_namespace_without_interfaces():
    loc = Loc("x.py", 1)
    lab = Lab("x", "x.py", "", loc, namespaces=(Namespace("nginx-2", loc), Namespace("same", loc),
                                               Namespace("gone", loc)))
    inv = inventory.collect(FakeIp(DOCKER0, broken=("nginx-2",)), ["nginx-2", "same", "gone"])
    assert statuses(inventory.for_lab(inv, lab)) == [
        ("gone", None, ABSENT), ("nginx-2", None, UNREADABLE), ("same", None, PRESENT)]  # no host: none declared


# --- output -------------------------------------------------------------------------------------------------------

def test_json_is_sorted_and_complete():
    lab = docker0_lab()
    inv = inventory.collect(FakeIp(without(DOCKER0, "nginx-2")), ["nginx-1", "nginx-2"])
    text = inventory.to_json(inventory.for_lab(inv, lab))
    assert text == inventory.to_json(inventory.for_lab(inv, lab))
    data = json.loads(text)
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"
    assert [(r["ns"], r["interface"]) for r in data] == DOCKER0_OBJECTS
    assert data[1] == {"ns": HOST, "interface": "veth-nginx-1", "status": PRESENT, "ifindex": 3, "kind": "veth",
                       "up": True, "carrier": True, "addresses": [], "master": "docker0",
                       "peer": {"ns": "nginx-1", "interface": "eth0"}}
    assert data[4] == {"ns": "nginx-2", "interface": "eth0", "status": ABSENT, "ifindex": None, "kind": None,
                       "up": None, "carrier": None, "addresses": None, "master": None, "peer": None}
    assert data[2]["peer"] is None  # its peer's namespace was not read


def test_table_has_aligned_columns_host_first():
    table = inventory.rows(inventory.collect(FakeIp(DOCKER0)))
    assert inventory.to_table(table) == """\
NS       INTERFACE     KIND      STATE          ADDRESSES                                   MASTER   PEER
host     docker0       bridge    up             172.17.0.1/16,fe80::449a:50ff:fea8:ba79/64  -        -
host     lo            loopback  up             127.0.0.1/8,::1/128                         -        -
host     veth-nginx-1  veth      up             -                                           docker0  nginx-1/eth0
host     veth-nginx-2  veth      up             -                                           docker0  nginx-2/eth0
nginx-1  eth0          veth      up             172.17.0.2/16                               -        host/veth-nginx-1
nginx-1  lo            loopback  up             127.0.0.1/8                                 -        -
nginx-2  eth0          veth      up             172.17.0.3/16                               -        host/veth-nginx-2
nginx-2  lo            loopback  up             127.0.0.1/8                                 -        -
same     lo            loopback  down           -                                           -        -
same     va            veth      up/no-carrier  -                                           -        same/vb
same     vb            veth      down           -                                           -        same/va
"""


def test_table_of_absent_rows():
    lab = docker0_lab()
    down = {"netns": "", HOST: (DOCKER0[HOST][0].split(",{")[0] + "]", "[]")}
    assert inventory.to_table(inventory.for_lab(inventory.collect(FakeIp(down)), lab)) == """\
NS       INTERFACE     KIND  STATE   ADDRESSES  MASTER  PEER
host     docker0       -     absent  -          -       -
host     veth-nginx-1  -     absent  -          -       -
host     veth-nginx-2  -     absent  -          -       -
nginx-1  eth0          -     absent  -          -       -
nginx-2  eth0          -     absent  -          -       -
"""
