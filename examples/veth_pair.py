"""The seed article's first scenario: two namespaces joined directly by one veth pair."""
from netgen import Lab

lab = Lab("veth_pair")
ns1 = lab.netns("ns1")
ns2 = lab.netns("ns2")
lab.veth(ns1.port("veth0", "192.168.10.200/24"), ns2.port("veth1", "192.168.10.201/24"))

lab.expect(ns1).reaches("192.168.10.201")
lab.expect(ns2).reaches("192.168.10.200")
