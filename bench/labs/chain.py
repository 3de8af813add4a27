"""The benchmark's chain of routers: CHAIN_N namespaces in a line behind the host, each joined to the one before
it by a veth in its own /30, forwarding, with a default route back towards the host."""
import os

from netgen import Lab

n = int(os.environ.get("CHAIN_N", "100"))
lab = Lab("chain")
previous = lab.host
for i in range(1, n + 1):
    router = lab.netns(f"r-{i}")
    net = f"10.{100 + i // 64}.{(i % 64) * 4}"
    lab.veth(previous.port(f"to-r{i}", f"{net}.1/30"), router.port("up", f"{net}.2/30"))
    router.route("default", via=f"{net}.1")
    router.sysctl("net.ipv4.ip_forward", "1")
    previous = router
