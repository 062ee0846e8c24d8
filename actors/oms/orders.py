"""Order state machine, ids, fills and positions (pure logic, no I/O); the book that
holds them is `actors.oms.order_book.OrderBook`.

Event sourced: every mutation is a journal record, and `OrderBook.apply_record` is the only
code that changes state, on the live path and on replay alike. A command method decides
(validates against the transition table), builds the record(s), applies them and returns
an `Outcome` whose `records` the actor journals before it acks or sends anything::

    out = book.submit(msg, ts_ns)          # or risk_verdict / apply_exec / request_cancel ...
    for rec in out.records: journal.append(rec)
    journal.commit()                       # then ack / send / publish out.order.view()
    # replay: book = OrderBook.from_dict(snapshot); for rec in records: book.apply_record(rec)

Outcome.kind is "applied" (state changed, records to journal), "duplicate" (already applied:
ack it, do nothing) or "refused" (invalid; `reason` says why; nothing changed).

Journal record kinds (Decimals as str):
- ``new``   {order}: an order created by `submit` (PENDING_RISK) or `adopt` (external, may
  carry the venue's cum_qty/notional, which is applied to the position).
- ``event`` {id, event, status, ts_ns, [exec_id, reason, venue_order_id, cl_ord_id, qty, price]}:
  a transition without a fill (risk verdict, ack, cancel/replace request and outcome...).
- ``fill``  {id, exec_id, qty, px, status, ts_ns, [venue_order_id]}: one execution.
- ``unmatched_fill`` {venue, exec_id, cl_ord_id, symbol, side, qty, px, ts_ns}: a venue fill
  that matches no order: recorded (deduped by exec id), escalated, positions untouched.

Venue ClOrdID (deterministic, so a resend after a crash carries the same id; venues reject
a duplicate): the base id is the client_order_id itself when it matches [A-Za-z0-9_-]{1,24},
otherwise "h." + 20 base32 chars of its SHA-256 (the dot keeps the two forms apart).
Cancel / replace requests use f"{base}.c{n}" / f"{base}.r{n}" with n = 1, 2, ... counted per
order in the journal. Charset [A-Za-z0-9_.-], at most 30 chars below 10,000 requests.
Adopted orders keep the venue's ClOrdID and get client_order_id f"ext:{venue}:{cl_ord_id}".

Transitions: `TRANSITIONS` below; `LIVE` resolves to FILLED / PARTIALLY_FILLED / ACCEPTED by
cum_qty, `STAY` keeps the status (a fill during a pending cancel/replace, or a late fill on
a CANCELLED/EXPIRED/REJECTED order: applied, reported as a `late_fill` escalation).
A fill whose cum would exceed qty is an overfill: refused and escalated. A "rejected"
report whose text mentions "duplicate" means the venue already has that ClOrdID: a
PENDING_SUBMIT order becomes UNKNOWN (resolved by a status query), never REJECTED.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final, Literal

from protocol.messages import (
    TERMINAL_STATUSES,
    CancelOnVenue,
    OrderStatus,
    OrderView,
    OrdType,
    PlaceOrder,
    PositionView,
    ReplaceOnVenue,
    Side,
    TimeInForce,
)

ZERO: Final = Decimal(0)
S = OrderStatus
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,24}")


def base_cl_ord_id(client_order_id: str) -> str:
    """The venue ClOrdID of an order's first placement (see the module docstring)."""
    if _SAFE_ID.fullmatch(client_order_id):
        return client_order_id
    digest = hashlib.sha256(client_order_id.encode()).digest()
    return "h." + base64.b32encode(digest).decode().lower()[:20]


def request_cl_ord_id(base: str, kind: Literal["c", "r"], n: int) -> str:
    """The ClOrdID of the n-th (1-based) cancel ("c") or replace ("r") request."""
    return f"{base}.{kind}{n}"


def missed_fill_exec_id(cl_ord_id: str, venue_cum_qty: Decimal) -> str:
    """Synthetic exec id of a fill inferred from venue state: same state, same id."""
    return f"recon:{cl_ord_id}:{venue_cum_qty}"


def adopted_client_order_id(venue: str, cl_ord_id: str) -> str:
    return f"ext:{venue}:{cl_ord_id}"


