"""The OMS order book: every order by client order id and by (venue, ClOrdID), positions
and unmatched fills (pure logic, no I/O).

Event sourced: every mutation is a journal record, and `OrderBook.apply_record` is the only
code that changes state, on the live path and on replay alike. A command method decides
(validates against the transition table in `actors.oms.orders`), builds the record(s), applies
them and returns an `Outcome` whose `records` the actor journals before it acks or sends
anything. The record kinds and the ClOrdID scheme are described in `actors.oms.orders`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from actors.oms.orders import (
    _DONE,
    _PENDING,
    ZERO,
    Escalation,
    Event,
    Order,
    Outcome,
    Position,
    S,
    UnmatchedFill,
    _dec,
    _str,
    adopted_client_order_id,
    base_cl_ord_id,
    cancel_msg,
    fill_event,
    implied_fill,
    live_status,
    missed_fill_exec_id,
    next_status,
    place_order_msg,
    replace_msg,
    request_cl_ord_id,
)
from protocol.messages import (
    TERMINAL_STATUSES,
    CancelOnVenue,
    ExecReport,
    OrderStatus,
    OrdType,
    PlaceOrder,
    ReplaceOnVenue,
    ReplaceOrder,
    RiskVerdict,
    SubmitOrder,
    TimeInForce,
    VenueOrder,
)


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


def _replace_fields(
    order: Order, cl_ord_id: str, qty: Decimal | None, price: Decimal | None
) -> dict[str, Any]:
    """The record fields of a replace that took effect: the venue's terms where it gives
    them, else those we asked for (our pending request), else the order's."""
    asked = order.status == S.PENDING_REPLACE and cl_ord_id == order.pending_cl_ord_id
    qty = qty or (order.pending_qty if asked else None) or order.qty
    price = price if price is not None else (order.pending_price if asked else order.price)
    return {"cl_ord_id": cl_ord_id, "qty": str(qty), "price": _str(price)}


def _combined(order: Order, parts: tuple[Outcome, ...], main: Outcome) -> Outcome:
    """One outcome for a report that took several steps (`parts`, in order): all their
    records and escalations, the fill of the step that applied one, and `main`'s kind and
    reason when no step recorded anything."""
    records = tuple(r for o in parts for r in o.records)
    fill = next((o for o in parts if o.fill_qty), main)
    return Outcome(
        "applied" if records else main.kind,
        order,
        records,
        main.reason,
        fill_qty=fill.fill_qty,
        fill_px=fill.fill_px,
        escalations=tuple(e for o in parts for e in o.escalations),
    )


def _refused(order: Order | None, reason: str, *esc: Escalation) -> Outcome:
    return Outcome("refused", order, reason=reason, escalations=esc)


def _reconciled_cum(order: Order) -> Decimal:
    """The venue cum qty up to which fills inferred from venue state (synthetic exec ids
    `recon:<ClOrdID>:<venue cum>`, also set by an adoption) already count this order's
    fills."""
    cums = (Decimal(e.rsplit(":", 1)[1]) for e in order.exec_ids if e.startswith("recon:"))
    return max(cums, default=ZERO)


