"""The benchmark's star: STAR_N namespaces (default 100), each with one veth to one bridge in the host, one IPv4
address and lo up. No expectations, so verify measures reading the lab, not pinging it. STAR_ADOPT=1: the leaves
may exist before up (adopt=True), for the tests."""
import os

from netgen import Lab

n = int(os.environ.get("STAR_N", "100"))
lab = Lab("star")
hub = lab.host.bridge("star0", "10.200.0.1/16")
for i in range(1, n + 1):
    leaf = lab.netns(f"leaf-{i}", adopt=os.environ.get("STAR_ADOPT") == "1")
    lab.veth(leaf.port("eth0", f"10.200.{i // 250}.{i % 250 + 2}/16"), hub.port(f"star-{i}"))
