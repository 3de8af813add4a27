"""The seed article's third scenario: Docker's docker0 bridge, rebuilt by hand.

Each container is a namespace whose eth0 is one end of a veth pair; the other end is a port of docker0, which
holds the gateway address. The host reaches the containers through the route the kernel adds for 172.17.0.0/16.
"""
from netgen import Lab

lab = Lab("docker0")
docker0 = lab.host.bridge("docker0", "172.17.0.1/16")
for i in (1, 2):
    nginx = lab.netns(f"nginx-{i}")
    lab.veth(nginx.port("eth0", f"172.17.0.{i + 1}/16"), docker0.port(f"veth-nginx-{i}"))
    nginx.route("default", via="172.17.0.1")

lab.expect("nginx-2").reaches("172.17.0.2", tcp=80)  # nginx-1 serves HTTP on port 80
lab.expect("host").reaches("172.17.0.2")
lab.expect("nginx-1").reaches("172.17.0.3")
