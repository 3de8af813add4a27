"""One L2 segment over two nodes, as a Docker overlay network makes one: containers on different machines share
a subnet, and ARP for each other as if on one switch.

On each node a bridge br0 holds two containers of the subnet 10.0.1.0/24; l2_segment() joins the bridges with a
vxlan port vx0 on each (`type vxlan id 4097 local NODE_IP dev eth0 dstport 4789`: Docker's first overlay VNI and
the IANA VXLAN port), and gives it a flood entry per other node (`bridge fdb append 00:00:00:00:00:00 dev vx0 dst
192.168.60.12 self permanent`): a broadcast, or a frame for a MAC not yet learned, goes to every other node, whose
vx0 learns which node each MAC is behind. Nothing is routed: addresses are unique over the whole segment, and the
containers' links take the vxlan device's MTU (1450), as Docker gives them.
"""
from netgen import Lab

WEB = ('import http.server as h, socketserver as s, sys; page = (sys.argv[1] + "\\n").encode(); '
       's.TCPServer.allow_reuse_address = True; '
       's.TCPServer(("", 80), type("Page", (h.BaseHTTPRequestHandler,), {"do_GET": lambda r: ('
       'r.send_response(200), r.end_headers(), r.wfile.write(page))})).serve_forever()')
MTU = 1450

lab = Lab("overlay_l2")
bridges, containers = [], []
for n in (1, 2):
    node = lab.node(f"node{n}", underlay=f"192.168.60.{10 + n}/24", dev="eth0")
    br0 = node.host.bridge("br0", mtu=MTU)
    for c in (1, 2):
        host = 2 * n + c - 1  # node1: .2 and .3, node2: .4 and .5
        container = node.netns(f"c{n}-{c}")
        lab.veth(container.port("eth0", f"10.0.1.{host}/24", mtu=MTU), br0.port(f"veth-c{n}-{c}", mtu=MTU))
        container.service("web", ["python3", "-c", WEB, f"hello from c{n}-{c}"])
        containers.append(container)
    bridges.append(br0)
lab.l2_segment(*bridges)  # Docker's defaults: VNI 4097, UDP port 4789, device vx0

c11, c12, c21, c22 = containers
lab.expect(c11).reaches(c21, tcp=80)  # across the nodes, on one subnet
lab.expect(c22).reaches(c12)
