"""What exists right now: namespaces, their interfaces, and which veth is paired with which, across namespaces.

This answers by machine the question the seed article answers by hand: which host veth belongs to which
container. The module runs nothing itself: `collect` is given a `run(ns, args)` that runs `ip` (the executor's
`ip_json`), and everything after it is a pure function of that output, so `netgen inspect` can be tested with
canned JSON.

Peers are found from interface indexes. A veth reports its peer by name when the peer is in its own namespace
(JSON key "link"), and by the peer's ifindex when it is in another (key "link_index"), together with the peer
namespace's id ("link_netnsid"), which means something only inside the reporting namespace: `ip netns list-id`
run there names it (no name: the root namespace). Indexes repeat between namespaces, so a cross-namespace pair
is recognised only when both ends point at each other within the namespace the id names, and a veth that still
matches more than one candidate, or none among the namespaces read, is left without a peer rather than guessed.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Callable

from .model import HOST, Lab

PRESENT, ABSENT, UNREADABLE = "present", "absent", "unreadable"
COLUMNS = ("NS", "INTERFACE", "KIND", "STATE", "ADDRESSES", "MASTER", "PEER")

Run = Callable[[str | None, list[str]], str | None]


class InventoryError(Exception):
    """The named namespaces could not be listed; str() is the message."""


@dataclass(frozen=True)
class Link:
    """One live interface, as `ip -d link` and `ip addr` report it."""

    name: str
    ifindex: int
    kind: str  # the kernel's kind ("veth", "bridge", "dummy"...), "loopback", or "device" when it has none
    up: bool  # administratively up
    carrier: bool  # LOWER_UP: up and its lower layer (for a veth, its peer) is up too
    addresses: tuple[str, ...]  # CIDRs, in the kernel's order
    master: str | None  # the bridge this is a port of
    peer: tuple[str, str] | None = None  # a veth's other end: (namespace, name), when it could be told


@dataclass(frozen=True)
class Namespace:
    name: str  # HOST for the root namespace
    links: tuple[Link, ...] | None  # by name; None when it is listed but cannot be read (a stale /run/netns file)

    def link(self, name: str) -> Link | None:
        return next((link for link in self.links or () if link.name == name), None)


@dataclass(frozen=True)
class Inventory:
    namespaces: tuple[Namespace, ...]  # the host first, then by name

    def namespace(self, name: str) -> Namespace | None:
        return next((ns for ns in self.namespaces if ns.name == name), None)


@dataclass(frozen=True)
class Row:
    """One line of `netgen inspect`: an interface, or a namespace shown without interfaces."""

    ns: str
    interface: str | None  # None: the namespace itself (unreadable, or a lab namespace with no interfaces)
    status: str  # PRESENT, ABSENT or UNREADABLE
    link: Link | None = None  # the live interface, when present


def _order(ns: str) -> tuple[bool, str]:
    return ns != HOST, ns


# --- reading ------------------------------------------------------------------------------------------------------

# A parsed link with where its iflink points: (link, peer ifindex in another namespace, peer name in this one,
# the namespace that other one is: its name, HOST for an unnamed one, None when unknown).
_Parsed = tuple[Link, int | None, str | None, str | None]


def _kind(entry: dict) -> str:
    kind = entry.get("linkinfo", {}).get("info_kind")
    if kind:
        return kind
    return "loopback" if entry.get("link_type") == "loopback" else "device"


def _json(text: str) -> list:
    return json.loads(text.strip() or "[]")  # ip prints nothing at all for an empty list


def _parse(links_json: str, addrs_json: str, ids_json: str = "") -> list[_Parsed]:
    ids = {entry["nsid"]: entry.get("name", HOST) for entry in _json(ids_json)}
    addresses = {entry["ifindex"]: tuple(f"{a['local']}/{a['prefixlen']}" for a in entry.get("addr_info", ()))
                 for entry in _json(addrs_json)}
    parsed = []
    for entry in _json(links_json):
        flags = entry.get("flags", ())
        link = Link(name=entry["ifname"], ifindex=entry["ifindex"], kind=_kind(entry), up="UP" in flags,
                    carrier="LOWER_UP" in flags, addresses=addresses.get(entry["ifindex"], ()),
                    master=entry.get("master"))
        parsed.append((link, entry.get("link_index"), entry.get("link"), ids.get(entry.get("link_netnsid"))))
    return parsed


def _read(run: Run, ns: str) -> list[_Parsed] | None:
    where = None if ns == HOST else ns
    links = run(where, ["-j", "-d", "link", "show"])
    if links is None:
        return None
    addrs = run(where, ["-j", "addr", "show"])
    ids = run(where, ["-j", "netns", "list-id"])
    return None if addrs is None else _parse(links, addrs, ids or "")


def _resolve(read: dict[str, list[_Parsed] | None]) -> tuple[Namespace, ...]:
    """Every namespace with its links sorted by name, each veth with the peer it can be paired with."""
    elsewhere = defaultdict(list)  # (ifindex, peer ifindex) of veths whose peer is in another namespace
    for ns, parsed in read.items():
        for link, index, _, _ in parsed or ():
            if link.kind == "veth" and index is not None:
                elsewhere[link.ifindex, index].append((ns, link.name))

    def peer(ns: str, link: Link, index: int | None, name: str | None, where: str | None) -> tuple[str, str] | None:
        if link.kind != "veth":
            return None
        if name is not None:
            found = [(ns, other.name) for other, _, back, _ in read[ns]
                     if other.name == name and other.kind == "veth" and back == link.name]
        elif index is not None:
            found = [end for end in elsewhere[index, link.ifindex] if end[0] != ns and where in (None, end[0])]
        else:
            found = []
        return found[0] if len(found) == 1 else None

    namespaces = []
    for ns in sorted(read, key=_order):
        parsed = read[ns]
        links = None if parsed is None else tuple(sorted(
            (replace(link, peer=peer(ns, link, index, name, where)) for link, index, name, where in parsed),
            key=lambda link: link.name))
        namespaces.append(Namespace(ns, links))
    return tuple(namespaces)


def collect(run: Run, namespaces: list[str] | None = None) -> Inventory:
    """Read the host and the named namespaces (all of them, or those of `namespaces` that exist) through `run`.

    `run(ns, args)` runs `ip [-n ns] args` (ns None: the root namespace) and returns its stdout, or None when it
    fails; a namespace whose links or addresses cannot be read is kept with links None. The named namespaces are
    always listed first, so that one asked for but missing is left out (absent) rather than reported unreadable.
    Raises InventoryError when that list cannot be had.
    """
    listing = run(None, ["-j", "netns", "list"])
    if listing is None:
        raise InventoryError("cannot list the network namespaces: `ip -j netns list` failed")
    existing = {entry["name"] for entry in _json(listing)}
    wanted = existing if namespaces is None else existing & set(namespaces)
    # HOST names the root namespace, which is always read; a named namespace "host" could not be told from it.
    return Inventory(_resolve({ns: _read(run, ns) for ns in [HOST, *sorted(wanted - {HOST})]}))


# --- rows and their output ----------------------------------------------------------------------------------------

def rows(inventory: Inventory) -> list[Row]:
    """Every interface of every namespace read; an unreadable namespace is one row."""
    out = []
    for ns in inventory.namespaces:
        if ns.links is None:
            out.append(Row(ns.name, None, UNREADABLE))
        out.extend(Row(ns.name, link.name, PRESENT, link) for link in ns.links or ())
    return out


def for_lab(inventory: Inventory, lab: Lab) -> list[Row]:
    """The lab's interfaces (and its namespaces that declare none), each as it is live or marked absent.

    The host appears only when the lab declares interfaces in it; a namespace's other interfaces (lo, strays)
    are not the lab's and are left out.
    """
    declared: dict[str, set[str]] = {ns.name: set() for ns in lab.namespaces}
    for iface in lab.interfaces:
        declared.setdefault(iface.ns, set()).add(iface.name)
    out = []
    for ns in sorted(declared, key=_order):
        live = inventory.namespace(ns)
        for name in sorted(declared[ns]) or [None]:
            if live is None:
                out.append(Row(ns, name, ABSENT))
            elif live.links is None:
                out.append(Row(ns, name, UNREADABLE))
            elif name is None:
                out.append(Row(ns, None, PRESENT))
            else:
                link = live.link(name)
                out.append(Row(ns, name, PRESENT if link else ABSENT, link))
    return out


def _as_dict(row: Row) -> dict:
    fields = {"ns": row.ns, "interface": row.interface, "status": row.status}
    link = row.link
    if link is None:
        return fields | dict.fromkeys(("ifindex", "kind", "up", "carrier", "addresses", "master", "peer"))
    return fields | {"ifindex": link.ifindex, "kind": link.kind, "up": link.up, "carrier": link.carrier,
                     "addresses": list(link.addresses), "master": link.master,
                     "peer": link.peer and {"ns": link.peer[0], "interface": link.peer[1]}}


def to_json(table: list[Row]) -> str:
    """The rows as a JSON list of objects, keys sorted; fields of an interface not present are null."""
    return json.dumps([_as_dict(row) for row in table], indent=2, sort_keys=True) + "\n"


def _cells(row: Row) -> tuple[str, ...]:
    link = row.link
    if link is None:
        return row.ns, row.interface or "-", "-", row.status, "-", "-", "-"
    state = ("up" if link.carrier else "up/no-carrier") if link.up else "down"
    if link.peer:
        peer = "/".join(link.peer)
    else:
        peer = "?" if link.kind == "veth" else "-"  # a veth always has a peer: this one could not be told
    return row.ns, link.name, link.kind, state, ",".join(link.addresses) or "-", link.master or "-", peer


def to_table(table: list[Row]) -> str:
    """The rows as aligned plain-text columns under a header; "-" marks an empty cell."""
    lines = [COLUMNS, *map(_cells, table)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    return "".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() + "\n"
                   for line in lines)