class Event(StrEnum):
    RISK_APPROVED = "risk_approved"
    RISK_REJECTED = "risk_rejected"
    TIMEOUT = "timeout"  # no venue answer in time: outcome unknown
    RESUBMIT = "resubmit"  # the venue said it never saw the order: send again, same id
    CANCEL_REQUESTED = "cancel_requested"
    REPLACE_REQUESTED = "replace_requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE_REJECTED = "duplicate_rejected"  # venue refused a resend as duplicate ClOrdID
    PARTIAL_FILL = "partial_fill"
    FULL_FILL = "full_fill"
    CANCELLED = "cancelled"
    REPLACED = "replaced"
    CANCEL_REJECTED = "cancel_rejected"  # also a rejected replace (FIX 35=9)
    EXPIRED = "expired"


DROPPED_UNSENT: Final = "kill-switch engaged before the order was sent"  # its REJECTED reason
LIVE: Final = "LIVE"
STAY: Final = "STAY"
Target = OrderStatus | Literal["LIVE", "STAY"]

_PRE = (S.PENDING_SUBMIT, S.UNKNOWN)  # sent, never acknowledged
_LIVE = (S.ACCEPTED, S.PARTIALLY_FILLED)
_PENDING = (S.PENDING_CANCEL, S.PENDING_REPLACE)
_AT_VENUE = _PRE + _LIVE + _PENDING
_DONE = (S.CANCELLED, S.EXPIRED, S.REJECTED)  # terminal; a late fill is still applied


def _rows(states: Iterable[OrderStatus], event: Event, target: Target) -> dict[Any, Target]:
    return {(s, event): target for s in states}


TRANSITIONS: Mapping[tuple[OrderStatus, Event], Target] = MappingProxyType(
    {
        (S.PENDING_RISK, Event.RISK_APPROVED): S.PENDING_SUBMIT,
        (S.PENDING_RISK, Event.RISK_REJECTED): S.REJECTED,
        (S.PENDING_SUBMIT, Event.TIMEOUT): S.UNKNOWN,
        (S.PENDING_SUBMIT, Event.DUPLICATE_REJECTED): S.UNKNOWN,
        **_rows(_PRE, Event.RESUBMIT, S.PENDING_SUBMIT),
        **_rows(_PRE, Event.ACCEPTED, S.ACCEPTED),
        **_rows(_PRE, Event.REJECTED, S.REJECTED),
        **_rows(_PRE + _LIVE, Event.PARTIAL_FILL, S.PARTIALLY_FILLED),
        **_rows(_PENDING + _DONE, Event.PARTIAL_FILL, STAY),
        **_rows(_AT_VENUE, Event.FULL_FILL, S.FILLED),
        **_rows(_DONE, Event.FULL_FILL, STAY),
        **_rows(_LIVE, Event.CANCEL_REQUESTED, S.PENDING_CANCEL),
        **_rows(_LIVE, Event.REPLACE_REQUESTED, S.PENDING_REPLACE),
        **_rows(_AT_VENUE, Event.CANCELLED, S.CANCELLED),
        **_rows(_AT_VENUE, Event.EXPIRED, S.EXPIRED),
        (S.PENDING_REPLACE, Event.REPLACED): LIVE,
        # a replace confirmed after we gave up on it (checked by `Order.is_later_replace`)
        **_rows(_LIVE + (S.PENDING_CANCEL,), Event.REPLACED, STAY),
        **_rows(_PENDING, Event.CANCEL_REJECTED, LIVE),
    }
)
"""(status, event) -> target. A pair that is missing is refused and never applied."""


