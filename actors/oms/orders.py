"""One order as the OMS knows it, its ids, and the outcome of a book command (pure logic,
no I/O); the book that holds the orders is `actors.oms.order_book.OrderBook`, the state
machine `actors.oms.lifecycle`, positions `actors.oms.positions`.

An `Order` changes only by journal records (`Order.apply`, called by
`OrderBook.apply_record`), on the live path and on replay alike. Journal record kinds
(Decimals as str):

- ``new``   {order}: an order created by `submit` (PENDING_RISK) or `adopt` (external, may
  carry the venue's cum_qty/notional, which is applied to the position).
- ``event`` {id, event, status, ts_ns, [exec_id, reason, venue_order_id, cl_ord_id, qty, price]}:
  a transition without a fill (risk verdict, ack, cancel/replace request and outcome...).
- ``fill``  {id, exec_id, qty, px, status, ts_ns, [venue_order_id]}: one execution.
- ``trade_bust`` {id, exec_id, ref, qty, px, status, reason, ts_ns, [fee, fee_asset, new_qty,
  new_px]}: the venue busted (or corrected) fill ``ref`` (`actors.oms.trade_busts`).
- ``unmatched_fill`` {venue, exec_id, cl_ord_id, symbol, side, qty, px, ts_ns, [cum_qty,
  venue_order_id]}: a venue fill that matches no order: recorded (deduped by exec id),
  escalated, positions untouched; an adoption of its ClOrdID explains it or places it
  (`actors.oms.adoption`).
- ``opening_position`` {venue, symbol, qty, avg_px, ts_ns}: a cold start's venue position.
- ``exec_quarantined`` {venue, exec_id, cl_ord_id, exec_kind, error, report, ts_ns}: an
  execution whose apply raised, acked and never applied (`actors.oms.exec_quarantine`).

Venue ClOrdID (deterministic, so a resend after a crash carries the same id; venues reject
a duplicate): the base id is the client_order_id itself when it matches [A-Za-z0-9_-]{1,24},
otherwise "h." + 20 base32 chars of its SHA-256 (the dot keeps the two forms apart).
Cancel / replace requests use f"{base}.c{n}" / f"{base}.r{n}" with n = 1, 2, ... counted per
order in the journal. Charset [A-Za-z0-9_.-], at most 30 chars below 10,000 requests.
Adopted orders keep the venue's ClOrdID and get client_order_id f"ext:{venue}:{cl_ord_id}".

A replace takes effect (`Order.take_replace`) when the venue names the order by a replace
id of ours (`Order.shows_replace`): the pending one, or a later one we had given up on; or
when the venue reports the order's live id replaced by a ClOrdID we never used
(`Order.replaced_outside`: someone else replaced it, ``replaced_externally``).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

import msgspec

from actors.oms.fill_terms import apply_bust, missed_fill_exec_id, note_fill
from actors.oms.lifecycle import CUT_SHORT, REQUEST_PENDING, Event, event_of, live_status, resolve
from actors.oms.positions import TRADE_BUST, ZERO
from protocol.batch_messages import clip_order_reason
from protocol.domain import ord_type_of, side_of, status_of, tif_of
from protocol.messages import (
    TERMINAL_STATUSES,
    OrderStatus,
    OrderView,
    OrdType,
    Side,
    SubmitOrder,
    TimeInForce,
    VenueOrder,
)
from protocol.wire_out import construct

S = OrderStatus
DROPPED_UNSENT: Final = "kill-switch engaged before the order was sent"  # its REJECTED reason
# the venue's session closed before it was sent: never sent into a later session
DROPPED_OUT_OF_SESSION: Final = "venue session closed before the order was sent"
# the `[trading]` window closed (or a blackout began) before the order was sent
DROPPED_OUTSIDE_TRADING_WINDOW: Final = "trading window closed before the order was sent"
# an operator stopped its connector: not sent whenever it is started again, hours later
DROPPED_STOPPED: Final = "venue stopped by an operator before the order was sent"
# the supervisor gave up on its connector (state corrupt, over its budget): not sent later
DROPPED_GAVE_UP: Final = "venue down (its connector gave up) before the order was sent"
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,24}")


def fill_of(record: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
    """(qty, px) of a ``fill`` record."""
    return Decimal(record["qty"]), Decimal(record["px"])


def base_cl_ord_id(client_order_id: str) -> str:
    """The venue ClOrdID of an order's first placement (see the module docstring)."""
    if _SAFE_ID.fullmatch(client_order_id):
        return client_order_id
    digest = hashlib.sha256(client_order_id.encode()).digest()
    return "h." + base64.b32encode(digest).decode().lower()[:20]


