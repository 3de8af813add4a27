"""Simulated nodes for live tests: the simulation `netgen try` runs (netgen.simulation), driven with subprocess.

    with Cluster(compile_lab("examples/host_gw.py").lab.nodes) as cluster:    # model.Node: name, underlay, dev, mtu
        cluster.run("node1", "ping -c1 192.168.60.12")
        before = cluster.snapshot("node2")

Each node has network, mount, UTS and PID namespaces of its own, a private /run and its name as hostname; its
underlay device is a veth into the bridge `underlay` of the outer sandbox (ports ul0, ul1, ... in the nodes' order),
where `ip -n NODE` reaches the node's network. Commands start in /; close() ends every process of it all.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

from sandbox import _stable

from netgen.simulation import Simulation

# Each part of a node's state, per namespace ("host" is the node's own), after a line "\x1e NS PART".
SNAPSHOT = r"""
set -uo pipefail
for ns in host $(ip netns list | awk '{print $1}'); do
  if [[ $ns == host ]]; then n=() in=(); else n=(-n "$ns") in=(nsenter "--net=/run/netns/$ns"); fi
  printf '\036%s link\n' "$ns"; ip "${n[@]}" -d -j link show
  printf '\036%s addr\n' "$ns"; ip "${n[@]}" -j addr show
  printf '\036%s route4\n' "$ns"; ip "${n[@]}" -j route show table all
  printf '\036%s route6\n' "$ns"; ip "${n[@]}" -6 -j route show table all
  printf '\036%s neigh\n' "$ns"; ip "${n[@]}" -j neigh show
  printf '\036%s fdb\n' "$ns"; bridge "${n[@]}" -j fdb show
  printf '\036%s sysctl\n' "$ns"; "${in[@]}" sysctl -a -r '^net\.' 2>/dev/null
  printf '\036%s nft\n' "$ns"
  if command -v nft >/dev/null; then "${in[@]}" nft list ruleset; else echo nft is not installed; fi
done
"""

# What traffic teaches a node (neighbours it resolved, MACs its bridges learned) or counts, rather than what a lab
# sets: left out of snapshots, so that a node pinged during a test still equals itself from before.
_LEARNED_NEIGHBOUR = ("REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "INCOMPLETE")
_VOLATILE_SYSCTL = ("nf_conntrack_count",)


def _part(kind: str, body: str):
    if kind == "nft":
        return body
    if kind == "sysctl":
        pairs = (line.split(" = ", 1) for line in body.splitlines() if " = " in line)
        return {k: v for k, v in pairs if not k.endswith(_VOLATILE_SYSCTL)}
    data = _stable(json.loads(body or "[]"))
    if kind == "neigh":
        return [e for e in data if not set(e.get("state", ())) & set(_LEARNED_NEIGHBOUR)]
    if kind == "fdb":
        return [e for e in data if e.get("state") in ("permanent", "static")]
    return data


class Cluster:
    def __init__(self, nodes, **simulation):
        """`simulation`: Simulation's options (root, folder, name_resolves)."""
        self.simulation = Simulation(nodes, **simulation)
        self.nodes = [node.name for node in nodes]

    def enter(self, node: str | None) -> list[str]:
        """The command line that runs what follows it inside `node` (None: the outer sandbox)."""
        return self.simulation.enter(node)

    def run(self, node: str | None, command: str, timeout: float = 120,
            env: dict | None = None) -> subprocess.CompletedProcess:
        """Run a bash command inside `node` (None: the outer sandbox); the finished process (never raises on its
        exit code)."""
        return subprocess.run([*self.enter(node), "bash", "-c", command], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})

    def run_outer(self, command: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a bash command in the outer sandbox, where the bridge `underlay` joins the nodes."""
        return self.run(None, command, timeout)

    def start(self, node: str | None, command: str, **popen) -> subprocess.Popen:
        """Start a bash command inside `node` (None: the outer sandbox) and return at once (a server, tcpdump);
        it ends with the cluster at the latest."""
        return subprocess.Popen([*self.enter(node), "bash", "-c", command], stdin=subprocess.DEVNULL, **popen)

    def snapshot(self, node: str) -> dict:
        """The whole state of a node, per namespace ("host": the node's own): links, addresses, routes,
        neighbours, fdb entries, net.* sysctls and the nftables ruleset, without what traffic teaches it."""
        out = self.run(node, SNAPSHOT)
        assert out.returncode == 0, out.stderr
        state: dict = {}
        for part in out.stdout.split("\036")[1:]:
            head, body = part.split("\n", 1)
            ns, kind = head.split(" ")
            state.setdefault(ns, {})[kind] = _part(kind, body)
        return state

    def settled_snapshot(self, node: str, seconds: float = 10) -> dict:
        """A snapshot once the kernel has stopped changing the node by itself (IPv6 DAD, carrier)."""
        deadline = time.monotonic() + seconds
        last = self.snapshot(node)
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.snapshot(node)
            if now == last and '"tentative"' not in json.dumps(now):
                return now
            last = now
        raise AssertionError(f"{node} did not settle")

    def close(self) -> None:
        """End every process of the simulation; its namespaces go with them."""
        self.simulation.close()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_) -> None:
        self.close()
