"""Applying a venue execution report to the order it names (pure logic, no I/O).

`OrderBook.apply_exec` finds the order (by ClOrdID, else OrigClOrdID), records a fill that
matches none as unmatched, drops an exec id already applied, and hands the rest to
`apply_report` here, which decides through the book's own commands (`ExecBook`): a fill,
a status report (the fill quantity we missed, then the status), an event (accepted,
rejected, cancelled, replaced, cancel_rejected, expired) checked against what we asked, or
the connector's word that it did not send a resend (`actors.oms.resubmit_unsent`).

Reports can come late, overtaken or not at all (a venue crash): a report under a replace
id of ours shows that replace took effect, an order's final report shows fills its
CumQty says we never got reports of. Those steps are applied first, and the report's
outcome carries all their records (`_combined`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, Protocol

from actors.oms.lifecycle import Event
from actors.oms.orders import Escalation, Order, Outcome, implied_fill, missed_fill_exec_id
from actors.oms.positions import UnmatchedFill
from actors.oms.resubmit_unsent import take_back
from protocol.messages import TERMINAL_STATUSES, ExecReport, OrderStatus

S = OrderStatus
_EXEC_EVENTS = {
    "accepted": Event.ACCEPTED,
    "rejected": Event.REJECTED,
    "cancelled": Event.CANCELLED,
    "replaced": Event.REPLACED,
    "cancel_rejected": Event.CANCEL_REJECTED,
    "expired": Event.EXPIRED,
}


class ExecBook(Protocol):
    """The book commands an execution report is applied through."""

    def record_event(
        self, client_order_id: str, event: Event, ts_ns: int, **fields: Any
    ) -> Outcome: ...

    def apply_fill(
        self,
        client_order_id: str,
        exec_id: str,
        qty: Decimal,
        px: Decimal,
        ts_ns: int,
        *,
        venue_cum_qty: Decimal = ...,
        venue_order_id: str = ...,
    ) -> Outcome: ...

    def apply_venue_status(
        self,
        client_order_id: str,
        status: OrderStatus,
        ts_ns: int,
        *,
        reason: str = ...,
        venue_order_id: str = ...,
        cl_ord_id: str = ...,
        qty: Decimal | None = ...,
        price: Decimal | None = ...,
        exec_id: str = ...,
    ) -> Outcome: ...


def apply_report(book: ExecBook, order: Order, report: ExecReport, ts_ns: int) -> Outcome:
    """Apply `report` (an exec id not applied yet) to `order`, the order it names."""
    if report.kind == "fill":
        shown = _replace_shown(book, order, report, ts_ns)
        fill = book.apply_fill(
            order.client_order_id,
            report.exec_id,
            report.last_qty,
            report.last_px,
            ts_ns,
            venue_cum_qty=report.cum_qty,
            venue_order_id=report.venue_order_id,
        )
        return fill if shown is None else _combined(order, (shown, fill), fill)
    if report.kind == "status":
        return _status_report(book, order, report, ts_ns)
    if report.kind == "unsent":
        return take_back(book, order, ts_ns, report.exec_id)
    event = _EXEC_EVENTS[report.kind]
    if event in (Event.CANCELLED, Event.EXPIRED):
        # the order's last report: what it says happened before it counts first - a
        # replace of ours it shows the terms of, fills its CumQty says we never got
        # reports of (lost with a venue crash, say); no fill can follow it
        steps = [o for o in (_replace_evidenced(book, order, report, ts_ns),) if o]
        if report.cum_qty > order.cum_qty:
            steps.append(_catch_up(book, order, report, ts_ns))
        main = _exec_event(book, order, report, event, ts_ns)
        return _combined(order, (*steps, main), main) if steps else main
    main = _exec_event(book, order, report, event, ts_ns)
    if event == Event.REPLACED and main.applied and report.cum_qty > order.cum_qty:
        # fills before the replace whose reports we never got (later fills come under
        # the new id and would have applied the replace first, see _replace_shown)
        return _combined(order, (main, _catch_up(book, order, report, ts_ns)), main)
    return main


def _exec_event(
    book: ExecBook, order: Order, report: ExecReport, event: Event, ts_ns: int
) -> Outcome:
    """A venue report that is not a fill: check it answers what we asked, apply it."""
    if event == Event.REJECTED and "duplicate" in report.text.lower():
        event = Event.DUPLICATE_REJECTED
    pending = report.cl_ord_id == order.pending_cl_ord_id
    if event == Event.REPLACED and report.cl_ord_id == order.cl_ord_id and not pending:
        return Outcome(
            "duplicate", order, reason="already replaced (a report under its id came first)"
        )
    if event == Event.REPLACED:  # our pending replace, or one we had given up on
        expected = order.shows_replace(report.cl_ord_id)
    else:
        expected = event != Event.CANCEL_REJECTED or pending
    if not expected:
        return Outcome.refused(
            order,
            f"{event} for {report.cl_ord_id!r}, which is not the "
            f"pending request {order.pending_cl_ord_id!r}",
        )
    extra: dict[str, Any] = {}
    if event == Event.REPLACED:
        extra = order.replace_fields(report.cl_ord_id, report.order_qty, report.price)
    return book.record_event(
        order.client_order_id,
        event,
        ts_ns,
        exec_id=report.exec_id,
        reason=report.text,
        venue_order_id=report.venue_order_id,
        **extra,
    )


def _replace_shown(book: ExecBook, order: Order, report: ExecReport, ts_ns: int) -> Outcome | None:
    """A fill under a replace id of ours the order does not carry yet: the replace took
    effect (its own report is late, overtaken or lost); take its terms before the fill,
    which may need them. None if the report is not such evidence."""
    if not order.shows_replace(report.cl_ord_id):
        return None
    return book.record_event(
        order.client_order_id,
        Event.REPLACED,
        ts_ns,
        venue_order_id=report.venue_order_id,
        **order.replace_fields(report.cl_ord_id, report.order_qty, report.price),
    )


def _replace_evidenced(
    book: ExecBook, order: Order, report: ExecReport, ts_ns: int
) -> Outcome | None:
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
    return book.record_event(
        order.client_order_id,
        Event.REPLACED,
        ts_ns,
        venue_order_id=report.venue_order_id,
        **order.replace_fields(replace, qty, price),
    )


def _catch_up(book: ExecBook, order: Order, report: ExecReport, ts_ns: int) -> Outcome:
    """Apply the fills the venue's cum_qty (above ours) says we missed, as one fill at
    the price that makes our avg_px the venue's (exec id `recon:<ClOrdID>:<cum>`, so
    their own reports, should they still come, are recognised as counted)."""
    qty, px = implied_fill(order, report.cum_qty, report.avg_px)
    return book.apply_fill(
        order.client_order_id,
        missed_fill_exec_id(report.cl_ord_id, report.cum_qty),
        qty,
        px,
        ts_ns,
        venue_order_id=report.venue_order_id,
    )


def _status_report(book: ExecBook, order: Order, report: ExecReport, ts_ns: int) -> Outcome:
    """A venue status report: apply the fill quantity we missed, then the status. The
    outcome carries that fill (the order's event, positions as of a cut count it)."""
    status = report.ord_status
    records: list[dict[str, Any]] = []
    esc: list[Escalation] = []
    fill = Outcome("duplicate")
    if report.cum_qty > order.cum_qty:
        fill = _catch_up(book, order, report, ts_ns)
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
        out = book.apply_venue_status(
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
    return Outcome(kind, order, tuple(records), fill_qty=fill.fill_qty, fill_px=fill.fill_px,
                   escalations=tuple(esc))  # fmt: skip


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


def unmatched_fill(report: ExecReport, ts_ns: int) -> Outcome:
    """A fill that matches no order (not recorded yet): its record, escalated."""
    fill = UnmatchedFill.from_report(report, ts_ns)
    detail = f"{report.exec_id}: {report.last_qty} {report.symbol} @ {report.last_px}"
    return Outcome(
        "applied",
        None,
        (fill.to_record(),),
        fill_qty=fill.qty,
        fill_px=fill.px,
        escalations=(Escalation("unmatched_fill", detail),),
    )


def says_finished(report: ExecReport, order: Order) -> bool:
    """A cancel/replace reject whose OrdStatus says the order is over while ours is not."""
    said = report.ord_status if report.kind == "cancel_rejected" else None
    return said in TERMINAL_STATUSES and not order.is_terminal
