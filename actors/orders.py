"""Order state machine, fills, positions and the OMS order book (pure logic, no I/O).

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
    ExecReport,
    OrderStatus,
    OrderView,
    OrdType,
    PlaceOrder,
    PositionView,
    ReplaceOnVenue,
    ReplaceOrder,
    RiskVerdict,
    Side,
    SubmitOrder,
    TimeInForce,
    VenueOrder,
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


TRANSITIONS: Mapping[tuple[OrderStatus, Event], Target] = MappingProxyType({
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
    **_rows(_PENDING, Event.CANCEL_REJECTED, LIVE),
})
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

    def view(self) -> OrderView:
        return OrderView(
            client_order_id=self.client_order_id, venue=self.venue, symbol=self.symbol,
            side=self.side, qty=self.qty, order_type=self.order_type, price=self.price,
            tif=self.tif, status=self.status, cl_ord_id=self.cl_ord_id,
            venue_order_id=self.venue_order_id, cum_qty=self.cum_qty, avg_px=self.avg_px,
            reason=self.reason, external=self.external, ts_ns=self.ts_updated_ns,
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
        return PositionView(venue=self.venue, symbol=self.symbol, qty=self.qty,
                            avg_px=self.avg_px, realized_pnl=self.realized_pnl)

    def to_dict(self) -> dict[str, Any]:
        return {"venue": self.venue, "symbol": self.symbol, "qty": str(self.qty),
                "avg_px": str(self.avg_px), "realized_pnl": str(self.realized_pnl)}


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
        return {"kind": "unmatched_fill", "venue": self.venue, "exec_id": self.exec_id,
                "cl_ord_id": self.cl_ord_id, "symbol": self.symbol,
                "side": None if self.side is None else str(self.side),
                "qty": str(self.qty), "px": str(self.px), "ts_ns": self.ts_ns}

    @classmethod
    def from_record(cls, r: Mapping[str, Any]) -> UnmatchedFill:
        return cls(r["venue"], r["exec_id"], r["cl_ord_id"], r["symbol"],
                   None if r["side"] is None else Side(r["side"]),
                   Decimal(r["qty"]), Decimal(r["px"]), r["ts_ns"])


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


def _refused(order: Order | None, reason: str, *esc: Escalation) -> Outcome:
    return Outcome("refused", order, reason=reason, escalations=esc)


_EXEC_EVENTS = {"accepted": Event.ACCEPTED, "rejected": Event.REJECTED,
                "cancelled": Event.CANCELLED, "replaced": Event.REPLACED,
                "cancel_rejected": Event.CANCEL_REJECTED, "expired": Event.EXPIRED}
_EVIDENCE_EVENTS = {S.ACCEPTED: Event.ACCEPTED, S.PARTIALLY_FILLED: Event.ACCEPTED,
                    S.CANCELLED: Event.CANCELLED, S.EXPIRED: Event.EXPIRED,
                    S.REJECTED: Event.REJECTED}
_FIX_ORD_STATUS = {"0": S.ACCEPTED, "NEW": S.ACCEPTED, "1": S.PARTIALLY_FILLED,
                   "2": S.FILLED, "4": S.CANCELLED, "6": S.PENDING_CANCEL,
                   "8": S.REJECTED, "A": S.PENDING_SUBMIT, "C": S.EXPIRED, "E": S.PENDING_REPLACE}


def parse_ord_status(text: str) -> OrderStatus | None:
    """An OrderStatus name (any case) or a FIX tag-39 code; None if neither."""
    key = text.strip().upper()
    if key in _FIX_ORD_STATUS:
        return _FIX_ORD_STATUS[key]
    return OrderStatus(key) if key in OrderStatus.__members__ else None


class OrderBook:
    """All orders by client_order_id and by (venue, ClOrdID), positions, unmatched fills."""

    def __init__(self) -> None:
        self._orders: dict[str, Order] = {}
        self._by_cl: dict[tuple[str, str], Order] = {}
        self._positions: dict[tuple[str, str], Position] = {}
        self._unmatched: dict[tuple[str, str], UnmatchedFill] = {}

    # ------------------------------------------------------------------ queries
    def get(self, client_order_id: str) -> Order | None:
        return self._orders.get(client_order_id)

    def find(self, venue: str, cl_ord_id: str) -> Order | None:
        """The order that uses `cl_ord_id` (live, original or a request id) at `venue`."""
        return self._by_cl.get((venue, cl_ord_id))

    def orders(self, venue: str | None = None, *, open_only: bool = False) -> list[Order]:
        return [o for o in self._orders.values() if (venue is None or o.venue == venue)
                and not (open_only and o.is_terminal)]

    def positions(self, venue: str | None = None) -> list[Position]:
        return [p for p in self._positions.values() if venue is None or p.venue == venue]

    def position(self, venue: str, symbol: str) -> Position:
        return self._positions.get((venue, symbol)) or Position(venue, symbol)

    def unmatched_fills(self, venue: str | None = None) -> list[UnmatchedFill]:
        return [u for u in self._unmatched.values() if venue is None or u.venue == venue]

    def pending_venue_requests(
        self, venue: str
    ) -> list[PlaceOrder | CancelOnVenue | ReplaceOnVenue]:
        """What to (re)send to `venue`: every PENDING_SUBMIT placement and every pending
        cancel/replace, with the ClOrdIDs already journalled (idempotent at the venue)."""
        out: list[PlaceOrder | CancelOnVenue | ReplaceOnVenue] = []
        for o in self.orders(venue, open_only=True):
            if o.status == S.PENDING_SUBMIT:
                out.append(place_order_msg(o))
            elif o.status == S.PENDING_CANCEL:
                out.append(cancel_msg(o))
            elif o.status == S.PENDING_REPLACE:
                out.append(replace_msg(o))
        return out

    # ------------------------------------------------------------------ commands
    def submit(self, msg: SubmitOrder, ts_ns: int) -> Outcome:
        """A new client order (PENDING_RISK); a repeat of the same order is a duplicate."""
        existing = self._orders.get(msg.client_order_id)
        if existing is not None:
            same = (existing.venue, existing.symbol, existing.side, existing.qty,
                    existing.order_type, existing.price, existing.tif) == (
                msg.venue, msg.symbol, msg.side, msg.qty, msg.order_type, msg.price, msg.tif)
            if same:
                return Outcome("duplicate", existing, reason="client_order_id already known")
            return _refused(existing, "client_order_id reused with different parameters")
        if msg.client_order_id.startswith("ext:"):
            return _refused(None, "client_order_id prefix 'ext:' is reserved")
        if msg.qty <= 0:
            return _refused(None, "qty must be positive")
        if (msg.order_type == OrdType.LIMIT) != (msg.price is not None) or (
            msg.price is not None and msg.price <= 0
        ):
            return _refused(None, "a LIMIT order needs a positive price, a MARKET order none")
        base = base_cl_ord_id(msg.client_order_id)
        if (msg.venue, base) in self._by_cl:
            return _refused(None, f"ClOrdID {base!r} already used at {msg.venue}")
        order = Order(msg.client_order_id, msg.venue, msg.symbol, msg.side, msg.qty,
                      msg.order_type, msg.price, msg.tif, S.PENDING_RISK, base, [base],
                      ts_created_ns=ts_ns, ts_updated_ns=ts_ns)
        return self._commit(order.client_order_id, {"kind": "new", "order": order.to_dict()})

    def adopt(self, venue: str, vo: VenueOrder, ts_ns: int) -> Outcome:
        """Take over a venue order we have no record of (external), at the venue's state."""
        if (venue, vo.cl_ord_id) in self._by_cl:
            return Outcome("duplicate", self._by_cl[(venue, vo.cl_ord_id)], reason="known")
        status = vo.status if vo.status in TERMINAL_STATUSES else live_status(
            vo.cum_qty, vo.order_qty)
        coid = adopted_client_order_id(venue, vo.cl_ord_id)
        order = Order(coid, venue, vo.symbol, vo.side, vo.order_qty, vo.order_type, vo.price,
                      TimeInForce.GTC, status, vo.cl_ord_id, [vo.cl_ord_id],
                      venue_order_id=vo.venue_order_id, cum_qty=vo.cum_qty,
                      notional=vo.cum_qty * vo.avg_px, external=True, reason="adopted",
                      ts_created_ns=ts_ns, ts_ack_ns=ts_ns, ts_updated_ns=ts_ns)
        if vo.cum_qty:
            order.exec_ids.add(missed_fill_exec_id(vo.cl_ord_id, vo.cum_qty))
        return self._commit(coid, {"kind": "new", "order": order.to_dict()})

    def risk_verdict(self, verdict: RiskVerdict, ts_ns: int) -> Outcome:
        order = self._orders.get(verdict.client_order_id)
        if order is not None and order.status != S.PENDING_RISK:
            return Outcome("duplicate", order, reason="verdict already applied")
        event = Event.RISK_APPROVED if verdict.approved else Event.RISK_REJECTED
        return self._event(verdict.client_order_id, event, ts_ns, reason=verdict.reason)

    def mark_unknown(self, client_order_id: str, reason: str, ts_ns: int) -> Outcome:
        """No venue answer in time: UNKNOWN until venue evidence resolves it."""
        return self._event(client_order_id, Event.TIMEOUT, ts_ns, reason=reason)

    def mark_resubmitted(self, client_order_id: str, ts_ns: int) -> Outcome:
        """The venue said it never saw the order; the actor sends `place_order_msg` again."""
        return self._event(client_order_id, Event.RESUBMIT, ts_ns)

    def request_cancel(self, client_order_id: str, ts_ns: int) -> Outcome:
        order = self._orders.get(client_order_id)
        if order is None:
            return _refused(None, "unknown order")
        if order.status in (S.PENDING_CANCEL, S.CANCELLED):
            return Outcome("duplicate", order, reason=f"already {order.status}")
        cl = request_cl_ord_id(order.cl_ord_ids[0], "c", order.request_seq + 1)
        return self._event(client_order_id, Event.CANCEL_REQUESTED, ts_ns, cl_ord_id=cl)

    def request_replace(self, msg: ReplaceOrder, ts_ns: int) -> Outcome:
        order = self._orders.get(msg.client_order_id)
        if order is None:
            return _refused(None, "unknown order")
        qty = order.qty if msg.qty is None else msg.qty
        price = order.price if msg.price is None else msg.price
        if order.status == S.PENDING_REPLACE and (qty, price) == (
            order.pending_qty, order.pending_price
        ):
            return Outcome("duplicate", order, reason="same replace already pending")
        if (qty, price) == (order.qty, order.price):
            return _refused(order, "replace changes nothing")
        if qty <= order.cum_qty:
            return _refused(order, f"new qty {qty} must exceed cum_qty {order.cum_qty}")
        if order.order_type == OrdType.MARKET and msg.price is not None or (
            price is not None and price <= 0
        ):
            return _refused(order, "invalid price for the order type")
        cl = request_cl_ord_id(order.cl_ord_ids[0], "r", order.request_seq + 1)
        return self._event(msg.client_order_id, Event.REPLACE_REQUESTED, ts_ns, cl_ord_id=cl,
                           qty=str(qty), price=_str(price))

    def apply_exec(self, report: ExecReport, ts_ns: int) -> Outcome:
        """Apply one venue execution report (each exec id at most once per order)."""
        order = self.find(report.venue, report.cl_ord_id) or (
            self.find(report.venue, report.orig_cl_ord_id) if report.orig_cl_ord_id else None)
        if order is None:
            if report.kind == "fill" and report.last_qty > 0:
                return self._unmatched_fill(report, ts_ns)
            return _refused(None, f"unknown ClOrdID {report.cl_ord_id!r}")
        if report.exec_id and report.exec_id in order.exec_ids:
            return Outcome("duplicate", order, reason="exec_id already applied")
        coid = order.client_order_id
        if report.kind == "fill":
            return self.apply_fill(coid, report.exec_id, report.last_qty, report.last_px, ts_ns,
                                   venue_cum_qty=report.cum_qty,
                                   venue_order_id=report.venue_order_id)
        if report.kind == "status":
            return self._status_report(order, report, ts_ns)
        event = _EXEC_EVENTS[report.kind]
        if event == Event.REJECTED and "duplicate" in report.text.lower():
            event = Event.DUPLICATE_REJECTED
        if event in (Event.REPLACED, Event.CANCEL_REJECTED) and (
            report.cl_ord_id != order.pending_cl_ord_id
        ):
            return _refused(order, f"{event} for {report.cl_ord_id!r}, which is not the "
                            f"pending request {order.pending_cl_ord_id!r}")
        extra: dict[str, Any] = {}
        if event == Event.REPLACED:
            qty = report.order_qty or order.pending_qty or order.qty
            price = report.price if report.price is not None else (
                order.pending_price if order.pending_cl_ord_id else order.price)
            extra = {"cl_ord_id": report.cl_ord_id, "qty": str(qty), "price": _str(price)}
        return self._event(coid, event, ts_ns, exec_id=report.exec_id, reason=report.text,
                           venue_order_id=report.venue_order_id, **extra)

    def apply_fill(self, client_order_id: str, exec_id: str, qty: Decimal, px: Decimal,
                   ts_ns: int, *, venue_cum_qty: Decimal = ZERO,
                   venue_order_id: str = "") -> Outcome:
        """Apply one fill of `qty` at `px` (once per exec id); refuse an overfill."""
        order = self._orders.get(client_order_id)
        if order is None:
            return _refused(None, "unknown order")
        if exec_id and exec_id in order.exec_ids:
            return Outcome("duplicate", order, reason="exec_id already applied")
        if qty <= 0 or not exec_id:
            return _refused(order, f"fill without exec id or with qty {qty} <= 0")
        if order.cum_qty + qty > order.qty:
            detail = f"{exec_id}: cum {order.cum_qty} + {qty} > qty {order.qty}"
            return _refused(order, "overfill", Escalation("overfill", detail, client_order_id))
        status = next_status(order, fill_event(order, qty))
        if status is None:
            return _refused(order, f"fill not allowed in {order.status}")
        esc: list[Escalation] = []
        if order.status in _DONE:
            esc.append(Escalation("late_fill", f"{exec_id} on {order.status}", client_order_id))
        rec: dict[str, Any] = {"kind": "fill", "id": client_order_id, "exec_id": exec_id,
                               "qty": str(qty), "px": str(px), "status": str(status),
                               "ts_ns": ts_ns}
        if venue_order_id:
            rec["venue_order_id"] = venue_order_id
        out = self._commit(client_order_id, rec)
        if venue_cum_qty and venue_cum_qty != order.cum_qty:
            kind = "venue_cum_behind" if venue_cum_qty < order.cum_qty else "venue_cum_ahead"
            esc.append(Escalation(kind, f"venue cum {venue_cum_qty}, local {order.cum_qty}",
                                  client_order_id))
        return Outcome("applied", order, out.records, fill_qty=qty, fill_px=px,
                       escalations=tuple(esc))

    def apply_venue_status(self, client_order_id: str, status: OrderStatus, ts_ns: int, *,
                           reason: str = "", venue_order_id: str = "", cl_ord_id: str = "",
                           qty: Decimal | None = None, price: Decimal | None = None,
                           exec_id: str = "") -> Outcome:
        """Venue evidence that the order is in `status` (reconciliation, status reports).
        Fills are not inferred here: apply missed fills first. `cl_ord_id` equal to a
        pending replace id means the replace happened (then `qty`/`price` are the new ones)."""
        order = self._orders.get(client_order_id)
        if order is None:
            return _refused(None, "unknown order")
        extra: dict[str, Any] = {}
        if (order.status == S.PENDING_REPLACE and cl_ord_id == order.pending_cl_ord_id
                and status not in TERMINAL_STATUSES):
            event = Event.REPLACED
            extra = {"cl_ord_id": cl_ord_id, "qty": str(qty or order.pending_qty or order.qty),
                     "price": _str(price if price is not None else order.pending_price)}
        elif status == order.status:
            return Outcome("duplicate", order, reason=f"already {status}")
        elif status not in _EVIDENCE_EVENTS:
            return _refused(order, f"{status} is not venue evidence")
        else:
            event = _EVIDENCE_EVENTS[status]
        return self._event(client_order_id, event, ts_ns, exec_id=exec_id, reason=reason,
                           venue_order_id=venue_order_id, **extra)

    # ------------------------------------------------------------------ internals
    def _status_report(self, order: Order, report: ExecReport, ts_ns: int) -> Outcome:
        """A venue status report: apply the fill quantity we missed, then the status."""
        status = parse_ord_status(report.ord_status)
        records: list[dict[str, Any]] = []
        esc: list[Escalation] = []
        if report.cum_qty > order.cum_qty:
            qty, px = implied_fill(order, report.cum_qty, report.avg_px)
            fill = self.apply_fill(order.client_order_id,
                                   missed_fill_exec_id(report.cl_ord_id, report.cum_qty),
                                   qty, px, ts_ns, venue_order_id=report.venue_order_id)
            records += fill.records
            esc += fill.escalations
        elif report.cum_qty < order.cum_qty:
            esc.append(Escalation("venue_cum_behind", f"venue cum {report.cum_qty}, "
                                  f"local {order.cum_qty}", order.client_order_id))
        if status is not None and status != S.FILLED and not order.is_terminal:
            out = self.apply_venue_status(order.client_order_id, status, ts_ns,
                                          reason=report.text, cl_ord_id=report.cl_ord_id,
                                          venue_order_id=report.venue_order_id,
                                          qty=report.order_qty, price=report.price)
            records += out.records
        kind: Literal["applied", "duplicate"] = "applied" if records else "duplicate"
        return Outcome(kind, order, tuple(records), escalations=tuple(esc))

    def _unmatched_fill(self, report: ExecReport, ts_ns: int) -> Outcome:
        key = (report.venue, report.exec_id)
        if key in self._unmatched:
            return Outcome("duplicate", None, reason="unmatched fill already recorded")
        fill = UnmatchedFill(report.venue, report.exec_id, report.cl_ord_id, report.symbol,
                             report.side, report.last_qty, report.last_px, ts_ns)
        record = fill.to_record()
        self.apply_record(record)
        detail = f"{report.exec_id}: {report.last_qty} {report.symbol} @ {report.last_px}"
        return Outcome("applied", None, (record,), fill_qty=fill.qty, fill_px=fill.px,
                       escalations=(Escalation("unmatched_fill", detail),))

    def _event(self, client_order_id: str, event: Event, ts_ns: int, **fields: Any) -> Outcome:
        order = self._orders.get(client_order_id)
        if order is None:
            return _refused(None, "unknown order")
        status = next_status(order, event)
        if status is None:
            return _refused(order, f"{event} not allowed in {order.status}")
        rec = {"kind": "event", "id": client_order_id, "event": str(event),
               "status": str(status), "ts_ns": ts_ns}
        rec.update((k, v) for k, v in fields.items() if v not in ("", None))
        return self._commit(client_order_id, rec)

    def _commit(self, client_order_id: str, record: dict[str, Any]) -> Outcome:
        self.apply_record(record)
        return Outcome("applied", self._orders[client_order_id], (record,))

    # ------------------------------------------------------------------ replay
    def apply_record(self, record: Mapping[str, Any]) -> None:
        """Apply one journal record; the live path and replay both come through here."""
        kind = record["kind"]
        if kind == "new":
            self._apply_new(Order.from_dict(record["order"]))
        elif kind == "unmatched_fill":
            fill = UnmatchedFill.from_record(record)
            self._unmatched[(fill.venue, fill.exec_id)] = fill
        elif kind in ("event", "fill"):
            order = self._orders.get(record["id"])
            if order is None:
                raise ValueError(f"journal {kind} record for unknown order {record['id']!r}")
            (self._apply_fill if kind == "fill" else self._apply_event)(order, record)
            order.ts_updated_ns = record["ts_ns"]
            if order.status not in _PENDING:
                order.pending_cl_ord_id, order.pending_qty, order.pending_price = "", None, None
        else:
            raise ValueError(f"unknown journal record kind {kind!r}")

    def _apply_new(self, order: Order) -> None:
        self._orders[order.client_order_id] = order
        for cl in order.cl_ord_ids:
            self._by_cl[(order.venue, cl)] = order
        if order.cum_qty:
            self._pos(order).apply_fill(order.side, order.cum_qty, order.avg_px)
        for key, fill in list(self._unmatched.items()):
            if order.external and fill.venue == order.venue and fill.cl_ord_id == order.cl_ord_id:
                order.exec_ids.add(fill.exec_id)  # explained by the adopted venue cum_qty
                del self._unmatched[key]

    def _apply_fill(self, order: Order, r: Mapping[str, Any]) -> None:
        qty, px = Decimal(r["qty"]), Decimal(r["px"])
        order.cum_qty += qty
        order.notional += qty * px
        order.exec_ids.add(r["exec_id"])
        order.status = OrderStatus(r["status"])
        order.venue_order_id = r.get("venue_order_id") or order.venue_order_id
        self._pos(order).apply_fill(order.side, qty, px)

    def _apply_event(self, order: Order, r: Mapping[str, Any]) -> None:
        event = Event(r["event"])
        order.status = OrderStatus(r["status"])
        order.reason = r.get("reason", order.reason)
        order.venue_order_id = r.get("venue_order_id") or order.venue_order_id
        if r.get("exec_id"):
            order.exec_ids.add(r["exec_id"])
        if event == Event.RISK_APPROVED:
            order.ts_submit_ns = r["ts_ns"]
        elif event == Event.ACCEPTED and not order.ts_ack_ns:
            order.ts_ack_ns = r["ts_ns"]
        elif event == Event.RESUBMIT:
            order.resubmits += 1
            order.ts_resubmit_ns = r["ts_ns"]
        elif event in (Event.CANCEL_REQUESTED, Event.REPLACE_REQUESTED):
            order.request_seq += 1
            order.pending_cl_ord_id = r["cl_ord_id"]
            order.pending_qty, order.pending_price = _dec(r.get("qty")), _dec(r.get("price"))
            self._add_cl(order, r["cl_ord_id"])
        elif event == Event.REPLACED:
            order.cl_ord_id = r["cl_ord_id"]
            order.qty, order.price = Decimal(r["qty"]), _dec(r.get("price"))
            self._add_cl(order, r["cl_ord_id"])

    def _add_cl(self, order: Order, cl_ord_id: str) -> None:
        if cl_ord_id not in order.cl_ord_ids:
            order.cl_ord_ids.append(cl_ord_id)
        self._by_cl[(order.venue, cl_ord_id)] = order

    def _pos(self, order: Order) -> Position:
        key = (order.venue, order.symbol)
        if key not in self._positions:
            self._positions[key] = Position(order.venue, order.symbol)
        return self._positions[key]

    # ------------------------------------------------------------------ snapshots
    def to_dict(self) -> dict[str, Any]:
        """The whole book as msgpack-friendly data (for `Journal.write_snapshot`)."""
        return {"format": 1, "orders": [o.to_dict() for o in self._orders.values()],
                "positions": [p.to_dict() for p in self._positions.values()],
                "unmatched": [u.to_record() for u in self._unmatched.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OrderBook:
        book = cls()
        for d in data["orders"]:
            order = Order.from_dict(d)
            book._orders[order.client_order_id] = order
            for cl in order.cl_ord_ids:
                book._by_cl[(order.venue, cl)] = order
        for p in data["positions"]:
            book._positions[(p["venue"], p["symbol"])] = Position(
                p["venue"], p["symbol"], Decimal(p["qty"]), Decimal(p["avg_px"]),
                Decimal(p["realized_pnl"]))
        for u in data["unmatched"]:
            fill = UnmatchedFill.from_record(u)
            book._unmatched[(fill.venue, fill.exec_id)] = fill
        return book


def implied_fill(order: Order, venue_cum_qty: Decimal, venue_avg_px: Decimal
                 ) -> tuple[Decimal, Decimal]:
    """(qty, px) of the fills we missed, from the venue's cum_qty and avg_px: px makes our
    avg equal the venue's; falls back to the venue avg if that is not positive."""
    qty = venue_cum_qty - order.cum_qty
    px = (venue_cum_qty * venue_avg_px - order.notional) / qty
    return qty, px if px > 0 else venue_avg_px


def place_order_msg(order: Order) -> PlaceOrder:
    return PlaceOrder(cl_ord_id=order.cl_ord_id, symbol=order.symbol, side=order.side,
                      qty=order.qty, order_type=order.order_type, price=order.price,
                      tif=order.tif)


def cancel_msg(order: Order) -> CancelOnVenue:
    return CancelOnVenue(cl_ord_id=order.pending_cl_ord_id, orig_cl_ord_id=order.cl_ord_id,
                         symbol=order.symbol, side=order.side, qty=order.qty)


def replace_msg(order: Order) -> ReplaceOnVenue:
    qty = order.pending_qty if order.pending_qty is not None else order.qty
    return ReplaceOnVenue(cl_ord_id=order.pending_cl_ord_id, orig_cl_ord_id=order.cl_ord_id,
                          symbol=order.symbol, side=order.side, qty=qty,
                          order_type=order.order_type, price=order.pending_price, tif=order.tif)
