"""A lab's nodes simulated on one machine, for `netgen try` and the tests: part of the executor (it runs things).

Inside one outer sandbox (new network, mount and PID namespaces, a private /run) a bridge, `underlay`, is the switch
the nodes' underlay devices plug into. Each node has network, mount, UTS and PID namespaces of its own, a private
/run (with /run/netns; the scripts make /run/netgen), its own /sys, the node's name as hostname (and in its
/etc/hosts), lo up, and its underlay device: a veth whose peer is a port of `underlay` (ul0, ul1, ... in the order
the nodes are given), with the node's address and MTU, up. The outer sandbox names each node's network after the node
(`ip -n NODE` there).

Every process of the simulation lives in the outer PID namespace, which ends when its first process does; that
process ends with the unshare netgen started, which ends with netgen (setpriv --pdeathsig). So nothing outlives
the simulation, even when netgen is killed.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import sh

if TYPE_CHECKING:
    from .model import Node


class SimulationError(Exception):
    """The simulation could not start; str() says why."""


# The outer sandbox's first process. Arguments: the node script, then NAME UNDERLAY DEV MTU for each node. It says
# "NAME PID" for each node (PID as the outer sandbox sees it) once the node is up, then "ready".
OUTER = r"""
set -euo pipefail
node_init=$1
shift
# -n: util-linux's mount would otherwise first make /run/mount (where it records mounts) in the machine's /run
mount -n -t tmpfs netgen-nodes /run
mkdir /run/netns
ip link set lo up
ip link add underlay type bridge
ip link set underlay up
mkfifo /run/started
i=0
while (($#)); do
  name=$1 address=$2 dev=$3 mtu=$4
  shift 4
  unshare --net --mount --uts --pid --kill-child --mount-proc --propagation private \
    bash -c "$node_init" netgen-node "$name" 3>/run/started &
  read -r _ </run/started || { echo "node $name did not start" >&2; exit 1; }
  pid=$(</proc/$!/task/$!/children)
  pid=${pid%% *}
  ip netns attach "$name" "$pid"
  ip link add "ul$i" mtu "$mtu" type veth peer name "$dev" mtu "$mtu" netns "$name"
  ip link set "ul$i" master underlay up
  flags=()
  if [[ $address == *:* ]]; then flags=(nodad); fi  # the nodes' IPv6 underlay is usable at once
  ip -n "$name" addr add "$address" dev "$dev" "${flags[@]}"
  ip -n "$name" link set "$dev" up
  echo "$name $pid"
  i=$((i + 1))
done
rm /run/started
echo ready
exec >&-
# As init of the PID namespace, reap what ends here (a bash that waits reaps every child, not only its own)
sleep infinity &
wait
"""

# A node's first process (its PID namespace's init). Argument: the node's name. Says "started" on fd 3.
NODE = r"""
set -euo pipefail
mount -n -t tmpfs netgen-node /run
mkdir /run/netns
mount -n -t sysfs sysfs /sys  # /sys/class/net lists this node's links, as on a machine
echo "$1" >/proc/sys/kernel/hostname
"""
# Its name resolves, as on a machine (127.0.1.1, as Debian's installer writes it): a lookup of it (Python's
# http.server makes one) would otherwise wait for a DNS server the node cannot reach. Left out for nodes whose name
# resolves nowhere, as on many cloud images (name_resolves=False).
NODE_NAMED = r"""
if [[ -f /etc/hosts ]]; then
  { cat /etc/hosts; echo "127.0.1.1 $1"; } >/run/hosts
  mount -n --bind /run/hosts /etc/hosts
fi
"""
NODE_END = r"""
ip link set lo up
echo started >&3
exec 3>&-
sleep infinity &
wait
"""

# With another root (a Debian release's, say): the outer sandbox's first process mounts its /proc (this PID
# namespace's), /dev, /sys and, at its /mnt, a folder of the caller's, then chroots into it and runs the outer script
# there, with the root's bash and tools. Arguments: the root, the folder (or ""), the outer script, and its own.
IN_ROOT = r"""
set -euo pipefail
root=$1 folder=$2 outer=$3
shift 3
mount -n --bind "$root" "$root" # a mount point: the nodes' unshare makes the chroot's / private
mount -n -t proc proc "$root/proc"
mount -n --rbind /dev "$root/dev"
mount -n --rbind /sys "$root/sys"
if [[ -n $folder ]]; then mount -n --bind "$folder" "$root/mnt"; fi
exec chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
  LANG=C.UTF-8 bash -c "$outer" netgen-nodes "$@"
"""

# nsenter -F enters a PID namespace for the children of the command it runs, not for the command itself: this bash
# forks the command into the namespace (a last command would be exec'd, so it is not last), and waits for it. Unlike
# nsenter's own fork, it outlives a Ctrl-C that the command handles, so the command's exit code is what comes back.
FORK = '"$@"; exit'


class Simulation:
    """The nodes, running: enter(node) is the command line that runs a program inside that node, close() ends it
    all. Start it as a context manager or call close()."""

    def __init__(self, nodes: Sequence[Node], root: str | None = None, folder: str | None = None,
                 name_resolves: bool = True):
        """`root`: run everything chrooted into this root directory (another release's tools), with `folder` at its
        /mnt. `name_resolves=False`: a node's name is not in its /etc/hosts."""
        specs = [str(value) for node in nodes for value in (node.name, node.underlay, node.dev, node.mtu)]
        node = NODE + (NODE_NAMED if name_resolves else "") + NODE_END
        first = ["bash", "-c", OUTER, "netgen-nodes"] if root is None else \
            ["bash", "-c", IN_ROOT, "netgen-root", root, folder or "", OUTER]
        self._root = root
        try:
            self._process = sh.Command("setpriv")(
                "--pdeathsig", "KILL", "unshare", "--net", "--mount", "--pid", "--kill-child", "--mount-proc",
                "--propagation", "private", *first, node, *specs,
                _iter=True, _new_session=True, _bg_exc=False)  # no terminal signal reaches it: netgen ends it
        except sh.CommandNotFound as e:
            raise SimulationError(f"simulating nodes needs {e} (util-linux)") from None
        self.pids: dict[str, int] = {}  # each node's first process, as the outer sandbox sees it
        try:
            for line in self._process:
                if line == "ready\n":
                    break
                name, pid = line.split()
                self.pids[name] = int(pid)
            else:
                raise SimulationError("the simulation ended before its nodes were up")
        except sh.ErrorReturnCode as e:
            said = " ".join(e.stderr.decode(errors="replace").split())[-500:] or "no message"
            raise SimulationError(f"the simulated nodes could not start (exit {e.exit_code}): {said}") from None
        unshare = self._process.pid
        self.outer = int(Path(f"/proc/{unshare}/task/{unshare}/children").read_text().split()[0])
        self._outer = os.pidfd_open(self.outer)  # close() can then never signal another process given its pid

    def enter(self, node: str | None = None, wd: str | None = None) -> list[str]:
        """The command line that runs what follows it (a program and its arguments) inside `node`, or in the outer
        sandbox for None, in the directory `wd` (default: /, where entering a mount namespace puts it)."""
        # the root and the directory of the process entered: the chroot and its / (nsenter opens a directory it is
        # given by name before it enters, so a name would be the caller's; a later --wd=DIR wins)
        chroot = ["--root", "--wd"] if self._root is not None else []
        enter = ["nsenter", "-t", str(self.outer), "--net", "--mount", "--pid", *chroot, "-F"]
        if node is not None:
            # The node's pid is as the outer sandbox sees it, so the nsenter that takes it runs there, forked into
            # the outer PID namespace by a bash: util-linux 2.41 (Debian 13) looks a pid up in the PID namespace of
            # its own process (pidfd_open), where older ones read the mounted /proc/PID
            enter += ["--", "bash", "-c", FORK, "netgen", "nsenter", "-t", str(self.pids[node]), "--net", "--mount",
                      "--uts", "--pid", *chroot, "-F"]
        return [*enter, *([f"--wd={wd}"] if wd else []), "--", "bash", "-c", FORK, "netgen"]

    def close(self) -> None:
        """End every process of the simulation, and with them its namespaces; return once they are gone."""
        if self._outer is None:
            return
        # Killing the outer sandbox's first process ends every other process in its PID namespace, nodes included,
        # and the kernel reaps them all before unshare sees that first process end.
        try:
            signal.pidfd_send_signal(self._outer, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(self._outer)
        self._outer = None
        try:
            self._process.wait()
        except (sh.ErrorReturnCode, sh.SignalException):
            pass

    def __enter__(self) -> Simulation:
        return self

    def __exit__(self, *_) -> None:
        self.close()