def transition(status: OrderStatus, event: Event) -> Target | None:
    return TRANSITIONS.get((status, event))


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(slots=True)
class Order:
    """One order as the OMS knows it (mutated only by `OrderBook.apply_record`)."""

    client_order_id: str
    venue: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrdType
    price: Decimal | None
    tif: TimeInForce
    status: OrderStatus
    cl_ord_id: str  # the ClOrdID currently live at the venue
    cl_ord_ids: list[str]  # every ClOrdID used, first one is the base
    venue_order_id: str = ""
    cum_qty: Decimal = ZERO
    notional: Decimal = ZERO  # sum(fill qty * fill px); avg_px = notional / cum_qty
    exec_ids: set[str] = field(default_factory=set)
    reason: str = ""
    external: bool = False
    request_seq: int = 0  # cancel/replace requests made so far (n of .c{n} / .r{n})
    pending_cl_ord_id: str = ""  # the outstanding cancel/replace request
    pending_qty: Decimal | None = None
    pending_price: Decimal | None = None
    resubmits: int = 0
    ts_created_ns: int = 0
    ts_submit_ns: int = 0  # risk approved: handed to the connector
    ts_ack_ns: int = 0  # first venue acknowledgement
    ts_resubmit_ns: int = 0
    ts_updated_ns: int = 0

    @property
    def avg_px(self) -> Decimal:
        return self.notional / self.cum_qty if self.cum_qty else ZERO

    @property
    def leaves_qty(self) -> Decimal:
        return ZERO if self.is_terminal else self.qty - self.cum_qty

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def ever_acknowledged(self) -> bool:
        return bool(self.venue_order_id or self.ts_ack_ns or self.cum_qty)

    def is_replace_id(self, cl_ord_id: str) -> bool:
        """One of our replace requests' ClOrdIDs (see `request_cl_ord_id`)."""
        return cl_ord_id.startswith(self.cl_ord_ids[0] + ".r") and cl_ord_id in self.cl_ord_ids

    def replace_in_doubt(self) -> str:
        """The newest replace of ours that may have taken effect without our seeing it: the
        pending one, or one given up on since the live id ("" if none)."""
        if self.status is S.PENDING_REPLACE:
            return self.pending_cl_ord_id
        later = [cl for cl in self.cl_ord_ids if self.is_later_replace(cl)]
        return later[-1] if later else ""

    def is_later_replace(self, cl_ord_id: str) -> bool:
        """A replace ClOrdID of ours newer than the live one: a venue naming the order by
        it applied a replace whose confirmation we never saw (or saw refused, e.g. the
        answer to a resend of it)."""
        ids = self.cl_ord_ids
        return self.is_replace_id(cl_ord_id) and ids.index(cl_ord_id) > ids.index(self.cl_ord_id)

    def view(self) -> OrderView:
        return OrderView(
            client_order_id=self.client_order_id,
            venue=self.venue,
            symbol=self.symbol,
            side=self.side,
            qty=self.qty,
            order_type=self.order_type,
            price=self.price,
            tif=self.tif,
            status=self.status,
            cl_ord_id=self.cl_ord_id,
            venue_order_id=self.venue_order_id,
            cum_qty=self.cum_qty,
            avg_px=self.avg_px,
            reason=self.reason,
            external=self.external,
            ts_ns=self.ts_updated_ns,
        )

    def to_dict(self) -> dict[str, Any]:
        d = {f: getattr(self, f) for f in self.__slots__}
        for f in ("qty", "price", "cum_qty", "notional", "pending_qty", "pending_price"):
            d[f] = _str(d[f])
        d["exec_ids"] = sorted(self.exec_ids)
        d["cl_ord_ids"] = list(self.cl_ord_ids)
        for f in ("side", "order_type", "tif", "status"):
            d[f] = str(d[f])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Order:
        kw = dict(d)
        for f in ("qty", "price", "cum_qty", "notional", "pending_qty", "pending_price"):
            kw[f] = _dec(kw.get(f))
        kw["side"], kw["order_type"] = Side(kw["side"]), OrdType(kw["order_type"])
        kw["tif"], kw["status"] = TimeInForce(kw["tif"]), OrderStatus(kw["status"])
        kw["exec_ids"] = set(kw.get("exec_ids", ()))
        kw["cl_ord_ids"] = list(kw["cl_ord_ids"])
        return cls(**kw)


def live_status(cum_qty: Decimal, qty: Decimal) -> OrderStatus:
    if cum_qty >= qty:
        return S.FILLED
    return S.PARTIALLY_FILLED if cum_qty > 0 else S.ACCEPTED


def next_status(order: Order, event: Event, cum_qty: Decimal | None = None) -> OrderStatus | None:
    """The status `event` would move `order` to (None: refused); `cum_qty` projects a fill."""
    target = transition(order.status, event)
    if target is None or target == STAY:
        return None if target is None else order.status
    if target == LIVE:
        return live_status(order.cum_qty if cum_qty is None else cum_qty, order.qty)
    return OrderStatus(target)


def fill_event(order: Order, qty: Decimal) -> Event:
    return Event.FULL_FILL if order.cum_qty + qty >= order.qty else Event.PARTIAL_FILL


