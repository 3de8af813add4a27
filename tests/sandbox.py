"""A throwaway place to run labs: new network and mount namespaces with a private /run/netns and /run/lock.

The lab's "host" is the sandbox's own network namespace, so nothing touches the machine's root namespace.
Commands run inside it through nsenter; when the sandbox closes, its namespaces and everything in them go.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

SETUP = """
set -euo pipefail
mkdir -p /run/netns /run/lock
mount -t tmpfs netgen-sandbox /run/netns
mount -t tmpfs netgen-sandbox /run/lock
ip link set lo up
echo ready
exec sleep infinity
"""

# Fields that change by themselves (timers, counters) are left out of snapshots.
_VOLATILE = ("timer", "stats", "valid_life_time", "preferred_life_time", "expires")


def _stable(value):
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if not any(word in k for word in _VOLATILE)}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


class Sandbox:
    def __init__(self):
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "bash", "-c", SETUP],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert self.proc.stdout.readline().strip() == "ready", "sandbox did not start"

    def run(self, command: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run a bash command inside the sandbox; returns the finished process (never raises on exit code)."""
        return subprocess.run(
            ["nsenter", "-t", str(self.proc.pid), "--net", "--mount", "bash", "-c", command],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})})

    def snapshot(self) -> dict:
        """Links, addresses and routes of the sandbox's host and every named namespace, plus the namespace list."""
        out = self.run(r"""
            for ns in host $(ip netns list | awk '{print $1}'); do
              if [[ $ns == host ]]; then n=(); else n=(-n "$ns"); fi
              printf '%s\t' "$ns"
              printf '{"link": %s, "addr": %s, "route4": %s, "route6": %s}\n' \
                "$(ip "${n[@]}" -d -j link show)" "$(ip "${n[@]}" -j addr show)" \
                "$(ip "${n[@]}" -j route show table all)" "$(ip "${n[@]}" -6 -j route show table all)"
            done""")
        assert out.returncode == 0, out.stderr
        state = {}
        for line in out.stdout.splitlines():
            ns, data = line.split("\t", 1)
            state[ns] = _stable(json.loads(data))
        return state

    def settled_snapshot(self, seconds: float = 10) -> dict:
        """A snapshot once the kernel has stopped changing things by itself (IPv6 DAD, carrier)."""
        deadline = time.monotonic() + seconds
        last = self.snapshot()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = self.snapshot()
            if now == last and '"tentative"' not in json.dumps(now):
                return now
            last = now
        raise AssertionError("the sandbox did not settle")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
