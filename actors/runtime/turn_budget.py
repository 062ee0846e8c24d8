"""How much one socket's handler reads in one loop turn: a budget of items, not of messages.

A loop turn's work grows with what its handlers read: each item read (a submit, a risk
verdict, an execution, an ack) is journalled, committed, sent on, answered and published
in the same turn. A flood - a client sending orders back to back without waiting, or the
batches that flood sends on through risk and the connector - once let one OMS turn take
1,000 client messages, 1,000 verdicts and thousands of executions: 0.3-0.6 s on a loaded
2-core host, past the supervisor's hang limit (0.6 s in the tests), so a healthy but busy
OMS was killed as hung (issue 16). A batch message counts as the items it carries
(`items_of`: a `RiskVerdicts` of 256 is 256 items, not one), so batching does not slip
past the bound.

Reading stops once the budget is spent; the message that spends it is read whole (a turn
reads at most `TURN_ITEMS` plus one batch's items less one). The rest stays queued: the
loop's `zmq.Poller` is level-triggered (it asks each socket's `ZMQ_EVENTS`), so the socket
is ready again at the next turn, after that turn's heartbeat, timers and commit. An
ordinary load never meets the bound (the bench's 4 clients x 16 in flight read at most 64
orders a turn); only a backlog does, and it is worked off a bounded slice per turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, overload

import zmq

from protocol.codec import Envelope
from protocol.sockets import POLLIN

TURN_ITEMS = 256  # items one handler reads in one loop turn (one risk or ack batch's worth)

# the batch messages and the field holding their items
_ITEMS = {
    "requests": "requests",
    "exec_reports": "reports",
    "risk_checks": "checks",
    "risk_verdicts": "verdicts",
    "acks": "refs",
    "submit_orders": "orders",
}


def items_of(env: Envelope) -> int:
    """The items `env` stands for: a batch's length, else 1."""
    field = _ITEMS.get(env.type)
    if field is None:
        return 1
    return max(1, len(getattr(env.body, field, ())))


class TurnBudget:
    """`read(sock)` yields queued messages while the turn's budget lasts; `spend(env)`
    charges the items of a decoded batch beyond the one its message already counted."""

    __slots__ = ("items", "left")

    def __init__(self, items: int = TURN_ITEMS) -> None:
        self.items = items
        self.left = items

    @overload
    def read(self, sock: zmq.Socket[bytes]) -> Iterator[list[bytes]]: ...
    @overload
    def read(
        self, sock: zmq.Socket[bytes], *, frames: Literal[True]
    ) -> Iterator[list[zmq.Frame]]: ...
    def read(self, sock: zmq.Socket[bytes], *, frames: bool = False) -> Iterator[list[Any]]:
        """The messages queued on `sock` (never blocking), each charged one item, until
        the budget is spent; the budget is full again at each call (one per turn).
        `frames=True`: as zmq Frames (for their metadata: `ZapGate.from_binders`)."""
        self.left = self.items
        copy = not frames
        while self.left > 0:
            try:
                msg = sock.recv_multipart(zmq.NOBLOCK, copy=copy)
            except zmq.Again:
                return
            self.left -= 1
            yield msg
            if not int(sock.get(zmq.EVENTS)) & POLLIN:
                return  # none left: a recv would raise Again

    def spend(self, env: Envelope) -> None:
        self.spend_items(items_of(env))

    def spend_items(self, items: int) -> None:
        """Charge a message read as `items` items (one was charged when it was read)."""
        self.left -= items - 1
