"""The OMS order book: every order by client order id and by (venue, ClOrdID), positions
and unmatched fills (pure logic; its only I/O reads the order archive, `actors.oms.retention`).

Event sourced: every mutation is a journal record, and `OrderBook.apply_record` is the only
code that changes state, on the live path and on replay alike. A command method decides
(validates against the transition table in `actors.oms.lifecycle`), builds the record(s),
applies them and returns an `Outcome` whose `records` the actor journals before it acks or
sends anything::

    out = book.submit(msg, ts_ns)          # or risk_verdict / apply_exec / request_cancel ...
    for rec in out.records: journal.append(rec)
    journal.commit()                       # then ack / send / publish out.order.view()
    # replay: book = OrderBook.from_dict(snapshot); for rec in records: book.apply_record(rec)

Execution reports are applied by `actors.oms.executions` (busts: `actors.oms.trade_busts`),
a client's cancel or replace by `actors.oms.cancel_replace`, through the book's commands.
The record kinds and the ClOrdID scheme are described in `actors.oms.orders`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from actors.oms import adoption, cancel_replace, executions, late_fee, trade_busts
from actors.oms.adoption import AfterCut
from actors.oms.evictions import Evictions
from actors.oms.lifecycle import Event
from actors.oms.order_archive import Retention
from actors.oms.orders import Escalation, Order, Outcome, base_cl_ord_id, terms_problem
from actors.oms.outside_replace import id_taken, replaced_outside
from actors.oms.positions import ZERO, Position, UnmatchedFill, fill_fee, fill_problem, record_fee
from actors.oms.quarantined import QUARANTINED, Quarantined
from protocol.day_clock import DayClock
from protocol.messages import (
    TERMINAL_STATUSES,
    ExecReport,
    OrderStatus,
    ReplaceOrder,
    RiskVerdict,
    SubmitOrder,
    VenueOrder,
)

S = OrderStatus
_NO_CL: dict[str, Order] = {}  # `_by_cl` of a venue without one: read, never written

_EVIDENCE_EVENTS = {
    S.ACCEPTED: Event.ACCEPTED,
    S.PARTIALLY_FILLED: Event.ACCEPTED,
    S.CANCELLED: Event.CANCELLED,
    S.EXPIRED: Event.EXPIRED,
    S.REJECTED: Event.REJECTED,
}


class OrderBook:
    """All orders by client_order_id and by (venue, ClOrdID), positions, unmatched fills;
    with a `retention`, old terminal orders are in its archive (`actors.oms.retention`)."""

    def __init__(self, retention: Retention | None = None) -> None:
        self.retention = retention
        self.evictions = None if retention is None else Evictions(retention, self._drop)
        self._orders: dict[str, Order] = {}
        self._places: dict[str, int] = {}  # held order -> its place: a page cursor (`after`)
        self._next_place = 0
        self._by_cl: dict[str, dict[str, Order]] = {}  # venue -> ClOrdID: no tuple keys (k50)
        self._positions: dict[tuple[str, str], Position] = {}
        self._unmatched: dict[tuple[str, str], UnmatchedFill] = {}
        self.quarantined = Quarantined()  # executions that could not be applied
        self.day_clock: DayClock | None = None  # marks positions' P&L at day starts (risk's)

    # ------------------------------------------------------------------ queries
    def get(self, client_order_id: str, *, admit: bool = False) -> Order | None:
        """The order (read only: an archived one is not held again unless `admit`)."""
        order = self._orders.get(client_order_id)
        if order is None and self.retention is not None:
            old = self.retention.archive.get(client_order_id)
            order = self._admit(old) if admit else old
        return order

    def held(self, client_order_id: str) -> Order | None:  # in memory only: no archive read
        return self._orders.get(client_order_id)

    def find(self, venue: str, cl_ord_id: str) -> Order | None:
        """The order that uses `cl_ord_id` (live, original or a request id) at `venue`."""
        order = self._by_cl.get(venue, _NO_CL).get(cl_ord_id)
        if order is None and self.retention is not None:
            order = self._admit(self.retention.archive.find(venue, cl_ord_id))
        return order

    def held_by_cl(self, venue: str, cl_ord_id: str) -> Order | None:
        """`find` among the orders held in memory only (no archive read)."""
        return self._by_cl.get(venue, _NO_CL).get(cl_ord_id)

    def held_orders(self) -> list[Order]:
        """Every order held in memory, in one C-level copy: to walk over several loop
        turns (a reconciliation pass) while the book changes."""
        return list(self._orders.values())

    def orders(self, venue: str | None = None, *, open_only: bool = False) -> list[Order]:
        return [
            o
            for o in self._orders.values()
            if (venue is None or o.venue == venue) and not (open_only and o.is_terminal)
        ]

    def orders_from(
        self, place: int, venue: str | None, *, open_only: bool, limit: int
    ) -> tuple[list[Order], int | None]:
        """Up to `limit` orders held at `place` or later, in the book's order, and the place
        to go on from (None: no more). A place is given once and kept while the order is held,
        so a page that follows another misses no order that was there, whichever ended or left
        memory in between (an index into `orders()` would skip one)."""
        page: list[Order] = []
        for coid, o in self._orders.items():
            at = self._places[coid]
            if at < place or (venue is not None and o.venue != venue):
                continue
            if open_only and o.is_terminal:
                continue
            if len(page) == limit:
                return page, at
            page.append(o)
        return page, None

    def positions(self, venue: str | None = None) -> list[Position]:
        return [p for p in self._positions.values() if venue is None or p.venue == venue]

    def position(self, venue: str, symbol: str) -> Position:
        return self._positions.get((venue, symbol)) or Position(venue, symbol)

    def unmatched_fills(self, venue: str | None = None) -> list[UnmatchedFill]:
        return [u for u in self._unmatched.values() if venue is None or u.venue == venue]

    # ------------------------------------------------------------------ commands
    def submit(
        self, msg: SubmitOrder, ts_ns: int, *, known: tuple[Order | None] | None = None
    ) -> Outcome:
        """A new client order (PENDING_RISK); a repeat is a duplicate. `known`: (get(id),)."""
        existing = self.get(msg.client_order_id) if known is None else known[0]
        if existing is not None:
            if existing.same_terms(msg):
                return Outcome("duplicate", existing, reason="client_order_id already known")
            return Outcome.refused(existing, "client_order_id reused with different parameters")
        problem = terms_problem(msg)
        if problem is not None:
            return Outcome.refused(None, problem[0])
        base = base_cl_ord_id(msg.client_order_id)
        if self.find(msg.venue, base) is not None:
            return Outcome.refused(None, f"ClOrdID {base!r} already used at {msg.venue}")
        order = Order.submitted(msg, base, ts_ns)
        return self._commit(order.client_order_id, {"kind": "new", "order": order.to_dict()})

    def adopt(
        self, venue: str, vo: VenueOrder, ts_ns: int, after_cut: AfterCut = adoption.never
    ) -> Outcome:
        """Take over a venue order we have no record of (external), at the venue's state,
        and the unmatched fills of its ClOrdID after that state (`actors.oms.adoption`)."""
        return adoption.adopt(self, venue, vo, ts_ns, after_cut)

    def risk_verdict(self, verdict: RiskVerdict, ts_ns: int) -> Outcome:
        order = self.get(verdict.client_order_id, admit=True)
        if order is not None and order.status != S.PENDING_RISK:
            return Outcome("duplicate", order, reason="verdict already applied")
        event = Event.RISK_APPROVED if verdict.approved else Event.RISK_REJECTED
        return self.record_event(verdict.client_order_id, event, ts_ns, reason=verdict.reason)

    def mark_unknown(self, client_order_id: str, reason: str, ts_ns: int) -> Outcome:
        """No venue answer in time: UNKNOWN until venue evidence resolves it."""
        return self.record_event(client_order_id, Event.TIMEOUT, ts_ns, reason=reason)

    def mark_resubmitted(self, client_order_id: str, ts_ns: int) -> Outcome:
        """The venue said it never saw the order; the actor sends it again (same ClOrdID)."""
        return self.record_event(client_order_id, Event.RESUBMIT, ts_ns)

    def request_cancel(self, client_order_id: str, ts_ns: int) -> Outcome:
        """A client's cancel (`actors.oms.cancel_replace`)."""
        return cancel_replace.request_cancel(self, client_order_id, ts_ns)

    def request_replace(self, msg: ReplaceOrder, ts_ns: int) -> Outcome:
        """A client's replace: new qty and/or price (`actors.oms.cancel_replace`)."""
        return cancel_replace.request_replace(self, msg, ts_ns)

    def apply_exec(
        self, report: ExecReport, ts_ns: int, via: executions.ExecBook | None = None
    ) -> Outcome:
        """Apply one venue execution report (each exec id at most once per order; see
        `actors.oms.executions`, its steps through `via`, else this book). A fill that
        matches no order is recorded as unmatched; a Replaced report of one order by
        another's ClOrdID is refused (`actors.oms.outside_replace`)."""
        order, orig = self.find(report.venue, report.cl_ord_id), report.orig_cl_ord_id
        if orig and (order is None or report.kind == "replaced"):
            named = self.find(report.venue, orig)
            if order is None:
                order = named
            elif named is not None and named is not order:  # no venue does that: escalated
                return id_taken(named, order, report)
        if order is None:
            if report.kind == "fill" and report.last_qty > 0:
                return self.record_unmatched(report, ts_ns)
            return trade_busts.unknown_order(report)  # refused (a bust's escalated)
        if report.exec_id and report.exec_id in order.exec_ids:
            return Outcome("duplicate", order, reason="exec_id already applied")
        return executions.apply_report(via or self, order, report, ts_ns)

    def apply_fill(
        self,
        client_order_id: str,
        exec_id: str,
        qty: Decimal,
        px: Decimal,
        ts_ns: int,
        *,
        venue_cum_qty: Decimal = ZERO,
        venue_order_id: str = "",
        fee: Decimal = ZERO,
        fee_asset: str = "",
    ) -> Outcome:
        """Apply one fill of `qty` at `px` and its `fee` (once per exec id); refuse an overfill."""
        order = self.get(client_order_id, admit=True)
        if order is None:
            return Outcome.refused(None, "unknown order")
        if exec_id and exec_id in order.exec_ids:
            return Outcome("duplicate", order, reason="exec_id already applied")
        if not exec_id:
            return Outcome.refused(order, "fill without exec id")
        problem = fill_problem(qty, px)
        if problem is not None:  # the venue says we traded, but not what: a human decides
            bad = Escalation("bad_fill", f"{exec_id}: {problem}", client_order_id)
            return Outcome.refused(order, "bad_fill", bad)
        cum = venue_cum_qty if venue_cum_qty <= order.cum_qty else ZERO  # (a bust's: less)
        if cum and cum <= (covered := order.reconciled_cum):  # (a scan: a new fill's is not)
            # the venue's own report of a fill that reconciliation (or an adoption) already
            # counted from the venue's state: applying it again would count it twice
            if fee_rec := late_fee.record(order, exec_id, qty, px, fee, fee_asset, ts_ns):
                return self._commit(client_order_id, fee_rec)  # its fee alone, once
            return Outcome("duplicate", order, reason=f"counted by reconciliation (cum {covered})")
        if order.cum_qty + qty > order.qty:
            over = f"{exec_id}: cum {order.cum_qty} + {qty} > qty {order.qty}"
            return Outcome.refused(order, "overfill", Escalation("overfill", over, client_order_id))
        status = order.next_status(order.fill_event(qty))
        if status is None:
            return Outcome.refused(order, f"fill not allowed in {order.status}")
        esc: list[Escalation] = []
        if order.is_cut_short:
            esc.append(Escalation("late_fill", f"{exec_id} on {order.status}", client_order_id))
        rec: dict[str, Any] = {
            "kind": "fill",
            "id": client_order_id,
            "exec_id": exec_id,
            "qty": str(qty),
            "px": str(px),
            "status": str(status),
            "ts_ns": ts_ns,
        }
        if venue_order_id:
            rec["venue_order_id"] = venue_order_id
        if bad_fee := fill_fee(rec, order.symbol, qty, px, fee, fee_asset):  # fill kept
            esc.append(Escalation("bad_fee", f"{exec_id}: {bad_fee}", client_order_id))
        out = self._commit(client_order_id, rec)
        if venue_cum_qty and venue_cum_qty != order.cum_qty:
            kind = "venue_cum_behind" if venue_cum_qty < order.cum_qty else "venue_cum_ahead"
            detail = f"venue cum {venue_cum_qty}, local {order.cum_qty}"
            esc.append(Escalation(kind, detail, client_order_id))
        return Outcome(
            "applied", order, out.records, fill_qty=qty, fill_px=px, escalations=tuple(esc)
        )

    def apply_venue_status(
        self,
        client_order_id: str,
        status: OrderStatus,
        ts_ns: int,
        *,
        reason: str = "",
        venue_order_id: str = "",
        cl_ord_id: str = "",
        qty: Decimal | None = None,
        price: Decimal | None = None,
        exec_id: str = "",
    ) -> Outcome:
        """Venue evidence that the order is in `status` (reconciliation, status reports).
        No fill is inferred here. `cl_ord_id` our pending replace id or a later one we gave
        up on: that replace happened (`qty`/`price` its terms); an id we never used: someone
        else replaced the order (`actors.oms.outside_replace`)."""
        order = self.get(client_order_id, admit=True)
        if order is None:
            return Outcome.refused(None, "unknown order")
        fields: dict[str, Any] = {"exec_id": exec_id, "reason": reason,
                                  "venue_order_id": venue_order_id}  # fmt: skip
        live = status not in TERMINAL_STATUSES
        if live and order.replaced_outside(cl_ord_id, order.cl_ord_id):
            return replaced_outside(self, order, cl_ord_id, qty, price, ts_ns, **fields)
        if live and order.shows_replace(cl_ord_id):
            event = Event.REPLACED
            fields |= order.replace_fields(cl_ord_id, qty, price)
        elif status == order.status:
            return Outcome("duplicate", order, reason=f"already {status}")
        elif status not in _EVIDENCE_EVENTS:
            return Outcome.refused(order, f"{status} is not venue evidence")
        else:
            event = _EVIDENCE_EVENTS[status]
        return self.record_event(client_order_id, event, ts_ns, **fields)

    def record_event(
        self, client_order_id: str, event: Event, ts_ns: int, **fields: Any
    ) -> Outcome:
        """Apply `event` to the order if its state allows it (an ``event`` record with the
        non-empty `fields`); refused otherwise."""
        order = self.get(client_order_id, admit=True)
        if order is None:
            return Outcome.refused(None, "unknown order")
        status = order.next_status(event, fields.get("qty"))  # a replace's new qty
        if status is None:
            return Outcome.refused(order, f"{event} not allowed in {order.status}")
        rec = {"kind": "event", "id": client_order_id, "event": str(event),
               "status": str(status), "ts_ns": ts_ns}  # fmt: skip
        rec.update((k, v) for k, v in fields.items() if v not in ("", None))
        return self._commit(client_order_id, rec)

    def set_opening_position(
        self, venue: str, symbol: str, qty: Decimal, avg_px: Decimal, ts_ns: int
    ) -> Outcome:
        """Take a venue's position as ours (cold start: our book starts empty, the venue's
        positions do not); realized PnL starts at zero."""
        record = {"kind": "opening_position", "venue": venue, "symbol": symbol,
                  "qty": str(qty), "avg_px": str(avg_px), "ts_ns": ts_ns}  # fmt: skip
        self.apply_record(record)
        return Outcome("applied", None, (record,))

    # ------------------------------------------------------------------ internals
    def record_unmatched(self, report: ExecReport, ts_ns: int) -> Outcome:
        """Record the fill `report` as matching no order (escalated), once per exec id."""
        if (report.venue, report.exec_id) in self._unmatched:
            return Outcome("duplicate", None, reason="unmatched fill already recorded")
        out = executions.unmatched_fill(report, ts_ns)
        self.apply_record(out.records[0])
        return out

    def _commit(self, client_order_id: str, record: dict[str, Any]) -> Outcome:
        self.apply_record(record)
        return Outcome("applied", self._orders[client_order_id], (record,))

    # ------------------------------------------------------------------ replay
    def apply_record(self, record: Mapping[str, Any]) -> None:
        """Apply one journal record; the live path and replay both come through here."""
        kind = record["kind"]
        if kind == "new":
            self._apply_new(Order.from_dict(record["order"]), record)
        elif kind == "unmatched_fill":
            fill = UnmatchedFill.from_record(record)
            self._unmatched[(fill.venue, fill.exec_id)] = fill
        elif kind == QUARANTINED:
            self.quarantined.add(record)
        elif kind == "opening_position":
            pos = Position.from_dict(record)
            pos.opened(self.day_clock)
            self._positions[(pos.venue, pos.symbol)] = pos
        elif kind in executions.ORDER_RECORDS:  # event, fill, fill_fee, trade_bust
            order = self.get(record["id"], admit=True)
            if order is None:
                raise ValueError(f"journal {kind} record for unknown order {record['id']!r}")
            # every new value is computed before anything changes: a value that cannot be
            # computed leaves the order and its position as they were (and the journal too)
            moved = None
            if kind != "event":
                held = self.position(order.venue, order.symbol)  # not created if absent
                moved = held.after_record(order.side, order.symbol, record)
            order.apply(record)
            if moved is not None:
                pos = self._pos(order)
                pos.take(moved, record.get("ts_ns") or 0, self.day_clock)
                pos.add_fee(*record_fee(record))
                if self._unmatched and kind == "fill":  # those it accounts for (`adoption.settle`)
                    adoption.settle(order, self._unmatched, record)
            cl = record.get("cl_ord_id")
            if cl and cl in order.cl_ord_ids:  # a request or replace id: index it
                self._by_cl.setdefault(order.venue, {})[cl] = order
            self._retained(order)
        else:
            raise ValueError(f"unknown journal record kind {kind!r}")

    def _apply_new(self, order: Order, record: Mapping[str, Any]) -> None:
        self._index(order)
        if order.cum_qty:
            pos, ts_ns = self._pos(order), order.ts_updated_ns  # (an adoption's: its fills')
            pos.apply_fill(order.side, order.cum_qty, order.avg_px, ts_ns, self.day_clock)
        if order.external and self._unmatched:  # those the adopted venue state holds
            adoption.settle(order, self._unmatched, record)  # (its ``after_state``)
        self._retained(order)

    def _index(self, order: Order) -> None:
        if order.client_order_id not in self._orders:
            self._places[order.client_order_id] = self._next_place
            self._next_place += 1
        self._orders[order.client_order_id] = order
        by_cl = self._by_cl.setdefault(order.venue, {})
        for cl in order.cl_ord_ids:
            by_cl[cl] = order

    def _admit(self, order: Order | None) -> Order | None:  # read back from the archive
        if order is not None:
            self._index(order)
            self._retained(order, revived=True)
        return order

    def _retained(self, order: Order, *, revived: bool = False) -> None:  # the oldest go
        if self.evictions is not None:  # (out of memory once archived: after the commit)
            self.evictions.retained(order, self._orders, revived=revived)

    def _drop(self, old: Order) -> None:  # durable in the archive: out of memory
        if self._orders.get(coid := old.client_order_id) is old:
            del self._orders[coid], self._places[coid]
            for cl in old.cl_ord_ids:
                self._by_cl.get(old.venue, _NO_CL).pop(cl, None)

    def _pos(self, order: Order) -> Position:
        key = (order.venue, order.symbol)
        if key not in self._positions:
            self._positions[key] = Position(order.venue, order.symbol)
        return self._positions[key]

    # ------------------------------------------------------------------ snapshots
    def to_dict(self) -> dict[str, Any]:
        """The whole book as msgpack-friendly data (for `Journal.write_snapshot`)."""
        return {
            "format": 1,
            "orders": [o.to_dict() for o in self._orders.values()],
            "positions": [p.to_dict() for p in self._positions.values()],
            "unmatched": [u.to_record() for u in self._unmatched.values()],
            "quarantined": self.quarantined.records(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], retention: Retention | None = None) -> OrderBook:
        book = cls(retention)
        for d in data["orders"]:
            order = Order.from_dict(d)
            book._index(order)
            book._retained(order)
        for p in data["positions"]:
            pos = Position.from_dict(p)
            book._positions[(pos.venue, pos.symbol)] = pos
        for u in data["unmatched"]:
            fill = UnmatchedFill.from_record(u)
            book._unmatched[(fill.venue, fill.exec_id)] = fill
        book.quarantined = Quarantined(data.get("quarantined", ()))  # absent before
        return book
