"""Part two of the seed article: pods on two nodes reach each other, routed as flannel's host-gw backend does it.

Two nodes, node1 (192.168.60.11) and node2 (192.168.60.12), share one underlay network on their eth0. On each,
the CNI bridge cni0 holds the node's pod subnet (10.244.1.0/24 and 10.244.2.0/24; cni0 takes .1, the gateway)
and two pods hang off it, each serving a page on port 80 (Python's socketserver standing in for nginx, as in examples/docker0.py). host_gw()
adds what flannel's daemon would on each node: a route to every other node's pod subnet via that node's underlay
address (on node1, `ip route replace 10.244.2.0/24 via 192.168.60.12 dev eth0`), forwarding on, and masquerading
of what the pods send out of the cluster (not of what they send each other). Between the nodes, packets carry the
pods' own addresses: nothing is encapsulated. `netgen compile examples/host_gw.py -o DIR` writes DIR/node1/ and
DIR/node2/, each node's scripts.
"""
from netgen import Lab

WEB = ('import http.server as h, socketserver as s, sys; page = (sys.argv[1] + "\\n").encode(); '
       's.TCPServer.allow_reuse_address = True; '
       's.TCPServer(("", 80), type("Page", (h.BaseHTTPRequestHandler,), {"do_GET": lambda r: ('
       'r.send_response(200), r.end_headers(), r.wfile.write(page))})).serve_forever()')

lab = Lab("host_gw")
cni0, pods = [], []
for n in (1, 2):
    node = lab.node(f"node{n}", underlay=f"192.168.60.{10 + n}/24", dev="eth0")
    bridge = node.host.bridge("cni0", subnet=f"10.244.{n}.0/24")
    for p in (1, 2):
        pod = node.netns(f"pod-{n}-{p}")  # its eth0 takes 10.244.N.2, then .3
        lab.veth(pod.port("eth0"), bridge.port(f"veth-{n}-{p}"))
        pod.route("default", via=bridge)
        pod.service("web", ["python3", "-c", WEB, f"hello from pod-{n}-{p}"])
        pods.append(pod)
    cni0.append(bridge)
lab.host_gw(*cni0)

pod11, pod12, pod21, pod22 = pods
lab.expect(pod11).reaches(pod21, tcp=80)  # across the nodes: node1's verify checks it
lab.expect(pod22).reaches(pod12, tcp=80)
lab.expect(pod11).reaches(pod12)  # on one node, through cni0
