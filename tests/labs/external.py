"""Containers on a bridge that exists before the lab (like a docker0 Docker made), with forwarding on in the host."""
from netgen import Lab

lab = Lab("external")
br = lab.host.bridge("br-ext", "10.50.0.1/24", external=True)
for i in (1, 2):
    c = lab.netns(f"c{i}")
    lab.veth(c.port("eth0", f"10.50.0.{i + 1}/24"), br.port(f"ext-c{i}"))
    c.route("default", via="10.50.0.1")
lab.host.sysctl("net.ipv4.ip_forward", 1)
lab.host.sysctl("net.ipv6.conf.all.forwarding", 1)
lab.expect("c1").reaches("10.50.0.3")
