"""The benchmark's cluster: MESH_NODES nodes (default 10) of MESH_PODS pods each (default 20), joined by a flannel
VXLAN overlay, so every node has a neighbour, a forwarding entry and a route for every other node (a full mesh).
No services and no expectations: verify measures reading the nodes, not probing them."""
import os

from netgen import Lab

nodes = int(os.environ.get("MESH_NODES", "10"))
pods = int(os.environ.get("MESH_PODS", "20"))
lab = Lab("mesh")
cni0 = []
for n in range(1, nodes + 1):
    node = lab.node(f"node{n}", underlay=f"192.168.60.{10 + n}/24", dev="eth0")
    bridge = node.host.bridge("cni0", subnet=f"10.244.{n}.0/24", mtu=1450)
    for p in range(1, pods + 1):
        pod = node.netns(f"pod-{n}-{p}")
        lab.veth(pod.port("eth0", mtu=1450), bridge.port(f"veth-{n}-{p}", mtu=1450))
        pod.route("default", via=bridge)
    cni0.append(bridge)
lab.vxlan_overlay(*cni0)
