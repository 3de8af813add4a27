"""Debian roots to run the compiled scripts with another release's bash, iproute2, nftables and util-linux.

    root = roots.root("trixie")           # ~/.cache/netgen/roots/trixie, built once with debootstrap
    with RootSandbox(root, folder) as box: # a sandbox (network, mount, UTS, PID namespaces), FOLDER at its /mnt
        box.run_root("bash /mnt/up.sh")    # chrooted: the root's bash, ip, nft...; box.run(...): the machine's

A root is `debootstrap --variant=minbase --include=PACKAGES SUITE` from the machine's own Debian mirror (read from
its apt sources, one-line and deb822 forms), built into a temporary folder beside its place and renamed into it only
once whole, so that a run killed half way leaves nothing that looks done (its leftover is removed by the next build).
It lives under the user's cache directory, ${XDG_CACHE_HOME:-~/.cache}/netgen/roots/SUITE, and is built again only
when PACKAGES change. Its /etc/hosts names localhost only, and the sandbox's host name is in no file: as on many
cloud images and in chroots, the host's name does not resolve.

Run as a script, it builds the roots it is given: `python tests/roots.py bullseye bookworm trixie`.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SUITES = {"bullseye": "Debian 11", "bookworm": "Debian 12", "trixie": "Debian 13"}
# minbase has bash, coreutils, util-linux, findutils, grep, sed, mawk; the scripts need iproute2 (and nftables for
# NAT), the examples' services python3, verify ping, the tests curl and procps (sysctl, ps)
PACKAGES = ("iproute2", "nftables", "python3", "curl", "iputils-ping", "procps")
STAMP = ".netgen-root"  # in a finished root: the packages it was built with
CODENAMES = ("buster", "bullseye", "bookworm", "trixie", "forky", "duke", "sid",
             "oldoldstable", "oldstable", "stable", "testing", "unstable")


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "netgen" / "roots"


def _entries(etc: str = "/etc/apt"):
    """(types, uris, suites) of each entry of the apt sources: sources.list and sources.list.d/*.list (one-line
    form: `deb [options] URI SUITE COMPONENT...`) and sources.list.d/*.sources (deb822: paragraphs of Types:, URIs:,
    Suites:, and Enabled: no to skip one). Files of other names (`*.disabled`) are not apt's."""
    for path in [f"{etc}/sources.list", *sorted(glob.glob(f"{etc}/sources.list.d/*.list"))]:
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0]
            line = re.sub(r"\[[^]]*\]", " ", line)  # [arch=amd64 signed-by=...]
            words = line.split()
            if len(words) >= 3:
                yield [words[0]], [words[1]], [words[2]]
    for path in sorted(glob.glob(f"{etc}/sources.list.d/*.sources")):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for paragraph in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            key = None
            for line in paragraph.splitlines():
                if line.startswith("#"):
                    continue
                if line[:1] in (" ", "\t") and key:  # a continuation line
                    fields[key] += " " + line.strip()
                elif ":" in line:
                    key, value = line.split(":", 1)
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if fields.get("enabled", "yes").lower() == "no":
                continue
            if {"types", "uris", "suites"} <= fields.keys():
                yield fields["types"].split(), fields["uris"].split(), fields["suites"].split()


def mirror(etc: str = "/etc/apt") -> str:
    """The machine's Debian mirror: the URI of the first `deb` entry of its apt sources for a Debian release
    (bookworm, stable...: not -security, -updates or another archive), which serves the other releases too."""
    for types, uris, suites in _entries(etc):
        if "deb" in types and any(s in CODENAMES for s in suites):
            for uri in uris:
                if re.match(r"^(https?|ftp|file)://", uri):
                    return uri.rstrip("/")
    raise RuntimeError(f"no Debian mirror in the apt sources under {etc} (sources.list, sources.list.d/)")


def _stamp(packages) -> str:
    return " ".join(sorted(packages)) + "\n"


def built(suite: str, packages=PACKAGES) -> Path | None:
    """The finished root of SUITE with PACKAGES, or None."""
    path = cache_dir() / suite
    try:
        return path if (path / STAMP).read_text() == _stamp(packages) else None
    except OSError:
        return None


def root(suite: str, packages=PACKAGES, log=sys.stderr) -> Path:
    """The root of SUITE with PACKAGES, built first if it is not (or with other packages). One build at a time (a
    lock in the cache directory); a half-built root of a killed run is removed."""
    if suite not in SUITES:
        raise ValueError(f"unknown suite {suite}; known: {', '.join(SUITES)}")
    done = built(suite, packages)
    if done:
        return done
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = built(suite, packages)  # another run may have built it while this one waited
        if done:
            return done
        for old in cache.glob(f".{suite}.*"):  # what a killed build left
            _remove(old)
        if shutil.which("debootstrap") is None:
            raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
        tmp = Path(tempfile.mkdtemp(prefix=f".{suite}.", dir=cache))
        tmp.chmod(0o755)  # the root's own /
        source = mirror()
        t0 = time.monotonic()
        print(f"# building the {SUITES[suite]} root: debootstrap --variant=minbase --include={','.join(packages)} "
              f"{suite} {tmp} {source}", file=log, flush=True)
        # in a mount namespace of its own: what debootstrap mounts in the target (proc, sys) goes with it
        out = subprocess.run(["unshare", "--mount", "--propagation", "private", "debootstrap", "--variant=minbase",
                              f"--include={','.join(packages)}", suite, str(tmp), source],
                             capture_output=True, text=True)
        if out.returncode:
            (cache / f"{suite}.log").write_text(out.stdout + out.stderr)
            _remove(tmp)
            raise RuntimeError(f"debootstrap of {suite} failed (exit {out.returncode}; log in {cache}/{suite}.log): "
                               + " ".join((out.stdout + out.stderr).splitlines()[-3:]))
        _tidy(tmp)
        (tmp / STAMP).write_text(_stamp(packages))
        old = cache / suite
        if old.exists() or old.is_symlink():  # built with other packages: out of the way first, then removed
            aside = Path(tempfile.mkdtemp(prefix=f".{suite}.", dir=cache))
            os.rename(old, aside / "old")
            _remove(aside)
        os.rename(tmp, old)
        print(f"# built the {SUITES[suite]} root in {time.monotonic() - t0:.0f} s", file=log, flush=True)
        return old


def _remove(path: Path) -> None:
    subprocess.run(["rm", "-rf", "--one-file-system", "--", str(path)], check=False)


def _tidy(root: Path) -> None:
    """What a root needs to be the hosts people have, and less of what it does not need."""
    for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for f in (root / junk).glob("*"):
            if f.is_file():
                f.unlink()
    # localhost only: the sandbox's host name resolves nowhere (debootstrap copied the machine's files)
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    (root / "etc/hostname").write_text("netgen-root\n")
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    # a name server that no sandbox reaches (TEST-NET-1, RFC 5737): a lookup waits for it, as on a host
    # whose name server is out of reach, and nothing is ever sent off the sandbox
    resolv.write_text("nameserver 192.0.2.53\n")


def versions(root: Path) -> dict[str, str]:
    """The versions of the packages the scripts use, as dpkg has them in the root."""
    out = subprocess.run(["chroot", str(root), "dpkg-query", "-W", "-f", "${Package} ${Version}\n",
                          "iproute2", "nftables", "bash", "util-linux", "python3", "mawk"],
                         capture_output=True, text=True)
    return dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)


# The sandbox's first process: private /run (with /run/netns) seen at the same place by the machine's tools and,
# through a bind mount, in the root; the root's /proc (this PID namespace's), /sys and /dev; a host name that no file
# names; the folder given, at /mnt of the root. Its arguments: the root, the folder.
SETUP = r"""
set -euo pipefail
root=$1
mount -n -t tmpfs netgen-sandbox /run
mkdir -p /run/netns
mount -n --bind "$root" "$root"
mount -n -t proc proc "$root/proc"
mount -n --rbind /sys "$root/sys"
mount -n --rbind /dev "$root/dev"
mount -n --rbind /run "$root/run"
mount -n --bind "$2" "$root/mnt"
hostname netgen-matrix
ip link set lo up
echo ready
exec sleep infinity
"""

# What the root's tools run with: nothing of the machine's environment
ROOT_ENV = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
            "LANG=C.UTF-8", "TERM=dumb"]


class RootSandbox:
    """A sandbox (network, mount, UTS and PID namespaces of its own) whose commands run chrooted in a Debian root.
    run() runs the machine's bash and tools there (snapshots), run_root() the root's."""

    def __init__(self, root: Path, folder: Path):
        """`folder` (the scripts to run, say) is at /mnt in the root."""
        self.root = Path(root)
        self.proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--uts", "--pid", "--kill-child", "--mount-proc", "--propagation",
             "private", "bash", "-c", SETUP, "netgen-root-sandbox", str(self.root), str(folder)],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        assert line == "ready", f"sandbox did not start ({line!r})"
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as children:
            self.target = int(children.read().split()[0])
        self.enter = ["nsenter", "-t", str(self.target), "--net", "--mount", "--uts", "--pid"]

    def run(self, command: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
        """A bash command with the machine's tools, in the sandbox (which the root's tools see the same)."""
        return subprocess.run([*self.enter, "bash", "-c", command], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})

    def run_root(self, command: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
        """A bash command with the root's bash and tools, chrooted into the root, in / there."""
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        return subprocess.run([*self.enter, "chroot", str(self.root), *ROOT_ENV, *extra, "bash", "-c",
                               f"cd / && {command}"], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def __enter__(self) -> RootSandbox:
        return self

    def __exit__(self, *_) -> None:
        self.close()


if __name__ == "__main__":
    for name in sys.argv[1:] or list(SUITES):
        t = time.monotonic()
        where = root(name)
        print(f"{name}: {where} ({time.monotonic() - t:.0f} s) {versions(where)}")
