"""Re-record what the scripts read, as each Debian release prints it:
`.venv/bin/python tools/record_hosts.py [SUITE...]`.

For each root (tests/roots.py: Debian 11, 12, 13) it builds examples/docker_nat.py in a sandbox chrooted into the
root, with the root's own tools, and writes to tests/data/SUITE/:

  versions.txt       `ip -V`, `nft -v`, bash's and nsenter's own words, and dpkg's versions
  ip-link.json       `ip -j -d link show` in the host (docker0, its veth ends), then in nginx-1, one line each
  ip-addr.json       `ip -j addr show`, the same
  ip-route.json      `ip -j route show table all`, the same
  ip-netns.json      `ip -j netns list`
  ip-batch-json.txt  the host's reading as up.sh asks for it: `ip -j -d -batch -` of netns list, addr show, route
                     show table all and neigh show nud permanent
  bridge-fdb.json    `bridge -j fdb show` in a namespace with a vxlan device and two permanent entries made by hand
  nft-table.txt      `nft list table inet netgen-docker_nat`

The tests that read them (tests/unit/test_hosts.py) check that every version reads the same. Needs root.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import roots  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"

RECORD = r"""
set -euo pipefail
out=/mnt/data
{
  ip -V
  nft -v
  bash --version | head -n 1
  nsenter --version
  dpkg-query -W -f '${Package} ${Version}\n' bash iproute2 nftables util-linux mawk python3
} >$out/versions.txt
{ ip -j -d link show; ip -n nginx-1 -j -d link show; } >$out/ip-link.json
{ ip -j addr show; ip -n nginx-1 -j addr show; } >$out/ip-addr.json
{ ip -j route show table all; ip -n nginx-1 -j route show table all; } >$out/ip-route.json
ip -j netns list >$out/ip-netns.json
printf 'netns list\naddr show\nroute show table all\nneigh show nud permanent\n' |
  ip -j -d -batch - >$out/ip-batch-json.txt
nft list table inet netgen-docker_nat >$out/nft-table.txt
ip netns add rec-vx
ip -n rec-vx link add vx0 type vxlan id 42 local 192.0.2.1 dstport 4789 nolearning
ip -n rec-vx link set vx0 address 02:00:00:00:00:42 up
bridge -n rec-vx fdb append 00:00:00:00:00:00 dev vx0 dst 192.0.2.2 self permanent
bridge -n rec-vx fdb replace 02:00:00:00:00:43 dev vx0 dst 192.0.2.3 self permanent
bridge -n rec-vx -j fdb show >$out/bridge-fdb.json
ip netns del rec-vx
"""


def record(suite: str) -> Path:
    root = roots.root(suite)
    target = DATA / suite
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(REPO / "out" / "docker_nat", work / "docker_nat")
        (work / "data").mkdir()
        with roots.RootSandbox(root, work) as box:
            for step in ("bash /mnt/docker_nat/up.sh", RECORD, "bash /mnt/docker_nat/down.sh"):
                done = box.run_root(step)
                if done.returncode:
                    raise SystemExit(f"{suite}: {step.strip().splitlines()[0]}: exit {done.returncode}\n"
                                     f"{done.stdout}{done.stderr}")
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(work / "data", target)
    return target


if __name__ == "__main__":
    for name in sys.argv[1:] or list(roots.SUITES):
        print(record(name))
