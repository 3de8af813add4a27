"""The seed article's second scenario: a bridge br0 in the host, with a veth pair to each of two namespaces."""
from netgen import Lab

lab = Lab("bridge")
br0 = lab.host.bridge("br0")
for i in (0, 1):
    ns = lab.netns(f"ns{i + 1}")
    # The br-veth end goes into the namespace, the brvethotherend end (15 characters, the most Linux allows)
    # becomes a port of br0.
    lab.veth(ns.port(f"br-veth{i}", f"192.168.11.{200 + i}/24"), br0.port(f"brvethotherend{i}"))

lab.expect("ns1").reaches("192.168.11.201")
lab.expect("ns2").reaches("192.168.11.200")
