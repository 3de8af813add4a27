"""SHA256SUMS beside compiled scripts, so that `netgen run` can refuse a script edited since it was compiled.

The format is that of `sha256sum`, so `sha256sum -c SHA256SUMS` checks the same thing without netgen.
"""

from __future__ import annotations

NAME = "SHA256SUMS"


def text(digests: dict[str, str]) -> str:
    """The manifest for scripts' sha256 hex digests keyed by file name."""
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(digests.items()))


def parse(manifest: str) -> dict[str, str]:
    """File name -> recorded sha256."""
    entries = {}
    for line in manifest.splitlines():
        digest, _, name = line.partition("  ")
        if name:
            entries[name] = digest
    return entries
