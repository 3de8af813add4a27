"""The lab's nftables table: outbound NAT (masquerade) and published ports, as rules of one table the lab owns.

One table per lab, `inet netgen-LAB`, so down deletes exactly it and verify reads exactly it. Each rule is written
as `nft list table` prints it (the same in nftables 0.9.8, 1.0.6 and 1.1.3), so that verify can compare the
listing with the lab's rules word for word. Reads a resolved model (pools.resolve): targets are addresses.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .model import Lab, Loc, Publish

TABLE_PREFIX = "netgen-"  # the lab's table is inet netgen-LAB

# The chains the rules go in, in this order, with their base-chain line as `nft list` shows it, but the priority
# as a number: nft names a standard priority in its listing where it knows a name for the hook (1.1 names the
# output hook's -100 `dstnat` too, 0.9 and 1.0 do not), and the engine reads every name back as its number, so the
# line compares equal whatever nft lists; nft takes the number as input in every version.
CHAINS = {
    "prerouting": "type nat hook prerouting priority -100; policy accept;",  # traffic that arrives (dstnat)
    "output": "type nat hook output priority -100; policy accept;",  # the host's own connections
    "postrouting": "type nat hook postrouting priority 100; policy accept;",  # (srcnat)
}
_LOOPBACK = {4: "127.0.0.0/8", 6: "::1"}


@dataclass(frozen=True)
class Rule:
    what: str
    loc: Loc
    chain: str
    text: str


@dataclass(frozen=True)
class Firewall:
    table: str  # in the inet family
    chains: tuple[tuple[str, str], ...]  # (name, base-chain line) of the chains with rules
    rules: tuple[Rule, ...]


def _family(version: int) -> str:
    return "ip" if version == 4 else "ip6"


def destination(target: str, port: object) -> str:
    """address:port, with an IPv6 address in brackets, as nft writes it."""
    ip = ipaddress.ip_address(target)
    return f"{ip}:{port}" if ip.version == 4 else f"[{ip}]:{port}"


def _publish(p: Publish, nets: dict) -> list[Rule]:
    target = ipaddress.ip_address(p.target)
    fam = _family(target.version)
    to = destination(p.target, p.to_port)
    dnat = f"{p.proto} dport {p.port} dnat {fam} to {to}"
    where = f"host {p.address}" if p.address else "every local address of the host"
    what = f"{p.proto}/{p.port} on {where} -> {to}"
    if p.address:
        arriving = own = f"{fam} daddr {ipaddress.ip_address(p.address)} {dnat}"
    else:
        arriving = f"fib daddr type local {dnat}"
        # Loopback is left out: a connection from 127.0.0.1 cannot leave the host (docs/writing-labs.md).
        own = f"{fam} daddr != {_LOOPBACK[target.version]} fib daddr type local {dnat}"
    rules = [Rule(f"{what}: from outside", p.loc, "prerouting", arriving),
             Rule(f"{what}: from the host itself", p.loc, "output", own)]
    net = nets.get(target)
    if net is not None:  # a neighbour of the target reaching it through the host: replies must come back the same way
        rules.append(Rule(f"{what}: a client in {net} too gets its answer back through the host", p.loc,
                          "postrouting",
                          f"{fam} saddr {net} {fam} daddr {target} {p.proto} dport {p.to_port} ct status dnat "
                          f"masquerade"))
    return rules


def firewall(lab: Lab) -> Firewall | None:
    """The lab's table, or None when the lab has no NAT."""
    if not (lab.masquerades or lab.publishes):
        return None
    links = {(i.ns, i.name): i for i in lab.interfaces}
    nets = {}  # each address of the lab, and its subnet
    for iface in lab.interfaces:
        for a in iface.addresses:
            ip = ipaddress.ip_interface(a.cidr)
            nets.setdefault(ip.ip, ip.network)
    rules: list[Rule] = []
    for m in lab.masquerades:
        link = links[(m.ns, m.link)]
        for net in dict.fromkeys(ipaddress.ip_interface(a.cidr).network for a in link.addresses):
            fam = _family(net.version)
            # one match per prefix left alone: nft would merge them, listed as a set, into ranges
            kept = [str(p) for p in map(ipaddress.ip_network, m.not_to) if p.version == net.version]
            unless = "".join(f" {fam} daddr != {p}" for p in kept)
            what = f", not to {', '.join(kept)}" if kept else ""
            rules.append(Rule(f"masquerade {net} leaving by another link than {link.ref}{what}", m.loc,
                              "postrouting", f"{fam} saddr {net}{unless} oifname != \"{m.link}\" masquerade"))
    for p in lab.publishes:
        rules += _publish(p, nets)
    order = list(CHAINS)
    rules.sort(key=lambda r: order.index(r.chain))  # stable: within a chain, the lab's order
    used = dict.fromkeys(r.chain for r in rules)
    return Firewall(TABLE_PREFIX + lab.name, tuple((c, CHAINS[c]) for c in used), tuple(rules))
