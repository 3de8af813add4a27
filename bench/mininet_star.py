"""Mininet's side of the benchmark: the star lab (N hosts on one Linux bridge, no controller), run by bench/run.py
inside its sandbox with the system's python3. Prints the seconds to start and to stop."""
import sys
import time

from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.nodelib import LinuxBridge

n = int(sys.argv[1])
setLogLevel("error")
start = time.perf_counter()
net = Mininet(switch=LinuxBridge, controller=None, build=False)
hub = net.addSwitch("s1")
for i in range(1, n + 1):
    net.addLink(net.addHost(f"h{i}", ip=f"10.200.{i // 250}.{i % 250 + 2}/16"), hub)
net.build()
net.start()
started = time.perf_counter()
net.stop()
print(started - start, time.perf_counter() - started)
