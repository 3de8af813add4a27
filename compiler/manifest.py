"""SHA256SUMS beside compiled scripts, so that `netgen run` can refuse a script edited since it was compiled.

The format is that of `sha256sum`, so `sha256sum -c SHA256SUMS` checks the same thing without netgen.
"""

from __future__ import annotations

import hashlib

NAME = "SHA256SUMS"


def text(scripts: dict[str, str]) -> str:
    """The manifest for script texts keyed by file name."""
    return "".join(f"{hashlib.sha256(body.encode()).hexdigest()}  {name}\n" for name, body in sorted(scripts.items()))


def parse(manifest: str) -> dict[str, str]:
    """File name -> recorded sha256."""
    entries = {}
    for line in manifest.splitlines():
        digest, _, name = line.partition("  ")
        if name:
            entries[name] = digest
    return entries
