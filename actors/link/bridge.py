"""The link's two tables: who may speak for whom across it (`Allowed`), and the local
DEALERs that stand in for the other host's actors (`Bridges`), fenced by epoch.

A message from the other host names the local actor it goes to (`target`) and the routing
identity of the remote actor that sent it (`<actor id>:<epoch>`, as its `Peer` set it). It
is delivered through a DEALER of this process with that same routing identity, connected
to the target's ipc ROUTER, so the target sees the remote actor as if it were local (its
sender checks, `actors.runtime.senders`, hold unchanged); what the target sends back on
that DEALER goes back across the link. One DEALER per (target, remote actor): a remote
actor's newer epoch closes the older incarnation's DEALER, and a message of an older epoch
than the newest seen is dropped (`stale_epoch`): a restarted peer's late messages never
reach a local actor after its successor's.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from protocol.sockets import Socket

MAX_BRIDGES = 128  # DEALERs per link process (the context holds 256 sockets)


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
    ) -> None:
        self._open = open_dealer
        self._close = close_dealer
        self._by_key: dict[tuple[str, str], _Bridge] = {}
        self._by_sock: dict[Socket, tuple[str, bytes, bytes]] = {}

    def dealer_for(self, target: str, identity: bytes, origin: bytes) -> Socket | str:
        """The DEALER to send `identity`'s message to `target` through, or why it is dropped
        ("stale_epoch", "bad_identity", "too_many")."""
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
        if len(self._by_key) >= MAX_BRIDGES:
            return "too_many"
        sock = self._open(target, identity)
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
