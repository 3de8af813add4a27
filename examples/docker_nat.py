"""Docker's default bridge network, as `docker run -p 8080:80 nginx` leaves it: docker0 hands out addresses
from its subnets (IPv4 and IPv6), the containers route through it, their traffic out is masqueraded, and port
8080 of the host is published to nginx-1's port 80.

The addresses come from the pools: docker0 takes 172.17.0.1 and fd00:17::1, nginx-1 the next ones, nginx-2
those after (`netgen check examples/docker_nat.py` lists them). Docker's MTU is 1500 on the bridge and on both
ends of every veth; its bridge MAC is pinned here so that it does not change as containers come and go. Each
container serves a page on port 80 (IPv4 and IPv6: family 10 is AF_INET6, which also takes IPv4), with Python's socketserver and http.server standing in for nginx, as
in examples/docker0.py (a service runs with what the host has installed: this one needs python3).
"""
from netgen import Lab

WEB = ('import http.server as h, socketserver as s, sys; page = (sys.argv[1] + "\\n").encode(); '
       's.TCPServer.allow_reuse_address = True; s.TCPServer.address_family = 10; '
       's.TCPServer(("::", 80), type("Page", (h.BaseHTTPRequestHandler,), {"do_GET": lambda r: ('
       'r.send_response(200), r.end_headers(), r.wfile.write(page))})).serve_forever()')
MTU = 1500
lab = Lab("docker_nat")
docker0 = lab.host.bridge("docker0", subnet="172.17.0.0/16", subnet6="fd00:17::/64", mtu=MTU,
                          mac="02:42:ac:11:00:01")
docker0.masquerade()  # like Docker's POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
containers = []
for i in (1, 2):
    nginx = lab.netns(f"nginx-{i}")
    lab.veth(nginx.port("eth0", mtu=MTU), docker0.port(f"veth-nginx-{i}", mtu=MTU, hairpin=True))
    nginx.route("default", via=docker0)  # one default route per family, through the gateway addresses
    nginx.service("web", ["python3", "-c", WEB, f"hello from nginx-{i}"])
    containers.append(nginx)
nginx1, nginx2 = containers

lab.host.publish(8080, nginx1, 80)  # docker run -p 8080:80: every local address of the host, TCP

lab.expect(nginx2).reaches(nginx1)  # 172.17.0.2 and fd00:17::2
lab.expect(nginx1).reaches("fd00:17::1")
lab.expect(nginx2).reaches("172.17.0.2", tcp=80)  # nginx-1's web service answers
