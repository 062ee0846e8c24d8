"""The link's tables: who may speak for whom across it (`Allowed`, from the placement:
`link_tables`), and the local DEALERs that stand in for the other host's actors
(`Bridges`), fenced by epoch.

A message from the other host names the local actor it goes to (`target`) and the routing
identity of the remote actor that sent it (`<actor id>:<epoch>`, as its `Peer` set it). It
is delivered through a DEALER of this process with that same routing identity, connected
to the target's ipc ROUTER, so the target sees the remote actor as if it were local (its
sender checks, `actors.runtime.senders`, hold unchanged); what the target sends back on
that DEALER goes back across the link. One DEALER per (target, remote actor): a remote
actor's newer epoch closes the older incarnation's DEALER, and a message of an older epoch
than the newest seen is dropped (`stale_epoch`): a restarted peer's late messages never
reach a local actor after its successor's.

Size: the link holds at most one bridge per (local target, remote sender) pair `Allowed`
lets through, so `LinkTables.bridges` is exact (the core: one per venue on an edge, its
connector -> the OMS; an edge: three per venue of its own, the OMS, risk and the heartbeat
-> its connector), and every socket of the link process comes from the same tables
(`LinkTables.sockets`). A closed socket counts against the context until libzmq's reaper
frees it, so a restart of the other host (every remote sender's epoch new: each of its
bridges replaced in one burst) needs room for one peer's bridges twice (`headroom`). A
process context holds `MAX_SOCKETS` (256): a placement that needs more (more than 82
venues on edges for the core, more than 35 on one edge) is refused when the supervisor
starts (`check_link_size`, exit 2) instead of the link failing at its 256th socket,
restarted and failing again as the connectors keep sending. Should a bridge still not
open (`zmq.ZMQError`), its message is dropped and counted (`open_failed`), never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import zmq

from protocol.exceptions import ConfigError
from protocol.link_config import CORE, Placed, edge_groups
from protocol.sockets import MAX_SOCKETS, Socket

CORE_ACTORS = ("oms", "risk", "heartbeat")  # what an edge's connectors hear from
# the link's sockets besides its stand-ins, bridges and connector peers: its ROUTER, the
# supervisor's DEALER, the ZAP gate, the tunnel, an edge's control DEALER, and room
OWN_SOCKETS = 8


def split_identity(identity: bytes) -> tuple[str, int] | None:
    """(actor id, epoch) of a routing identity `<actor id>:<epoch>`; None if malformed."""
    actor, sep, epoch = identity.decode(errors="replace").rpartition(":")
    if not sep or not actor or not epoch.isdigit():
        return None
    return actor, int(epoch)


@dataclass(frozen=True)
class Allowed:
    """Which remote actors may send to which local targets across the link: the core takes
    only `connector.<venue>` of a venue placed on the sending edge, sending to the OMS; an
    edge takes only the OMS, risk and the heartbeat, sending to its own connectors."""

    senders: Collection[str]  # remote actor ids
    targets: Collection[str]  # local actors

    def refusal(self, target: str, sender: str) -> str | None:
        if target not in self.targets:
            return f"target {target!r} is not served across the link"
        if sender not in self.senders:
            return f"sender {sender!r} may not send across the link"
        return None


@dataclass(frozen=True)
class LinkTables:
    """What the link of host group `group` serves, from the placement alone."""

    group: str
    peers: list[str]  # the core: every edge group; an edge: the core
    exports: dict[str, str]  # stand-in socket (a remote actor's name here) -> its peer group
    allowed: dict[str, Allowed]  # peer group -> who of it may send to whom here
    connectors: list[str]  # an edge: its own connectors (the dead-man switch asks them)

    @property
    def bridges(self) -> int:
        """The most bridge DEALERs this link ever holds."""
        return sum(len(a.senders) * len(a.targets) for a in self.allowed.values())

    @property
    def headroom(self) -> int:
        """Room for the bridges of one peer replaced at once (that host restarted: its
        actors' new epochs) while the closed ones wait for the reaper."""
        return max((len(a.senders) * len(a.targets) for a in self.allowed.values()), default=0)

    @property
    def sockets(self) -> int:
        """The most sockets the link process holds at once."""
        return OWN_SOCKETS + len(self.exports) + self.bridges + self.headroom + len(self.connectors)


def link_tables(venues: Iterable[Placed], group: str) -> LinkTables:
    """The tables of host group `group`'s link (the core, or an edge group)."""
    venues = list(venues)
    placed = {v.name: v.host_group for v in venues}
    if group == CORE:
        peers = edge_groups(venues)
        exports = {f"connector.{v}": g for v, g in placed.items() if g != CORE}
        allowed = {
            g: Allowed([f"connector.{v}" for v, pg in placed.items() if pg == g], ["oms"])
            for g in peers
        }
        return LinkTables(group, peers, exports, allowed, [])
    mine = [f"connector.{v}" for v, g in placed.items() if g == group]
    return LinkTables(group, [CORE], {"oms": CORE}, {CORE: Allowed(CORE_ACTORS, mine)}, mine)


def check_link_size(venues: Iterable[Placed], group: str) -> None:
    """A `ConfigError` (exit 2 at `run`) when `group`'s link would need more sockets than
    a process context holds: the placement is too big for one link process."""
    venues = list(venues)
    if not edge_groups(venues):
        return
    tables = link_tables(venues, group)
    if tables.sockets > MAX_SOCKETS:
        where = "on edges" if group == CORE else f"on {group}"
        n = len(tables.exports) if group == CORE else len(tables.connectors)
        raise ConfigError(
            "venues",
            f"{n} venues {where}: the link of host group {group} would need "
            f"{tables.sockets} sockets, more than the {MAX_SOCKETS} a process holds "
            f"(place fewer venues {where})",
        )


@dataclass
class _Bridge:
    sock: Socket
    epoch: int
    origin: bytes  # the peer host group it came from (the core's tunnel routes by it)


class Bridges:
    """The DEALERs standing in for remote actors; `open_dealer(target, identity)` makes and
    registers one, `close_dealer` unregisters and closes one."""

    def __init__(
        self,
        open_dealer: Callable[[str, bytes], Socket],
        close_dealer: Callable[[Socket], None],
        limit: int,
    ) -> None:
        self._open = open_dealer
        self._close = close_dealer
        self._limit = limit  # `LinkTables.bridges`: reached only by a pair the tables allow
        self._by_key: dict[tuple[str, str], _Bridge] = {}
        self._by_sock: dict[Socket, tuple[str, bytes, bytes]] = {}

    def dealer_for(self, target: str, identity: bytes, origin: bytes) -> Socket | str:
        """The DEALER to send `identity`'s message to `target` through, or why it is dropped
        ("stale_epoch", "bad_identity", "too_many", "open_failed": no socket for it now)."""
        parsed = split_identity(identity)
        if parsed is None:
            return "bad_identity"
        actor, epoch = parsed
        key = (target, actor)
        known = self._by_key.get(key)
        if known is not None:
            if epoch < known.epoch:
                return "stale_epoch"
            if epoch == known.epoch:
                known.origin = origin
                return known.sock
            self._drop(key)  # its incarnation is gone: a newer one speaks now
        if len(self._by_key) >= self._limit:
            return "too_many"
        try:
            sock = self._open(target, identity)
        except zmq.ZMQError:  # too many open files: the reaper is behind
            return "open_failed"
        self._by_key[key] = _Bridge(sock, epoch, origin)
        self._by_sock[sock] = (target, identity, origin)
        return sock

    def route_of(self, sock: Socket) -> tuple[str, bytes, bytes] | None:
        """(target, remote identity, origin) of a bridge DEALER."""
        return self._by_sock.get(sock)

    def close(self) -> None:
        for key in list(self._by_key):
            self._drop(key)

    def __len__(self) -> int:
        return len(self._by_key)

    def _drop(self, key: tuple[str, str]) -> None:
        bridge = self._by_key.pop(key)
        self._by_sock.pop(bridge.sock, None)
        self._close(bridge.sock)
