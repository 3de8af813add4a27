"""The lab as plain data: what every back end reads. Imports nothing else from netgen.

Values are kept as the user wrote them; validate decides whether they are acceptable and plan normalises them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HOST = "host"  # how the root namespace is named in scripts and messages


@dataclass(frozen=True)
class Loc:
    """Where in the user's lab file an object was made."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Diagnostic:
    level: str  # "error" or "warning"
    message: str
    loc: Loc | None = None

    def __str__(self) -> str:
        where = f"{self.loc}: " if self.loc else ""
        prefix = "warning: " if self.level == "warning" else ""
        return f"{where}{prefix}{self.message}"


@dataclass(frozen=True)
class Address:
    cidr: str
    loc: Loc
    note: str = ""  # where an address from a pool came from, for the scripts' comments (pools.resolve sets it)


@dataclass(frozen=True)
class Namespace:
    name: str
    loc: Loc
    host: bool = False
    external: bool = False  # exists before up; the lab puts links in it but never makes, changes or removes it
    adopt: bool = False  # may exist before up: up takes it over (if it holds only what the lab names), down removes it


@dataclass(frozen=True)
class Interface:
    """A link the lab creates: one end of a veth pair, or a bridge."""

    ns: str
    name: str
    kind: str  # "veth" or "bridge"
    loc: Loc
    addresses: tuple[Address, ...] = ()
    mtu: object = None
    mac: object = None
    master: str | None = None  # a bridge in the same namespace
    external: bool = False  # exists before up; the lab uses it and never makes, changes or removes it
    pools: tuple[str, ...] = ()  # subnets: this link takes the first host address, its segment the next ones
    hairpin: object = False  # a bridge port that sends frames back out the port they came in on
    nodad: object = False  # its IPv6 addresses skip duplicate address detection
    adopt: object = False  # a bridge that may exist before up: up takes it over, down removes it

    @property
    def ref(self) -> str:
        return f"{self.ns}/{self.name}"


@dataclass(frozen=True)
class Veth:
    """A veth pair: `a` and `b` are (namespace, name) of its two ends."""

    a: tuple[str, str]
    b: tuple[str, str]
    loc: Loc


@dataclass(frozen=True)
class Route:
    ns: str
    dest: str  # a prefix or "default"
    via: str | None
    dev: str | None
    loc: Loc
    family: int | None = None  # 4 or 6 for "default"; None means "from via", else IPv4
    via_link: tuple[str, str] | None = None  # (namespace, link): the gateway is that link's address of each family


@dataclass(frozen=True)
class Sysctl:
    ns: str
    key: str  # dotted, e.g. net.ipv4.ip_forward
    value: object
    loc: Loc


@dataclass(frozen=True)
class Masquerade:
    """Outbound NAT: traffic from the link's subnets leaving by another link gets the address it leaves by."""

    ns: str
    link: str
    loc: Loc


@dataclass(frozen=True)
class Publish:
    """A published port: `port` on the host's local addresses (or on `address`) forwarded to `target`:`to_port`."""

    ns: str
    port: object
    target: str  # a namespace of the lab, or an address
    to_port: object
    proto: object
    address: str | None
    loc: Loc


@dataclass(frozen=True)
class Service:
    """A process up starts detached inside namespace `ns`, verify checks runs, and down stops."""

    ns: str
    name: str
    command: object  # a string, run by `sh -c`; or the words of an argv (a tuple of strings)
    loc: Loc


@dataclass(frozen=True)
class Expectation:
    ns: str
    target: str  # an address, or a namespace of the lab (each of its addresses' families is checked)
    reach: bool  # False: "must not reach"
    tcp: object  # a port number, or None for ICMP
    loc: Loc


@dataclass(frozen=True)
class Lab:
    name: str
    source: str  # the lab file as the user named it
    sha256: str
    loc: Loc
    namespaces: tuple[Namespace, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    veths: tuple[Veth, ...] = ()
    routes: tuple[Route, ...] = ()
    sysctls: tuple[Sysctl, ...] = ()
    expectations: tuple[Expectation, ...] = ()
    masquerades: tuple[Masquerade, ...] = ()
    publishes: tuple[Publish, ...] = ()
    services: tuple[Service, ...] = ()
    problems: tuple[Diagnostic, ...] = field(default=())  # misuse the DSL noticed while recording

