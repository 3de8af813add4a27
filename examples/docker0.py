"""The seed article's third scenario: Docker's docker0 bridge, rebuilt by hand.

Each container is a namespace whose eth0 is one end of a veth pair; the other end is a port of docker0, which
holds the gateway address. The host reaches the containers through the route the kernel adds for 172.17.0.0/16.
Each container serves a page on port 80, with Python's socketserver and http.server standing in for nginx (a
service runs with what the host has installed: this one needs python3). TCPServer, not http.server's HTTPServer,
which looks up the host's name before it listens: where that name does not resolve, the port would refuse
connections for many seconds.
"""
from netgen import Lab

WEB = ('import http.server as h, socketserver as s, sys; page = (sys.argv[1] + "\\n").encode(); '
       's.TCPServer.allow_reuse_address = True; '
       's.TCPServer(("", 80), type("Page", (h.BaseHTTPRequestHandler,), {"do_GET": lambda r: ('
       'r.send_response(200), r.end_headers(), r.wfile.write(page))})).serve_forever()')

lab = Lab("docker0")
docker0 = lab.host.bridge("docker0", "172.17.0.1/16")
for i in (1, 2):
    nginx = lab.netns(f"nginx-{i}")
    lab.veth(nginx.port("eth0", f"172.17.0.{i + 1}/16"), docker0.port(f"veth-nginx-{i}"))
    nginx.route("default", via="172.17.0.1")
    nginx.service("web", ["python3", "-c", WEB, f"hello from nginx-{i}"])

lab.expect("nginx-2").reaches("172.17.0.2", tcp=80)  # nginx-1's web service answers
lab.expect("host").reaches("172.17.0.2")
lab.expect("nginx-1").reaches("172.17.0.3")
