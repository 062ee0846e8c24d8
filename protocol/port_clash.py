"""Two listeners the config pins to one TCP port of one machine: refused at load (a
`ConfigError` naming both and the port, exit 2), before the second one fails to bind at
start and crash-loops (with `sim.runs_in`, taking every simulator of its process down).

What listens, on the supervisor of each host group (a host group is a machine):
- the metrics server (`[metrics] host`, `port`) on every supervisor: the core and each
  edge group a venue is placed on;
- the core's end of the link (`[link] bind`), when a venue is placed off the core;
- a venue's embedded simulator (`[venues.sim]`: `venuesim` or `exchangesim`) on the venue's
  host group, at the venue's `host` and `port`.
Port 0 (any free port) never clashes. A venue without a simulator only connects out: two
sessions at one broker's host:port are fine. Addresses clash when equal or when either is
a wildcard of the other's family (`0.0.0.0` or `*` for IPv4; `::` for both, Linux's
dual-stack default); `localhost` is 127.0.0.1 (what the simulators bind). Other host names
are compared as written (no lookups at load).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from protocol.exceptions import ConfigError
from protocol.link_config import CORE, LinkCfg, edge_groups, tcp_address


class _Metrics(Protocol):
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...


class _Venue(Protocol):
    """What is read of a venue (`protocol.config.VenueCfg`)."""

    @property
    def name(self) -> str: ...
    @property
    def host_group(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def sim(self) -> object: ...  # None, or the simulator's table (it listens)


@dataclass(frozen=True)
class Listener:
    """A TCP port the config pins on the machine of `group`."""

    owner: str  # for people: "venue simA's simulator"
    field: str  # the dotted key that sets the port
    group: str
    host: str
    port: int


def listeners(metrics: _Metrics, link: LinkCfg, venues: Iterable[_Venue]) -> list[Listener]:
    """Every nonzero listening port the config pins, in config order (metrics, link,
    venues)."""
    venues = list(venues)
    found: list[Listener] = []
    if metrics.port:
        for group in (CORE, *edge_groups(venues)):
            found.append(
                Listener("the metrics server", "metrics.port", group, metrics.host, metrics.port)
            )
    bind = tcp_address(link.bind) if edge_groups(venues) else None
    if bind is not None and bind[1]:
        found.append(Listener("the link to the edges", "link.bind", CORE, *bind))
    for v in venues:
        if v.sim is not None and v.port:
            owner, field = f"venue {v.name}'s simulator", f"venues[{v.name}].port"
            found.append(Listener(owner, field, v.host_group, v.host, v.port))
    return found


def check_port_clashes(metrics: _Metrics, link: LinkCfg, venues: Iterable[_Venue]) -> None:
    """A `ConfigError` naming the later of the first two listeners that would bind one port
    of one address on one machine, and the earlier one."""
    seen: list[Listener] = []
    for new in listeners(metrics, link, venues):
        for old in seen:
            if new.group == old.group and new.port == old.port and _overlap(new.host, old.host):
                where = new.host if new.host == old.host else f"{new.host} and {old.host}"
                raise ConfigError(
                    new.field,
                    f"{new.owner} and {old.owner} ({old.field}) both listen on port {new.port}"
                    f" of {where} (host group {new.group}): one of them could never bind it",
                )
        seen.append(new)


def _overlap(a: str, b: str) -> bool:
    """Whether listening on `a` and on `b` (same port) takes one address twice."""
    ka, kb = _address(a), _address(b)
    if ka == kb:
        return True
    return _covers(ka, kb) or _covers(kb, ka)


_ANY4, _ANY6 = "<every IPv4 address>", "<every address>"  # no host name has < >


def _address(host: str) -> str:
    """`host` normalised: an IP address in its canonical form, a wildcard, or a name."""
    name = host.strip().strip("[]").lower()
    if name in ("", "*"):
        return _ANY4  # the link's `tcp://*:port`; "" binds every IPv4 address too
    if name == "localhost":
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return name
    if ip.is_unspecified:
        return _ANY4 if ip.version == 4 else _ANY6
    return str(ip)


def _covers(wild: str, other: str) -> bool:
    """Whether wildcard `wild` binds `other` too (a name: either family)."""
    if wild == _ANY6:
        return True
    if wild != _ANY4:
        return False
    try:
        return ipaddress.ip_address(other).version == 4
    except ValueError:  # `::` (dual-stack: IPv4 too) or a name (it may be an IPv4 one)
        return True
