"""Part two of the seed article: pods on two nodes reach each other through a VXLAN overlay, as flannel's vxlan
backend builds it.

The same two nodes, pod subnets and pods as examples/host_gw.py, but the nodes need only reach each other's
underlay address (a router between them would do). vxlan_overlay() gives each node what flannel's daemon would:
a vxlan device flannel.1 (`type vxlan id 1 local 192.168.60.11 dev eth0 dstport 8472 nolearning`) with a fixed
MAC, the address 10.244.1.0/32 and an MTU of 1450 (50 below the underlay's 1500: the room for the outer headers);
and for the other node a permanent neighbour (10.244.2.0 is node2's flannel.1 MAC), a forwarding entry (that MAC
is at 192.168.60.12) and a route (10.244.2.0/24 via 10.244.2.0 dev flannel.1 onlink). Nothing is learned: every
entry is computed at compile time. On the underlay, a pod's packet travels inside UDP port 8472. The pods' links
take the overlay's MTU, as flannel's CNI configuration gives them.
"""
from netgen import Lab

WEB = ('import http.server as h, socketserver as s, sys; page = (sys.argv[1] + "\\n").encode(); '
       's.TCPServer.allow_reuse_address = True; '
       's.TCPServer(("", 80), type("Page", (h.BaseHTTPRequestHandler,), {"do_GET": lambda r: ('
       'r.send_response(200), r.end_headers(), r.wfile.write(page))})).serve_forever()')
MTU = 1450

lab = Lab("flannel_vxlan")
cni0, pods = [], []
for n in (1, 2):
    node = lab.node(f"node{n}", underlay=f"192.168.60.{10 + n}/24", dev="eth0")
    bridge = node.host.bridge("cni0", subnet=f"10.244.{n}.0/24", mtu=MTU)
    for p in (1, 2):
        pod = node.netns(f"pod-{n}-{p}")  # its eth0 takes 10.244.N.2, then .3
        lab.veth(pod.port("eth0", mtu=MTU), bridge.port(f"veth-{n}-{p}", mtu=MTU))
        pod.route("default", via=bridge)
        pod.service("web", ["python3", "-c", WEB, f"hello from pod-{n}-{p}"])
        pods.append(pod)
    cni0.append(bridge)
lab.vxlan_overlay(*cni0)  # flannel's defaults: VNI 1, UDP port 8472, device flannel.1

pod11, pod12, pod21, pod22 = pods
lab.expect(pod11).reaches(pod21, tcp=80)  # across the nodes: node1's verify checks it
lab.expect(pod22).reaches(pod12, tcp=80)
lab.expect(pod11).reaches(pod12)  # on one node, through cni0