@dataclass(slots=True)
class Position:
    """Average-cost position of one (venue, symbol): signed qty, avg px of the open qty."""

    venue: str
    symbol: str
    qty: Decimal = ZERO
    avg_px: Decimal = ZERO
    realized_pnl: Decimal = ZERO

    def apply_fill(self, side: Side, qty: Decimal, px: Decimal) -> None:
        signed = qty if side == Side.BUY else -qty
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            held = abs(self.qty)
            self.avg_px = (held * self.avg_px + qty * px) / (held + qty)
            self.qty += signed
            return
        closing = min(qty, abs(self.qty))
        direction = 1 if self.qty > 0 else -1
        self.realized_pnl += closing * (px - self.avg_px) * direction
        self.qty += signed
        if self.qty == 0:
            self.avg_px = ZERO
        elif (self.qty > 0) != (direction > 0):  # flipped through zero: rest opened at px
            self.avg_px = px

    def view(self) -> PositionView:
        return PositionView(
            venue=self.venue,
            symbol=self.symbol,
            qty=self.qty,
            avg_px=self.avg_px,
            realized_pnl=self.realized_pnl,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "qty": str(self.qty),
            "avg_px": str(self.avg_px),
            "realized_pnl": str(self.realized_pnl),
        }


@dataclass(frozen=True, slots=True)
class UnmatchedFill:
    venue: str
    exec_id: str
    cl_ord_id: str
    symbol: str
    side: Side | None
    qty: Decimal
    px: Decimal
    ts_ns: int

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": "unmatched_fill",
            "venue": self.venue,
            "exec_id": self.exec_id,
            "cl_ord_id": self.cl_ord_id,
            "symbol": self.symbol,
            "side": None if self.side is None else str(self.side),
            "qty": str(self.qty),
            "px": str(self.px),
            "ts_ns": self.ts_ns,
        }

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> UnmatchedFill:
        return cls(
            r["venue"],
            r["exec_id"],
            r["cl_ord_id"],
            r["symbol"],
            None if r["side"] is None else Side(r["side"]),
            Decimal(r["qty"]),
            Decimal(r["px"]),
            r["ts_ns"],
        )


@dataclass(frozen=True, slots=True)
class Escalation:
    """Needs a human: overfill, unmatched_fill, late_fill, venue_cum_behind (the venue says
    less was filled than we applied). `venue_cum_ahead` is informational (reordered or
    missed fills; reconciliation repairs it)."""

    kind: str
    detail: str
    client_order_id: str = ""


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: Literal["applied", "duplicate", "refused"]
    order: Order | None = None
    records: tuple[dict[str, Any], ...] = ()
    reason: str = ""
    fill_qty: Decimal | None = None
    fill_px: Decimal | None = None
    escalations: tuple[Escalation, ...] = ()

    @property
    def applied(self) -> bool:
        return self.kind == "applied"


def implied_fill(
    order: Order, venue_cum_qty: Decimal, venue_avg_px: Decimal
) -> tuple[Decimal, Decimal]:
    """(qty, px) of the fills we missed, from the venue's cum_qty and avg_px: px makes our
    avg equal the venue's; falls back to the venue avg if that is not positive."""
    qty = venue_cum_qty - order.cum_qty
    px = (venue_cum_qty * venue_avg_px - order.notional) / qty
    return qty, px if px > 0 else venue_avg_px


def place_order_msg(order: Order) -> PlaceOrder:
    return PlaceOrder(
        cl_ord_id=order.cl_ord_id,
        symbol=order.symbol,
        side=order.side,
        qty=order.qty,
        order_type=order.order_type,
        price=order.price,
        tif=order.tif,
    )


def cancel_msg(order: Order) -> CancelOnVenue:
    return CancelOnVenue(
        cl_ord_id=order.pending_cl_ord_id,
        orig_cl_ord_id=order.cl_ord_id,
        symbol=order.symbol,
        side=order.side,
        qty=order.qty,
    )


def replace_msg(order: Order) -> ReplaceOnVenue:
    qty = order.pending_qty if order.pending_qty is not None else order.qty
    return ReplaceOnVenue(
        cl_ord_id=order.pending_cl_ord_id,
        orig_cl_ord_id=order.cl_ord_id,
        symbol=order.symbol,
        side=order.side,
        qty=qty,
        order_type=order.order_type,
        price=order.pending_price,
        tif=order.tif,
    )
