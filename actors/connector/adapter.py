"""The venue adapter interface: what the connector actor needs from one venue.

The connector (actors/connector/actor.py) owns everything that is the same for every venue:
reconnect backoff, the venue state it reports, delivery of executions to the OMS until
acked, the reply to each OMS request. An adapter owns the wire: FIX 4.4 today
(`actors.connector.fix.adapter.FixAdapter`), a REST/websocket exchange later, without the
OMS noticing.

An adapter is driven by the actor's event loop (`Loop`, which `actors.runtime.actor.Actor`
satisfies): it registers its own file descriptors and timers, never blocks, never starts a
thread. The connector calls `flush()` once per loop turn (from `after_iteration`): that is
where an adapter writes what the turn produced.

Events flow back through a `Listener`:

- `on_session_up(detail)`: logged on and caught up (missed messages recovered);
- `on_session_down(reason, was_up)`: a connection attempt failed (``was_up`` False) or a
  live session ended (True); the connector decides when to call `connect()` again;
- `on_execs(reports)`: executions in venue order. **Durability barrier**: the adapter
  tells the venue it has consumed these executions (for FIX: persists the inbound sequence
  number past them) only after `on_execs` has returned, so the listener must make them
  durable before returning. A crash at any point then loses nothing: either the listener
  has them, or the venue sends them again.

Requests report their outcome through a callback, exactly once: `None` / the result, or a
`RequestFailed` whose `code` is `VENUE_DOWN` (not logged on, or the session dropped before
the answer), `TIMEOUT` or `INTERNAL`. For `place` / `cancel` / `replace`, success means
the message is in the adapter's durable outbound store and on its way; the venue's answer
comes later as executions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from protocol.exceptions import VenueError
from protocol.messages import (
    CancelOnVenue,
    ErrorCode,
    ExecReport,
    PlaceOrder,
    PositionView,
    QueriedOrder,
    ReplaceOnVenue,
    VenueOrder,
)


class RequestFailed(VenueError):
    """A venue request did not complete; `code` is what the connector replies with."""

    def __init__(self, code: ErrorCode, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message, retryable=code in (ErrorCode.VENUE_DOWN, ErrorCode.TIMEOUT))
        self.code = code
        # the venue said it does not serve this kind of request at all (380=3, 373=11,
        # PosReqResult 4), as opposed to refusing this one request
        self.unsupported = unsupported


class AnswerTooBig(RequestFailed):
    """The venue's answer is more than one reply to the OMS carries (a mass status of
    `orders` or more): VENUE_REFUSED, so the OMS asks by order instead."""

    def __init__(self, orders: int, message: str) -> None:
        super().__init__(ErrorCode.VENUE_REFUSED, message)
        self.orders = orders


@dataclass(frozen=True)
class StatusResult:
    """Answer to `order_status`: the venue's view of the orders it knows (keyed by the
    venue's current ClOrdID), the ids it says it never saw, and those it does not know
    yet while a create of ours may still reach it (`OrderStatusAnswer.pending`)."""

    orders: list[VenueOrder] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)


T = TypeVar("T")


@dataclass(frozen=True)
class NoConsistentCut(Generic[T]):
    """An answer the adapter cannot show consistent with the executions it has handed on
    when it completes (`exec_mark`): a ccxt balance read while fills kept arriving may lack
    the last of them. The connector sends it with a cut that names no OMS incarnation, so
    it is shown and compared by no one (actors/connector/exec_cut.py)."""

    answer: T


SendDone = Callable[[RequestFailed | None], None]
StatusDone = Callable[[StatusResult | RequestFailed], None]
OrdersDone = Callable[[list[VenueOrder] | RequestFailed], None]
PositionsDone = Callable[
    [list[PositionView] | NoConsistentCut[list[PositionView]] | RequestFailed], None
]
MassCancelDone = Callable[[bool | RequestFailed], None]


class Loop(Protocol):
    """The slice of the actor loop an adapter uses (zmq.POLLIN / zmq.POLLOUT events)."""

    def add_fd(self, fd: int, handler: Callable[[], None], events: int = ...) -> None: ...
    def modify_fd(self, fd: int, events: int) -> None: ...
    def remove(self, sock_or_fd: int) -> None: ...
    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None: ...

    def call_every(self, interval_s: float, fn: Callable[[], None]) -> None: ...


class Listener(Protocol):
    def on_session_up(self, detail: str) -> None: ...
    def on_session_down(self, reason: str, was_up: bool) -> None: ...
    def on_execs(self, reports: Sequence[ExecReport]) -> None: ...


class VenueAdapter(Protocol):
    """One venue, as the connector sees it."""

    @property
    def is_active(self) -> bool:
        """Logged on: requests can be sent."""
        ...

    @property
    def is_idle(self) -> bool:
        """No connection and nothing left to write (a graceful disconnect finished)."""
        ...

    @property
    def exec_mark(self) -> int:
        """The executions the venue sent before the message being handled now (or, between
        messages, all so far), counted over the adapter's life as `on_execs` gets them: a
        query answer that completes reflects exactly these (`actors.connector.exec_cut`)."""
        ...

    def connect(self) -> None:
        """Start one connection attempt; the outcome arrives as on_session_up/down."""
        ...

    def disconnect(self, reason: str) -> None:
        """Log out gracefully (or abandon an attempt); on_session_down follows."""
        ...

    def flush(self) -> None:
        """Write what this loop turn produced (called once per turn)."""
        ...

    def new_trading_session(self, key: str) -> None:
        """A scheduled trading session that started at `key` is open (before connect):
        a venue that starts each session afresh (FIX: daily sequence reset) does so now."""
        ...

    def close(self) -> None:
        """Release everything (socket, store); the adapter is not used again."""
        ...

    def place(self, order: PlaceOrder, done: SendDone) -> None: ...
    def cancel(self, request: CancelOnVenue, done: SendDone) -> None: ...
    def replace(self, request: ReplaceOnVenue, done: SendDone) -> None: ...
    def order_status(self, orders: Sequence[QueriedOrder], done: StatusDone) -> None: ...
    def open_orders(self, done: OrdersDone) -> None: ...
    def positions(self, done: PositionsDone) -> None: ...
    def mass_cancel(self, done: MassCancelDone) -> None: ...

    def info(self) -> dict[str, object]:
        """A few numbers for the actor heartbeat (queued messages, sequence numbers)."""
        ...
