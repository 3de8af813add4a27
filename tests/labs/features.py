"""Everything the DSL offers in one lab: a routed chain ns-a -- router -- ns-b with IPv6, pinned MTU and MAC,
a bridge inside a namespace, a veth with both ends in one namespace, and an isolation expectation."""
from netgen import Lab

lab = Lab("features")
a, router, b, lonely = (lab.netns(n) for n in ("ns-a", "router", "ns-b", "lonely"))


def link(left, lname, laddrs, right, rname, raddrs, **kw):
    return lab.veth(left.port(lname, *laddrs, **kw), right.port(rname, *raddrs, **kw))


link(a, "to-r", ["10.1.0.2/24", "2001:db8:1::2/64"], router, "to-a", ["10.1.0.1/24", "2001:db8:1::1/64"], mtu=1400)
sw = router.bridge("sw0", "10.2.0.1/24", "2001:db8:2::1/64", mac="02:00:00:00:02:01")
lab.veth(sw.port("sw-b"), b.port("to-r", "10.2.0.2/24", "2001:db8:2::2/64", mac="02:00:00:00:02:02"))
lab.veth(router.port("loop-x", "10.3.0.1/30"), router.port("loop-y", "10.3.0.2/30"))
lab.veth(lonely.port("e0", "10.9.0.1/24"), lonely.port("e1"))

a.route("default", via="10.1.0.1")
a.route("default", via="2001:db8:1::1")
b.route("10.1.0.0/16", via="10.2.0.1", dev="to-r")
b.route("2001:db8:1::/64", via="2001:db8:2::1")
router.route("10.7.0.7/32", dev="to-a")

router.sysctl("net.ipv4.ip_forward", 1)
router.sysctl("net.ipv6.conf.all.forwarding", 1)

lab.expect(a).reaches("10.2.0.2")
lab.expect(a).reaches("2001:db8:2::2")
lab.expect(b).reaches("10.1.0.2")
lab.expect(lonely).cannot_reach("10.1.0.1")
