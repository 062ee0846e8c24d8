"""The OMS's order events written straight from its `Order`: two per order, the hottest
message it sends. The body is what the codec writes for
`OrderEvent(event_seq=..., order=order.view(), fill_qty=..., ...)` (the same map,
so the same bytes: tests/oms/test_event_wire.py), without building the `OrderView` and
`OrderEvent` models first (their validation and dump were ~6 us an event).

What validation would check is checked: the order's text, enums and ints are its own
typed fields, its quantity and price came through a validated message, but its
`cum_qty`, `avg_px` (computed) and an event's fill (a reconciliation infers one) are
checked with `check_decimal`; one out of bounds goes through the models, which raise
as before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, NamedTuple

import msgspec
import zmq

from actors.oms.orders import Order, Outcome
from actors.oms.positions import FILL_FEE, TRADE_BUST, record_fee
from actors.runtime.peer import Peer
from protocol.batch_messages import (
    EVENT_STREAM_HWM,
    MAX_EVENT_BATCH,
    MAX_EVENT_BATCH_BYTES,
    clip_order_reason,
)
from protocol.config import SystemConfig
from protocol.domain import check_decimal
from protocol.event_batch import BATCH_TAG
from protocol.fees import fee_parts
from protocol.messages import OrderEvent
from protocol.paths import RISK_EVENTS
from protocol.sockets import Context, Socket, tune_socket
from protocol.wire_out import dump

TYPE = "order_event"
BATCH_TYPE = "order_events"
_ENCODER: Final = msgspec.msgpack.Encoder()
_ZERO: Final = Decimal(0)
_FEE_KINDS: Final = ("fill", FILL_FEE, TRADE_BUST)  # records whose fee an event carries
_HEADROOM: Final = 4096  # the envelope around a batch's items (its header, ids, the list)


def order_event_body(
    order: Order,
    event_seq: int,
    fill_qty: Decimal | None,
    fill_px: Decimal | None,
    fee_base: Decimal | None = None,
    fee_quote: Decimal | None = None,
) -> dict[str, Any]:
    """The wire body of the order's event (see the module docstring)."""
    cum_qty, avg_px, price = order.cum_qty, order.avg_px, order.price
    try:
        for value in (cum_qty, avg_px, fill_qty, fill_px, fee_base, fee_quote):
            if value is not None:
                check_decimal(value)
    except ValueError:  # the models' validation raises it as it always did
        event = OrderEvent(event_seq=event_seq, order=order.view(), fill_qty=fill_qty,
                           fill_px=fill_px, fill_fee_base=fee_base,
                           fill_fee_quote=fee_quote)  # fmt: skip
        return dump(event)
    view = {
        "client_order_id": order.client_order_id,
        "venue": order.venue,
        "symbol": order.symbol,
        "side": str(order.side),
        "qty": str(order.qty),
        "order_type": str(order.order_type),
        "price": None if price is None else str(price),
        "tif": str(order.tif),
        "status": str(order.status),
        "cl_ord_id": order.cl_ord_id,
        "venue_order_id": order.venue_order_id,
        "cum_qty": str(cum_qty),
        "avg_px": str(avg_px),
        "reason": clip_order_reason(order.reason),
        "external": order.external,
        "ts_ns": order.ts_updated_ns,
        "pending_qty": None if order.pending_qty is None else str(order.pending_qty),
    }
    return {
        "event_seq": event_seq,
        "order": view,
        "fill_qty": None if fill_qty is None else str(fill_qty),
        "fill_px": None if fill_px is None else str(fill_px),
        "fill_fee_base": None if fee_base is None else str(fee_base),
        "fill_fee_quote": None if fee_quote is None else str(fee_quote),
    }


class EventFill(NamedTuple):
    """What the order's next event carries of its fills since its previous one (`merge_fill`):
    their qty, average price and the fees the OMS booked with them (None: none). Fills a
    venue took back in the same turn (`actors.oms.trade_busts`: a bust, a correction's old
    terms) are apart, `bust` (qty, px, fee_base, fee_quote), published first
    (`event_parts`); alone in their turn, a bust is the event's negative fill."""

    qty: Decimal | None = None
    px: Decimal | None = None
    fee_base: Decimal | None = None  # left the position (`protocol.fees.fee_parts`)
    fee_quote: Decimal | None = None  # realised
    bust: FillArgs | None = None  # taken back (a positive qty), with its fees as booked


FillArgs = tuple[Decimal | None, Decimal | None, Decimal | None, Decimal | None]