_EXEC_EVENTS = {
    "accepted": Event.ACCEPTED,
    "rejected": Event.REJECTED,
    "cancelled": Event.CANCELLED,
    "replaced": Event.REPLACED,
    "cancel_rejected": Event.CANCEL_REJECTED,
    "expired": Event.EXPIRED,
}
_EVIDENCE_EVENTS = {
    S.ACCEPTED: Event.ACCEPTED,
    S.PARTIALLY_FILLED: Event.ACCEPTED,
    S.CANCELLED: Event.CANCELLED,
    S.EXPIRED: Event.EXPIRED,
    S.REJECTED: Event.REJECTED,
}


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
        return [
            o
            for o in self._orders.values()
            if (venue is None or o.venue == venue) and not (open_only and o.is_terminal)
        ]

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
            same = (
                existing.venue,
                existing.symbol,
                existing.side,
                existing.qty,
                existing.order_type,
                existing.price,
                existing.tif,
            ) == (msg.venue, msg.symbol, msg.side, msg.qty, msg.order_type, msg.price, msg.tif)
            if same:
                return Outcome("duplicate", existing, reason="client_order_id already known")
            return _refused(existing, "client_order_id reused with different parameters")
        problem = terms_problem(msg)
        if problem is not None:
            return _refused(None, problem[0])
        base = base_cl_ord_id(msg.client_order_id)
        if (msg.venue, base) in self._by_cl:
            return _refused(None, f"ClOrdID {base!r} already used at {msg.venue}")
        order = Order(
            msg.client_order_id,
            msg.venue,
            msg.symbol,
            msg.side,
            msg.qty,
            msg.order_type,
            msg.price,
            msg.tif,
            S.PENDING_RISK,
            base,
            [base],
            ts_created_ns=ts_ns,
            ts_updated_ns=ts_ns,
        )
        return self._commit(order.client_order_id, {"kind": "new", "order": order.to_dict()})

    def adopt(self, venue: str, vo: VenueOrder, ts_ns: int) -> Outcome:
        """Take over a venue order we have no record of (external), at the venue's state."""
        if (venue, vo.cl_ord_id) in self._by_cl:
            return Outcome("duplicate", self._by_cl[(venue, vo.cl_ord_id)], reason="known")
        status = (
            vo.status if vo.status in TERMINAL_STATUSES else live_status(vo.cum_qty, vo.order_qty)
        )
        coid = adopted_client_order_id(venue, vo.cl_ord_id)
        order = Order(
            coid,
            venue,
            vo.symbol,
            vo.side,
            vo.order_qty,
            vo.order_type,
            vo.price,
            TimeInForce.GTC,
            status,
            vo.cl_ord_id,
            [vo.cl_ord_id],
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
            order.pending_qty,
            order.pending_price,
        ):
            return Outcome("duplicate", order, reason="same replace already pending")
        if (qty, price) == (order.qty, order.price):
            if order.cl_ord_id != order.cl_ord_ids[0]:
                # idempotent: a retried replace whose first attempt took effect (ack lost)
                return Outcome("duplicate", order, reason="already replaced to these terms")
            return _refused(order, "replace changes nothing")
        if qty <= order.cum_qty:
            return _refused(order, f"new qty {qty} must exceed cum_qty {order.cum_qty}")
        if (
            order.order_type == OrdType.MARKET
            and msg.price is not None
            or (price is not None and price <= 0)
        ):
            return _refused(order, "invalid price for the order type")
        cl = request_cl_ord_id(order.cl_ord_ids[0], "r", order.request_seq + 1)
        return self._event(
            msg.client_order_id,
            Event.REPLACE_REQUESTED,
            ts_ns,
            cl_ord_id=cl,
            qty=str(qty),
            price=_str(price),
        )

    def apply_exec(self, report: ExecReport, ts_ns: int) -> Outcome:
        """Apply one venue execution report (each exec id at most once per order)."""
        order = self.find(report.venue, report.cl_ord_id) or (
            self.find(report.venue, report.orig_cl_ord_id) if report.orig_cl_ord_id else None
        )
        if order is None:
            if report.kind == "fill" and report.last_qty > 0:
                return self._unmatched_fill(report, ts_ns)
            return _refused(None, f"unknown ClOrdID {report.cl_ord_id!r}")
        if report.exec_id and report.exec_id in order.exec_ids:
            return Outcome("duplicate", order, reason="exec_id already applied")
        coid = order.client_order_id
        if report.kind == "fill":
            shown = self._replace_shown(order, report, ts_ns)
            fill = self.apply_fill(
                coid,
                report.exec_id,
                report.last_qty,
                report.last_px,
                ts_ns,
                venue_cum_qty=report.cum_qty,
                venue_order_id=report.venue_order_id,
            )
            return fill if shown is None else _combined(order, (shown, fill), fill)
        if report.kind == "status":
            return self._status_report(order, report, ts_ns)
        event = _EXEC_EVENTS[report.kind]
        if event in (Event.CANCELLED, Event.EXPIRED):
            # the order's last report: what it says happened before it counts first - a
            # replace of ours it shows the terms of, fills its CumQty says we never got
            # reports of (lost with a venue crash, say); no fill can follow it
            steps = [o for o in (self._replace_evidenced(order, report, ts_ns),) if o]
            if report.cum_qty > order.cum_qty:
                steps.append(self._catch_up(order, report, ts_ns))
            main = self._exec_event(order, report, event, ts_ns)
            return _combined(order, (*steps, main), main) if steps else main
        main = self._exec_event(order, report, event, ts_ns)
        if event == Event.REPLACED and main.applied and report.cum_qty > order.cum_qty:
            # fills before the replace whose reports we never got (later fills come under
            # the new id and would have applied the replace first, see _replace_shown)
            return _combined(order, (main, self._catch_up(order, report, ts_ns)), main)
        return main

    def _exec_event(self, order: Order, report: ExecReport, event: Event, ts_ns: int) -> Outcome:
        """A venue report that is not a fill: check it answers what we asked, apply it."""
        coid = order.client_order_id
        if event == Event.REJECTED and "duplicate" in report.text.lower():
            event = Event.DUPLICATE_REJECTED
        pending = report.cl_ord_id == order.pending_cl_ord_id
        if event == Event.REPLACED and report.cl_ord_id == order.cl_ord_id and not pending:
            return Outcome(
                "duplicate", order, reason="already replaced (a report under its id came first)"
            )
        if event == Event.REPLACED:  # our pending replace, or one we had given up on
            expected = (pending and order.status == S.PENDING_REPLACE) or (
                order.status != S.PENDING_REPLACE and order.is_later_replace(report.cl_ord_id)
            )
        else:
            expected = event != Event.CANCEL_REJECTED or pending
        if not expected:
            return _refused(
                order,
                f"{event} for {report.cl_ord_id!r}, which is not the "
                f"pending request {order.pending_cl_ord_id!r}",
            )
        extra: dict[str, Any] = {}
        if event == Event.REPLACED:
            extra = _replace_fields(order, report.cl_ord_id, report.order_qty, report.price)
        return self._event(
            coid,
            event,
            ts_ns,
            exec_id=report.exec_id,
            reason=report.text,
            venue_order_id=report.venue_order_id,
            **extra,
        )

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
    ) -> Outcome:
        """Apply one fill of `qty` at `px` (once per exec id); refuse an overfill."""
        order = self._orders.get(client_order_id)
        if order is None:
            return _refused(None, "unknown order")
        if exec_id and exec_id in order.exec_ids:
            return Outcome("duplicate", order, reason="exec_id already applied")
        if qty <= 0 or not exec_id:
            return _refused(order, f"fill without exec id or with qty {qty} <= 0")
        covered = _reconciled_cum(order)
        if venue_cum_qty and venue_cum_qty <= covered:
            # the venue's own report of a fill that reconciliation (or an adoption) already
            # counted from the venue's state: applying it again would count it twice
            return Outcome("duplicate", order, reason=f"counted by reconciliation (cum {covered})")
        if order.cum_qty + qty > order.qty:
            detail = f"{exec_id}: cum {order.cum_qty} + {qty} > qty {order.qty}"
            return _refused(order, "overfill", Escalation("overfill", detail, client_order_id))
        status = next_status(order, fill_event(order, qty))
        if status is None:
            return _refused(order, f"fill not allowed in {order.status}")
        esc: list[Escalation] = []
        if order.status in _DONE:
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
        out = self._commit(client_order_id, rec)
        if venue_cum_qty and venue_cum_qty != order.cum_qty:
            kind = "venue_cum_behind" if venue_cum_qty < order.cum_qty else "venue_cum_ahead"
            esc.append(
                Escalation(
                    kind, f"venue cum {venue_cum_qty}, local {order.cum_qty}", client_order_id
                )
            )
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
        Fills are not inferred here: apply missed fills first. `cl_ord_id` equal to the
        pending replace id, or to a later replace id of ours we gave up on, means that replace
        happened (then `qty`/`price` are the new terms)."""
        order = self._orders.get(client_order_id)
        if order is None:
            return _refused(None, "unknown order")
        extra: dict[str, Any] = {}
        asked = order.status == S.PENDING_REPLACE and cl_ord_id == order.pending_cl_ord_id
        late = order.status != S.PENDING_REPLACE and order.is_later_replace(cl_ord_id)
        if (asked or late) and status not in TERMINAL_STATUSES:
            event = Event.REPLACED
            extra = _replace_fields(order, cl_ord_id, qty, price)
        elif status == order.status:
            return Outcome("duplicate", order, reason=f"already {status}")
        elif status not in _EVIDENCE_EVENTS:
            return _refused(order, f"{status} is not venue evidence")
        else:
            event = _EVIDENCE_EVENTS[status]
        return self._event(
            client_order_id,
            event,
            ts_ns,
            exec_id=exec_id,
            reason=reason,
            venue_order_id=venue_order_id,
            **extra,
        )

    # ------------------------------------------------------------------ internals
    def _replace_shown(self, order: Order, report: ExecReport, ts_ns: int) -> Outcome | None:
        """A fill under a replace id of ours the order does not carry yet: the replace took
        effect (its own report is late, overtaken or lost); take its terms before the fill,
        which may need them. None if the report is not such evidence."""
        cl = report.cl_ord_id
        asked = order.status == S.PENDING_REPLACE and cl == order.pending_cl_ord_id
        late = order.status != S.PENDING_REPLACE and order.is_later_replace(cl)
        if not (asked or late):
            return None
        return self._event(
            order.client_order_id,
            Event.REPLACED,
            ts_ns,
            venue_order_id=report.venue_order_id,
            **_replace_fields(order, cl, report.order_qty, report.price),
        )

    def _replace_evidenced(self, order: Order, report: ExecReport, ts_ns: int) -> Outcome | None:
        """The order's final report shows terms other than ours and a replace of ours that
        may have taken effect explains them: that replace happened (its report was lost or
        overtaken). None if there is no such evidence (a difference with no replace of
        ours to explain it is not adopted; reconciliation escalates it)."""
        qty, price = report.order_qty, report.price
        replace = order.replace_in_doubt()
        if not replace or qty is None:
            return None
        if qty == order.qty and (price is None or price == order.price):
            return None
        return self._event(
            order.client_order_id,
            Event.REPLACED,
            ts_ns,
            venue_order_id=report.venue_order_id,
            **_replace_fields(order, replace, qty, price),
        )

    def _catch_up(self, order: Order, report: ExecReport, ts_ns: int) -> Outcome:
        """Apply the fills the venue's cum_qty (above ours) says we missed, as one fill at
        the price that makes our avg_px the venue's (exec id `recon:<ClOrdID>:<cum>`, so
        their own reports, should they still come, are recognised as counted)."""
        qty, px = implied_fill(order, report.cum_qty, report.avg_px)
        return self.apply_fill(
            order.client_order_id,
            missed_fill_exec_id(report.cl_ord_id, report.cum_qty),
            qty,
            px,
            ts_ns,
            venue_order_id=report.venue_order_id,
        )

    def _status_report(self, order: Order, report: ExecReport, ts_ns: int) -> Outcome:
        """A venue status report: apply the fill quantity we missed, then the status."""
        status = report.ord_status
        records: list[dict[str, Any]] = []
        esc: list[Escalation] = []
        if report.cum_qty > order.cum_qty:
            fill = self._catch_up(order, report, ts_ns)
            records += fill.records
            esc += fill.escalations
        elif report.cum_qty < order.cum_qty:
            esc.append(
                Escalation(
                    "venue_cum_behind",
                    f"venue cum {report.cum_qty}, local {order.cum_qty}",
                    order.client_order_id,
                )
            )
        if status is not None and status != S.FILLED and not order.is_terminal:
            out = self.apply_venue_status(
                order.client_order_id,
                status,
                ts_ns,
                reason=report.text,
                cl_ord_id=report.cl_ord_id,
                venue_order_id=report.venue_order_id,
                qty=report.order_qty,
                price=report.price,
            )
            records += out.records
        kind: Literal["applied", "duplicate"] = "applied" if records else "duplicate"
        return Outcome(kind, order, tuple(records), escalations=tuple(esc))

    def _unmatched_fill(self, report: ExecReport, ts_ns: int) -> Outcome:
        key = (report.venue, report.exec_id)
        if key in self._unmatched:
            return Outcome("duplicate", None, reason="unmatched fill already recorded")
        fill = UnmatchedFill(
            report.venue,
            report.exec_id,
            report.cl_ord_id,
            report.symbol,
            report.side,
            report.last_qty,
            report.last_px,
            ts_ns,
        )
        record = fill.to_record()
        self.apply_record(record)
        detail = f"{report.exec_id}: {report.last_qty} {report.symbol} @ {report.last_px}"
        return Outcome(
            "applied",
            None,
            (record,),
            fill_qty=fill.qty,
            fill_px=fill.px,
            escalations=(Escalation("unmatched_fill", detail),),
        )

    def _event(self, client_order_id: str, event: Event, ts_ns: int, **fields: Any) -> Outcome:
        order = self._orders.get(client_order_id)
        if order is None:
            return _refused(None, "unknown order")
        status = next_status(order, event)
        if status is None:
            return _refused(order, f"{event} not allowed in {order.status}")
        rec = {
            "kind": "event",
            "id": client_order_id,
            "event": str(event),
            "status": str(status),
            "ts_ns": ts_ns,
        }
        rec.update((k, v) for k, v in fields.items() if v not in ("", None))
        return self._commit(client_order_id, rec)

    def _commit(self, client_order_id: str, record: dict[str, Any]) -> Outcome:
        self.apply_record(record)
        return Outcome("applied", self._orders[client_order_id], (record,))

    # ------------------------------------------------------------------ replay
    def set_opening_position(
        self, venue: str, symbol: str, qty: Decimal, avg_px: Decimal, ts_ns: int
    ) -> dict[str, Any]:
        """Take a venue's position as ours (cold start: our book starts empty, the venue's
        positions do not). Returns the record to journal; realized PnL starts at zero."""
        record = {
            "kind": "opening_position",
            "venue": venue,
            "symbol": symbol,
            "qty": str(qty),
            "avg_px": str(avg_px),
            "ts_ns": ts_ns,
        }
        self.apply_record(record)
        return record

    def apply_record(self, record: Mapping[str, Any]) -> None:
        """Apply one journal record; the live path and replay both come through here."""
        kind = record["kind"]
        if kind == "new":
            self._apply_new(Order.from_dict(record["order"]))
        elif kind == "unmatched_fill":
            fill = UnmatchedFill.from_record(record)
            self._unmatched[(fill.venue, fill.exec_id)] = fill
        elif kind == "opening_position":
            pos = Position(
                record["venue"], record["symbol"], Decimal(record["qty"]), Decimal(record["avg_px"])
            )
            self._positions[(pos.venue, pos.symbol)] = pos
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
        elif "qty" in r:  # the order ended on terms of a replace whose report we missed
            order.qty, order.price = Decimal(r["qty"]), _dec(r.get("price"))

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
        return {
            "format": 1,
            "orders": [o.to_dict() for o in self._orders.values()],
            "positions": [p.to_dict() for p in self._positions.values()],
            "unmatched": [u.to_record() for u in self._unmatched.values()],
        }

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
                p["venue"],
                p["symbol"],
                Decimal(p["qty"]),
                Decimal(p["avg_px"]),
                Decimal(p["realized_pnl"]),
            )
        for u in data["unmatched"]:
            fill = UnmatchedFill.from_record(u)
            book._unmatched[(fill.venue, fill.exec_id)] = fill
        return book
