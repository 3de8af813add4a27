"""A throwaway place to run labs: new network and mount namespaces with a private /run (netns; the scripts make netgen).

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
# A private /run (made inside the sandbox, so nothing is created on the machine's own /run)
# -n: util-linux's mount would otherwise first make /run/mount (where it records mounts) in the machine's /run
mount -n -t tmpfs netgen-sandbox /run
mkdir -p /run/netns  # the scripts make /run/netgen themselves, root-only
ip link set lo up
echo ready
exec sleep infinity
"""

# Lines for a bash wrapper (of ip, say) that SIGKILL the up.sh running it: every ancestor that is `bash .../up.sh`
# (the script and its subshells), and no other, so that tests running beside other netgen runs kill only their own.
KILL_UP_SH = r"""
p=$PPID
while ((p > 1)); do
  parent=$(ps -o ppid= -p "$p") || break
  if [[ $(tr '\0' ' ' </proc/$p/cmdline) == "bash "*/up.sh* ]]; then kill -KILL "$p"; fi
  p=$((parent))
done
"""

# Fields that change by themselves (timers, counters) are left out of snapshots.
_VOLATILE = ("timer", "stats", "valid_life_time", "preferred_life_time", "expires")


# What the kernel derives for a bridge from its ports (carrier and flags, MAC, offload sizes), left out of
# snapshots that compare a bridge the lab does not own before and after the lab's ports used it.
_CARRIER = ("operstate", "flags", "address", "tso_max", "gso_max")


def _stable(value, volatile=_VOLATILE):
    if isinstance(value, dict):
        return {k: _stable(v, volatile) for k, v in value.items() if not any(word in k for word in volatile)}
    if isinstance(value, list):
        return [_stable(v, volatile) for v in value]
    return value


class Sandbox:
    def __init__(self, pid: bool = False):
        """pid=True: a PID namespace of its own too (with its own /proc), so that what a test runs there sees and
        can signal only the sandbox's processes; they all end when the sandbox closes (its init is killed)."""
        self.pid = pid
        own_pids = ["--pid", "--kill-child", "--mount-proc"] if pid else []  # --kill-child implies --fork
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", *own_pids, "--propagation", "private", "bash", "-c", SETUP],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        assert self.proc.stdout.readline().strip() == "ready", "sandbox did not start"
        # Commands enter the sandbox through its first process: unshare itself, or with a PID namespace the child it
        # forked (unshare stays in the machine's PID namespace).
        self.target = self.proc.pid
        if pid:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as children:
                self.target = int(children.read().split()[0])
        self.enter = ["nsenter", "-t", str(self.target), "--net", "--mount", *(["--pid"] if pid else [])]

    def run(self, command: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run a bash command inside the sandbox; returns the finished process (never raises on exit code)."""
        return subprocess.run(
            [*self.enter, "bash", "-c", command],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})})

    def snapshot(self, carrier: bool = True) -> dict:
        """Links, addresses, routes and forwarding sysctls of the sandbox's host and of every named namespace, and
        the host's nftables ruleset."""
        out = self.run(r"""
            for ns in host $(ip netns list | awk '{print $1}'); do
              if [[ $ns == host ]]; then n=(); else n=(-n "$ns"); fi
              printf '%s\t' "$ns"
              printf '{"link": %s, "addr": %s, "route4": %s, "route6": %s, "sysctl": "%s"}\n' \
                "$(ip "${n[@]}" -d -j link show)" "$(ip "${n[@]}" -j addr show)" \
                "$(ip "${n[@]}" -j route show table all)" "$(ip "${n[@]}" -6 -j route show table all)" \
                "$(if [[ $ns == host ]]; then e=(); else e=(ip netns exec "$ns"); fi
                   "${e[@]}" cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv6/conf/all/forwarding | tr '\n' ' ')"
            done""")
        assert out.returncode == 0, out.stderr
        state = {}
        for line in out.stdout.splitlines():
            ns, data = line.split("\t", 1)
            state[ns] = _stable(json.loads(data))
        nft = self.run("if command -v nft >/dev/null; then nft list ruleset; else echo nft is not installed; fi")
        assert nft.returncode == 0, nft.stderr
        state["host"]["nft"] = nft.stdout
        return state if carrier else _stable(state, _CARRIER)

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


def differences(before, after, path: str = "") -> list[str]:
    """Where two snapshots differ, as readable paths: for assertion messages."""
    if type(before) is not type(after):
        return [f"{path}: {before!r} -> {after!r}"]
    if isinstance(before, dict):
        return [d for k in sorted(set(before) | set(after), key=str)
                for d in differences(before.get(k), after.get(k), f"{path}/{k}")]
    if isinstance(before, list):
        if len(before) != len(after):
            gone = [x for x in before if x not in after]
            new = [x for x in after if x not in before]
            return [f"{path}: gone {gone!r}, new {new!r}"]
        return [d for i, (x, y) in enumerate(zip(before, after, strict=True))
                for d in differences(x, y, f"{path}[{i}]")]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]
