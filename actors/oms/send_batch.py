"""The OMS's venue requests of one turn's sends, to one connector as one message.

The sends of a turn run after its journal commit (`OmsActor.after_iteration`); while they
run, each link's requests are held here and go when the sends are done, as one `Requests`
(`Peer.request_many`: each its own id, callback and deadline; one alone as itself). Nothing
is sent earlier than before (the commit came first), and in the order dispatched."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from protocol.codec import Envelope
from protocol.messages import Message

Callback = Callable[[Envelope | None], None]


class _Peer(Protocol):
    def request(self, body: Message, callback: Callback, timeout_s: float) -> str: ...

    def request_many(self, items: Sequence[tuple[Message, Callback]], timeout_s: float) -> None: ...


class HeldSends:
    def __init__(self, peer: _Peer, timeout_s: float) -> None:
        self._peer = peer
        self.timeout_s = timeout_s
        self._held: list[tuple[Message, Callback]] | None = None

    def request(self, body: Message, callback: Callback) -> None:
        if self._held is None:
            self._peer.request(body, callback, self.timeout_s)
        else:
            self._held.append((body, callback))

    def hold(self) -> None:
        self._held = []

    def release(self) -> None:
        held, self._held = self._held, None
        if held:
            self._peer.request_many(held, self.timeout_s)