def event_parts(order: Order, fill: EventFill) -> list[tuple[Order, FillArgs]]:
    """The events (order, `order_event_body`'s fill arguments) the order's `fill` of one
    turn publishes: one; fills taken back and fills booked in one turn (a correction, a
    bust and a new fill) two, the order as after the ones taken back (a negative fill:
    risk takes it back as the book did, `protocol.fees.unbook_fill`), then as after the
    turn (the ones booked as a fill). One event could not say both: a correction of a
    fill's price, a bust and a fill of as much, move no quantity."""
    if fill.bust is None:
        return [(order, fill[:4])]
    qty, px = fill.qty or _ZERO, fill.px or _ZERO
    before = msgspec.structs.replace(
        order, cum_qty=order.cum_qty - qty, notional=order.notional - qty * px
    )
    bust_qty, bust_px, bust_base, bust_quote = fill.bust
    return [(before, (-(bust_qty or _ZERO), bust_px, bust_base, bust_quote)), (order, fill[:4])]


def _plus(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return b if a is None else a if b is None else a + b


def _sum(a: FillArgs, qty: Decimal, px: Decimal | None, base: Any, quote: Any) -> FillArgs:
    """Fills `a` and one more of `qty` at `px` (positive), their fees: at their average."""
    total = (a[0] or _ZERO) + qty
    avg = None
    if px is not None and (a[0] is None or a[1] is not None) and total:
        avg = ((a[0] or _ZERO) * (a[1] or _ZERO) + qty * px) / total
    return total, avg, _plus(a[2], base or None), _plus(a[3], quote or None)


def merge_fill(prior: EventFill | None, outcome: Outcome) -> EventFill:
    """The `EventFill` the order's next event carries, after one more `outcome`: every
    fill since the order's previous event, summed at their average price (a turn applies
    several executions of one order - a connector's batch - and publishes one event), not
    the last one alone; the fills a venue took back apart (`EventFill.bust`). Risk counts
    it as all that is new of an order it no longer knows (a late fill on an order ended
    before its exposure rebuild). Their fees are the records' of the order, split as the
    book split them when it applied each record: risk nets them as the book did, so its
    position and daily loss are the OMS's."""
    booked: FillArgs = (prior or EventFill())[:4]
    back = None if prior is None else prior.bust
    if booked[0] is not None and booked[0] < 0:  # a bust alone so far: taken back
        back, booked = (-booked[0], *booked[1:]), (None, None, None, None)
    order = outcome.order
    coid = None if order is None else order.client_order_id
    busts = False
    for rec in outcome.records:
        if order is None or rec.get("kind") not in _FEE_KINDS or rec.get("id") != coid:
            continue
        b, q = fee_parts(order.symbol, *record_fee(rec))
        if rec["kind"] != TRADE_BUST:
            booked = (*booked[:2], _plus(booked[2], b or None), _plus(booked[3], q or None))
            continue
        busts, none = True, (None, None, None, None)
        back = _sum(back or none, Decimal(rec["qty"]), Decimal(rec["px"]), b, q)
        if "new_qty" in rec:  # a correction: booked again on its new terms
            booked = _sum(booked, Decimal(rec["new_qty"]), Decimal(rec["new_px"]), 0, 0)
    if outcome.fill_qty and not busts:  # the outcome's fills (several: at their average)
        booked = _sum(booked, outcome.fill_qty, outcome.fill_px, 0, 0)
    if back is not None and booked[0] is None and booked[2:] == (None, None):
        return EventFill(-(back[0] or _ZERO), *back[1:])  # a bust alone: a negative fill
    return EventFill(*booked, bust=back)


def packed(body: dict[str, Any]) -> msgspec.Raw:
    """An event's wire body as msgpack, written once (before the turn's commit)."""
    return msgspec.Raw(_ENCODER.encode(body))


def messages(events: list[msgspec.Raw]) -> Iterator[tuple[str, Any]]:
    """(type, body) of the messages publishing a turn's events in order: one alone as a
    lone `OrderEvent`, several as `OrderEvents` of at most `MAX_EVENT_BATCH` items whose
    frame stays under `MAX_EVENT_BATCH_BYTES` (an item over it goes alone)."""
    start, size = 0, 0
    for i, event in enumerate(events):
        n = len(event)
        full = i - start == MAX_EVENT_BATCH or size + n > MAX_EVENT_BATCH_BYTES - _HEADROOM
        if i > start and full:
            yield _message(events[start:i])
            start, size = i, 0
        size += n
    if start < len(events):
        yield _message(events[start:])


def _message(events: list[msgspec.Raw]) -> tuple[str, Any]:
    return (TYPE, events[0]) if len(events) == 1 else (BATCH_TYPE, {"events": events})


def bind_event_stream(ctx: Context, endpoint: str) -> Socket:
    """The OMS's PUB of the event stream, bound at `endpoint` (a dead incarnation's ipc
    file removed first). Its high-water mark is `EVENT_STREAM_HWM`: a message is up to a
    batch of `MAX_EVENT_BATCH_BYTES`, so a subscriber that stops reading holds at most
    `EVENT_STREAM_BYTES` of the OMS's memory before the PUB drops (never blocks)."""
    pub = ctx.socket(zmq.PUB)
    tune_socket(pub, hwm=EVENT_STREAM_HWM)
    Path(endpoint.removeprefix("ipc://")).unlink(missing_ok=True)
    pub.bind(endpoint)
    return pub


RISK_QUEUE_MAX: Final = 64  # messages waiting for risk: sent at once beyond it
_Fn = Callable[[], None]
# An order's events on its way to the venue: risk approved the order, it counts it open
_TRAILING: Final = frozenset({"PENDING_SUBMIT", "ACCEPTED"})


class _TrailOrder(msgspec.Struct):
    status: str
    external: bool


class _TrailBody(msgspec.Struct):
    order: _TrailOrder
    fill_qty: str | None


class _TrailEvent(msgspec.Struct):
    type: str
    body: _TrailBody


_TRAIL: Final = msgspec.msgpack.Decoder(_TrailEvent)


def trails(frames: list[Any]) -> bool:
    """May risk read this stream message late? Only a lone event of an order of ours
    (not adopted) going PENDING_SUBMIT or ACCEPTED without a fill: exposure risk already
    counts since its approval. Anything else (fills: prices, losses; ends; adoptions;
    stream events such as opening positions; batches) goes to risk at once."""
    if len(frames) != 1 or frames[0].find(BATCH_TAG, 0, 64) >= 0:
        return False  # a batch is not decoded (up to 64 KiB) to learn that
    try:
        event = _TRAIL.decode(frames[0])
    except (msgspec.DecodeError, TypeError):  # a stream event: not an order's
        return False
    if event is None or event.type != TYPE:
        return False
    body = event.body
    return body.order.status in _TRAILING and not body.order.external and body.fill_qty is None


class EventStreams:
    """The event stream on two PUBs: the clients' (`events.sock`), every message at once,
    and risk's copy (`risk-events.sock`): the same messages in the same order, where the
    ones that `trails` (an approved order's PENDING_SUBMIT and ACCEPTED) wait: until the
    next message that does not trail, the OMS's next message to risk (`follows`), or
    `lag_s` after the first one waiting (`[oms] risk_stream_lag_s`, 5 ms; 0: none waits),
    whichever is first. Fills, ends, adoptions and stream events reach risk when they
    did before, after what waits.

    Those two are the events of an order's path: from one PUB, the PENDING_SUBMIT woke
    risk at the instant the PlaceOrder went to the connector, and the ACCEPTED woke it
    beside the client; on 2 cores risk's turn took the CPU they needed (issue 16). Risk
    loses nothing by reading them late: it counts the order's exposure from its approval
    to an event that ends it or fills it."""

    def __init__(
        self, clients: Socket, risk: Socket, lag_s: float, call_later: Callable[[float, _Fn], None]
    ) -> None:
        self.clients, self.risk, self.lag_s = clients, risk, lag_s
        self._call_later = call_later
        self._risk_queue: list[list[Any]] = []
        self._armed = False  # a `lag_s` timer is set

    @classmethod
    def bind(
        cls, ctx: Context, cfg: SystemConfig, call_later: Callable[[float, _Fn], None]
    ) -> EventStreams:
        clients = bind_event_stream(ctx, cfg.events_endpoint)
        risk = bind_event_stream(ctx, cfg.endpoint(RISK_EVENTS))
        return cls(clients, risk, cfg.oms.risk_stream_lag_s, call_later)

    def send_multipart(self, frames: list[Any], copy: bool = False) -> None:
        """Publish one stream message (the frames the codec wrote)."""
        self.clients.send_multipart(frames, copy=copy)
        if not self.lag_s or not trails(frames):
            self.flush_risk()  # what waits goes first: risk reads the stream in order
            self.risk.send_multipart(frames, copy=False)
            return
        self._risk_queue.append(frames)
        if len(self._risk_queue) >= RISK_QUEUE_MAX:
            self.flush_risk()
        elif not self._armed:
            self._armed = True
            self._call_later(self.lag_s, self._due)

    def follows(self, risk: Peer) -> Peer:
        """`risk`, whose every message the stream's waiting part goes just before."""
        risk.before_send = self.flush_risk
        return risk

    def flush_risk(self) -> None:
        """Send risk what waits for it (the OMS's stop calls it too)."""
        queue, self._risk_queue = self._risk_queue, []
        for frames in queue:
            self.risk.send_multipart(frames, copy=False)

    def _due(self) -> None:
        self._armed = False
        self.flush_risk()