def request_cl_ord_id(base: str, kind: Literal["c", "r"], n: int) -> str:
    """The ClOrdID of the n-th (1-based) cancel ("c") or replace ("r") request."""
    return f"{base}.{kind}{n}"


def adopted_client_order_id(venue: str, cl_ord_id: str) -> str:
    return f"ext:{venue}:{cl_ord_id}"


def optional_decimal(value: Any) -> Decimal | None:
    """A record's optional decimal field (None stays None)."""
    return None if value is None else Decimal(value)


def optional_str(value: Decimal | None) -> str | None:
    """An optional decimal as a record field (None stays None)."""
    return None if value is None else str(value)


_DECIMAL_FIELDS = ("qty", "price", "cum_qty", "notional", "pending_qty", "pending_price")


class Order(msgspec.Struct, gc=False):
    """One order as the OMS knows it (changed only by `apply`, see the module docstring).

    Never tracked by the cyclic collector (`gc=False`), nor are its values: text, ints,
    Decimals, enums, a tuple of str and a dict of str (never a list or set). The OMS holds
    tens of thousands of open orders, and each full collection traversed all of them
    (~80 ms at 50,000); an Order refers to no object that refers back to it, so reference
    counting frees it (tests/oms/test_order_gc.py)."""

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
    cl_ord_ids: tuple[str, ...]  # every ClOrdID used, first one is the base
    venue_order_id: str = ""
    cum_qty: Decimal = ZERO
    notional: Decimal = ZERO  # sum(fill qty * fill px); avg_px = notional / cum_qty
    exec_ids: dict[str, None] = msgspec.field(default_factory=dict)  # a set, untracked
    fills: dict[str, str] | None = None  # exec id -> its terms (`actors.oms.fill_terms`)
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

    @classmethod
    def submitted(cls, msg: SubmitOrder, cl_ord_id: str, ts_ns: int) -> Order:
        """A new client order, waiting for risk, to be placed as `cl_ord_id`."""
        return cls(
            msg.client_order_id,
            msg.venue,
            msg.symbol,
            msg.side,
            msg.qty,
            msg.order_type,
            msg.price,
            msg.tif,
            S.PENDING_RISK,
            cl_ord_id,
            (cl_ord_id,),
            ts_created_ns=ts_ns,
            ts_updated_ns=ts_ns,
        )

    @classmethod
    def adopted(cls, venue: str, vo: VenueOrder, ts_ns: int) -> Order:
        """A venue order we have no record of (external), at the venue's state; its fills
        so far count as one fill inferred from venue state."""
        terminal = vo.status in TERMINAL_STATUSES
        order = cls(
            adopted_client_order_id(venue, vo.cl_ord_id),
            venue,
            vo.symbol,
            vo.side,
            vo.order_qty,
            vo.order_type,
            vo.price,
            TimeInForce.GTC,
            vo.status if terminal else live_status(vo.cum_qty, vo.order_qty),
            vo.cl_ord_id,
            (vo.cl_ord_id,),
            venue_order_id=vo.venue_order_id,
            cum_qty=vo.cum_qty,
            notional=vo.cum_qty * vo.avg_px,
            external=True,
            reason="adopted",
            ts_created_ns=ts_ns,
            ts_ack_ns=ts_ns,
            ts_updated_ns=ts_ns,
        )
        if vo.cum_qty:
            order.exec_ids[missed_fill_exec_id(vo.cl_ord_id, vo.cum_qty)] = None
        return order

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
    def is_cut_short(self) -> bool:
        """Cancelled, expired or rejected: ended without filling (a fill now is late)."""
        return self.status in CUT_SHORT

    @property
    def reconciled_cum(self) -> Decimal:
        """The venue cum qty up to which fills inferred from venue state (synthetic exec ids
        `recon:<ClOrdID>:<venue cum>`, also set by an adoption) already count the order's
        fills."""
        cums = (Decimal(e.rsplit(":", 1)[1]) for e in self.exec_ids if e.startswith("recon:"))
        return max(cums, default=ZERO)

    @property
    def ever_acknowledged(self) -> bool:
        return bool(self.venue_order_id or self.ts_ack_ns or self.cum_qty)

    def same_terms(self, msg: SubmitOrder) -> bool:
        """`msg` is a repeat of the submit that made this order (a duplicate, not a reuse)."""
        mine = (self.venue, self.symbol, self.side, self.qty, self.order_type, self.price)
        theirs = (msg.venue, msg.symbol, msg.side, msg.qty, msg.order_type, msg.price)
        return mine == theirs and self.tif == msg.tif

    def next_status(self, event: Event, qty: str | None = None) -> OrderStatus | None:
        """The status `event` (with the new `qty` of a replace) would move the order to."""
        return resolve(self.status, event, self.cum_qty, self.qty if qty is None else Decimal(qty))

    def fill_event(self, qty: Decimal) -> Event:
        """The event a fill of `qty` is for this order."""
        return Event.FULL_FILL if self.cum_qty + qty >= self.qty else Event.PARTIAL_FILL

    # ------------------------------------------------------------------ replaces

    def is_replace_id(self, cl_ord_id: str) -> bool:
        """One of our replace requests' ClOrdIDs (see `request_cl_ord_id`)."""
        return cl_ord_id.startswith(self.cl_ord_ids[0] + ".r") and cl_ord_id in self.cl_ord_ids

    def is_later_replace(self, cl_ord_id: str) -> bool:
        """A replace ClOrdID of ours newer than the live one: a venue naming the order by
        it applied a replace whose confirmation we never saw (or saw refused, e.g. the
        answer to a resend of it)."""
        ids = self.cl_ord_ids
        return self.is_replace_id(cl_ord_id) and ids.index(cl_ord_id) > ids.index(self.cl_ord_id)

    def shows_replace(self, cl_ord_id: str) -> bool:
        """A venue naming the order by `cl_ord_id` shows that a replace of ours took effect:
        our pending replace, or (none pending) a later one we had given up on."""
        if self.status is S.PENDING_REPLACE:
            return cl_ord_id == self.pending_cl_ord_id
        return self.is_later_replace(cl_ord_id)

    def replaced_outside(self, cl_ord_id: str, orig_cl_ord_id: str) -> bool:
        """A Replaced report of our live id (or of a replace of ours that took effect unseen)
        by `cl_ord_id`, an id we never used: nobody of ours asked (`actors.oms.outside_replace`)."""
        ours = orig_cl_ord_id == self.cl_ord_id or self.shows_replace(orig_cl_ord_id)
        return bool(cl_ord_id) and cl_ord_id not in self.cl_ord_ids and ours

    def replace_in_doubt(self) -> str:
        """The newest replace of ours that may have taken effect without our seeing it: the
        pending one, or one given up on since the live id ("" if none)."""
        if self.status is S.PENDING_REPLACE:
            return self.pending_cl_ord_id
        later = [cl for cl in self.cl_ord_ids if self.is_later_replace(cl)]
        return later[-1] if later else ""

    def replace_fields(
        self, cl_ord_id: str, qty: Decimal | None, price: Decimal | None
    ) -> dict[str, Any]:
        """The ``event`` record fields of replace `cl_ord_id` taking effect: the venue's
        terms where it gives them (an OrderQty 0 as none), else those we asked for (our
        pending request), else the order's; an outside replace's qty is positive (`implausible`)."""
        asked = self.status is S.PENDING_REPLACE and cl_ord_id == self.pending_cl_ord_id
        qty = qty or (self.pending_qty if asked else None) or self.qty
        price = price if price is not None else (self.pending_price if asked else self.price)
        return {"cl_ord_id": cl_ord_id, "qty": str(qty), "price": optional_str(price)}

    def take_replace(self, qty: Decimal, price: Decimal | None, cl_ord_id: str = "") -> None:
        """A replace of ours took effect: the order carries its terms and lives on under its
        ClOrdID (a journal of an older build may end an order on a replace's terms alone)."""
        self.qty, self.price = qty, price
        if cl_ord_id:
            self.cl_ord_id = cl_ord_id
            self._add_cl_ord_id(cl_ord_id)

    # ------------------------------------------------------------------ records

    def apply(self, record: Mapping[str, Any]) -> tuple[Decimal, Decimal] | None:
        """Apply one ``event``, ``fill``, ``fill_fee`` or ``trade_bust`` record (the caller:
        `OrderBook.apply_record`). A fill returns its (qty, px) (a bust: -qty), for positions."""
        fill = None
        if record["kind"] == "fill":
            fill = self._apply_fill(record)
        elif record["kind"] == "event":
            self._apply_event(record)
        elif record["kind"] == TRADE_BUST:
            fill = apply_bust(self, record)
        else:  # ``fill_fee``: a counted fill's fee (`actors.oms.late_fee`), its exec id
            self.exec_ids[record["exec_id"]] = None
        self.ts_updated_ns = record["ts_ns"]
        if self.status not in REQUEST_PENDING:  # the cancel/replace request was answered
            self.pending_cl_ord_id, self.pending_qty, self.pending_price = "", None, None
        return fill

    def _apply_fill(self, r: Mapping[str, Any]) -> tuple[Decimal, Decimal]:
        qty, px = fill_of(r)
        cum_qty, notional = self.cum_qty + qty, self.notional + qty * px  # before any change
        self.cum_qty, self.notional = cum_qty, notional
        self.exec_ids[r["exec_id"]] = None
        note_fill(self, r)
        self.status = status_of(r["status"])
        self.venue_order_id = r.get("venue_order_id") or self.venue_order_id
        return qty, px

    def _apply_event(self, r: Mapping[str, Any]) -> None:
        event = event_of(r["event"])
        self.status = status_of(r["status"])
        self.reason = r.get("reason", self.reason)
        self.venue_order_id = r.get("venue_order_id") or self.venue_order_id
        if r.get("exec_id"):
            self.exec_ids[r["exec_id"]] = None
        if event == Event.RISK_APPROVED:
            self.ts_submit_ns = r["ts_ns"]
        elif event == Event.ACCEPTED and not self.ts_ack_ns:
            self.ts_ack_ns = r["ts_ns"]
        elif event == Event.RESUBMIT:
            self.resubmits += 1
            self.ts_resubmit_ns = r["ts_ns"]
        elif event == Event.RESUBMIT_UNSENT:  # that resend never left the connector
            self.resubmits = max(self.resubmits - 1, 0)
        elif event in (Event.CANCEL_REQUESTED, Event.REPLACE_REQUESTED):
            self.request_seq += 1
            self.pending_cl_ord_id = r["cl_ord_id"]
            self.pending_qty = optional_decimal(r.get("qty"))
            self.pending_price = optional_decimal(r.get("price"))
            self._add_cl_ord_id(r["cl_ord_id"])
        elif event in (Event.REPLACED, Event.REPLACED_EXTERNALLY):
            self.take_replace(Decimal(r["qty"]), optional_decimal(r.get("price")), r["cl_ord_id"])
        elif "qty" in r:  # the order ended on terms of a replace whose report we missed
            self.take_replace(Decimal(r["qty"]), optional_decimal(r.get("price")))

    def _add_cl_ord_id(self, cl_ord_id: str) -> None:
        if cl_ord_id not in self.cl_ord_ids:
            self.cl_ord_ids = (*self.cl_ord_ids, cl_ord_id)

    # ------------------------------------------------------------------ views

    def view(self) -> OrderView:
        return construct(  # of values held validated: without pydantic (protocol.wire_out)
            OrderView, client_order_id=self.client_order_id, venue=self.venue,
            symbol=self.symbol, side=self.side, qty=self.qty, order_type=self.order_type,
            price=self.price, tif=self.tif, status=self.status, cl_ord_id=self.cl_ord_id,
            venue_order_id=self.venue_order_id, cum_qty=self.cum_qty, avg_px=self.avg_px,
            reason=clip_order_reason(self.reason),  # the journal keeps it whole
            external=self.external, ts_ns=self.ts_updated_ns, pending_qty=self.pending_qty,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        d = msgspec.structs.asdict(self)  # every field, in order
        d.update({f: None if d[f] is None else str(d[f]) for f in _DECIMAL_FIELDS})  # one call
        d["exec_ids"] = sorted(self.exec_ids)
        d["fills"] = None if self.fills is None else dict(self.fills)  # not shared
        d["cl_ord_ids"] = list(self.cl_ord_ids)
        for f in ("side", "order_type", "tif", "status"):
            d[f] = str(d[f])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Order:
        kw = dict(d)
        kw.update({f: None if (v := kw.get(f)) is None else Decimal(v) for f in _DECIMAL_FIELDS})
        kw["side"], kw["order_type"] = side_of(kw["side"]), ord_type_of(kw["order_type"])
        kw["tif"], kw["status"] = tif_of(kw["tif"]), status_of(kw["status"])
        kw["exec_ids"] = dict.fromkeys(kw.get("exec_ids", ()))
        kw["cl_ord_ids"] = tuple(kw["cl_ord_ids"])
        return cls(**kw)


def implied_fill(
    order: Order, venue_cum_qty: Decimal, venue_avg_px: Decimal
) -> tuple[Decimal, Decimal]:
    """(qty, px) of the fills we missed, from the venue's cum_qty and avg_px: px makes our
    avg equal the venue's; falls back to the venue avg if that is not positive."""
    qty = venue_cum_qty - order.cum_qty
    px = (venue_cum_qty * venue_avg_px - order.notional) / qty
    return qty, px if px > 0 else venue_avg_px


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
    """What a book command did, for the actor to journal (`records`) before it acks or
    sends anything. `kind` is "applied" (state changed), "duplicate" (already applied: ack
    it, do nothing) or "refused" (invalid; `reason` says why; nothing changed)."""

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

    @classmethod
    def refused(cls, order: Order | None, reason: str, *escalations: Escalation) -> Outcome:
        return cls("refused", order, reason=reason, escalations=escalations)


def terms_problem(msg: SubmitOrder) -> tuple[str, str] | None:
    """(reason, field) if a new order's own terms are invalid, whatever the book holds."""
    if msg.client_order_id.startswith("ext:"):
        return "client_order_id prefix 'ext:' is reserved", "client_order_id"
    if msg.qty <= 0:
        return "qty must be positive", "qty"
    if msg.order_type is OrdType.LIMIT and (msg.price is None or msg.price <= 0):
        return "a LIMIT order needs a positive price", "price"
    if msg.order_type is OrdType.MARKET and msg.price is not None:
        return "a MARKET order takes no price", "price"
    return None
