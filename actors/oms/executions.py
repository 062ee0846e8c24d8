"""Applying a venue execution report to the order it names (pure logic, no I/O).

`OrderBook.apply_exec` finds the order (by ClOrdID, else OrigClOrdID), records a fill that
matches none as unmatched, drops an exec id already applied, and hands the rest to
`apply_report` here, which decides through the book's own commands (`ExecBook`): a fill,
a status report (the fill quantity we missed, then the status), an event (accepted,
rejected, cancelled, replaced, cancel_rejected, expired) checked against what we asked, or
the connector's word that it did not send a resend (`actors.oms.resubmit_unsent`).

A Replaced report of the order's live id (OrigClOrdID) by a ClOrdID we never used is a
replace nobody of ours asked for: the order follows the venue, escalated
(`actors.oms.outside_replace`); refusing it would leave the order's fills unmatched and the
order adopted a second time. Fills under the new id that came before the report (recorded
unmatched) are then placed on the order, as an adoption places them (`_outside_fills`). A
fill under a ClOrdID we never used naming the order as OrigClOrdID is the same evidence, its
Replaced report lost: the replace is followed on the fill's terms before the fill applies
(`_outside_fill`); one that cannot be followed is recorded unmatched, never booked on the
order's old terms.

Reports can come late, overtaken or not at all (a venue crash): a report under a replace
id of ours shows that replace took effect, an order's final report shows fills its
CumQty says we never got reports of. Those steps are applied first, and the report's
outcome carries all their records (`_combined`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal, Protocol

from actors.oms import adoption, trade_busts
from actors.oms.fill_terms import missed_fill_exec_id
from actors.oms.lifecycle import CUT_SHORT, Event
from actors.oms.orders import Escalation, Order, Outcome, implied_fill
from actors.oms.outside_replace import FILL_OF_ANOTHER, REPLACED_EXTERNALLY, fill_of_another, follow
from actors.oms.positions import ORDER_RECORDS, UnmatchedFill, fill_problem
from actors.oms.resubmit_unsent import take_back
from protocol.messages import TERMINAL_STATUSES, ExecReport, OrderStatus

S = OrderStatus
__all__ = ["ORDER_RECORDS", "ExecBook", "apply_report", "says_finished", "unmatched_fill"]
_REPLACES = (Event.REPLACED, Event.REPLACED_EXTERNALLY)
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
        fee: Decimal = ...,
        fee_asset: str = ...,
    ) -> Outcome: ...

    def unmatched_fills(self, venue: str | None = ...) -> list[UnmatchedFill]: ...

    def record_unmatched(self, report: ExecReport, ts_ns: int) -> Outcome: ...

    def apply_record(self, record: Mapping[str, Any]) -> None: ...

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
    if report.kind in trade_busts.KINDS:  # a bust or correction of a fill booked before
        return trade_busts.apply(book, order, report, ts_ns)
    if report.kind == "fill":
        if report.cl_ord_id and report.cl_ord_id not in order.cl_ord_ids:  # by OrigClOrdID
            return _outside_fill(book, order, report, ts_ns)
        if why := fill_of_another(order, report):  # an outside id recycled
            return _unmatched(
                book, report, ts_ns, Escalation(FILL_OF_ANOTHER, why, order.client_order_id)
            )
        shown = _replace_shown(book, order, report, ts_ns)
        fill = book.apply_fill(
            order.client_order_id,
            report.exec_id,
            report.last_qty,
            report.last_px,
            ts_ns,
            venue_cum_qty=report.cum_qty,
            venue_order_id=report.venue_order_id,
            fee=report.fee,
            fee_asset=report.fee_asset,
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
    if event == Event.REPLACED and not order.shows_replace(report.cl_ord_id):
        if order.replaced_outside(report.cl_ord_id, report.orig_cl_ord_id):
            event = Event.REPLACED_EXTERNALLY  # no request of ours: the venue's word stands
    main = _exec_event(book, order, report, event, ts_ns)
    if event == Event.REPLACED_EXTERNALLY and main.applied:
        return _combined(order, (main, *_outside_fills(book, order, report, ts_ns)), main)
    if event in _REPLACES and main.applied and report.cum_qty > order.cum_qty:
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
    elif event == Event.REPLACED_EXTERNALLY:  # decided by `apply_report`
        expected = True
    else:
        expected = event != Event.CANCEL_REJECTED or pending
    if not expected:
        return Outcome.refused(
            order,
            f"{event} for {report.cl_ord_id!r}, which is not the "
            f"pending request {order.pending_cl_ord_id!r}",
        )
    fields: dict[str, Any] = {"exec_id": report.exec_id, "reason": report.text,
                              "venue_order_id": report.venue_order_id}  # fmt: skip
    if event == Event.REPLACED_EXTERNALLY:
        return follow(book, order, report, ts_ns, **fields)
    if event == Event.REPLACED:
        fields |= order.replace_fields(report.cl_ord_id, report.order_qty, report.price)
    return book.record_event(order.client_order_id, event, ts_ns, **fields)


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
        missed_fill_exec_id(report.cl_ord_id, report.cum_qty, order.exec_ids),
        qty,
        px,
        ts_ns,
        venue_order_id=report.venue_order_id,
    )


def _outside_fills(book: ExecBook, order: Order, report: ExecReport, ts_ns: int) -> list[Outcome]:
    """After `order` was replaced by someone else to `report.cl_ord_id`: the fills the
    venue's cum says we missed (`_catch_up`) and those recorded unmatched under the new
    id, which came before the report (reordered), placed on the order
    (`adoption.place`: escalated and left unmatched if that is not safe), in venue cum
    order: those the report's cum holds, the catch-up to it, then the later ones."""
    cl, cum = report.cl_ord_id, report.cum_qty
    early = [f for f in book.unmatched_fills(order.venue) if f.cl_ord_id == cl]
    steps: list[Outcome] = []
    caught = False
    for fill in sorted(early, key=lambda f: (not f.cum_qty, f.cum_qty)):  # unknown cum last
        if not caught and (not fill.cum_qty or fill.cum_qty > cum):
            caught = True
            if cum > order.cum_qty:
                steps.append(_catch_up(book, order, report, ts_ns))
        steps.append(adoption.place(book, order, fill, cum, ts_ns, taken="replaced"))
    if not caught and cum > order.cum_qty:
        steps.append(_catch_up(book, order, report, ts_ns))
    return steps


def _outside_fill(book: ExecBook, order: Order, report: ExecReport, ts_ns: int) -> Outcome:
    """A fill under a ClOrdID we never used whose OrigClOrdID names `order`: someone
    replaced the order at the venue and the Replaced report is lost (or late). The replace
    is followed first, on the fill's terms (`follow`: refused if of another order or
    implausible), then the fill applied once on the new terms, the fills recorded unmatched
    under the new id placed around it in venue cum order (`adoption.place`). Without a
    positive order qty on the fill the new terms are unknown: nothing is followed (the order
    must not end on its old qty); like a fill that cannot be followed, it is recorded
    unmatched, escalated: reconciliation follows the replace from the venue's listing and its
    catch-up settles the fill (`adoption.caught_up`)."""
    if report.order_qty is None or report.order_qty <= 0:
        why = (
            f"{report.exec_id}: a fill of {report.cl_ord_id}, which replaced "
            f"{report.orig_cl_ord_id} at the venue, without a positive order qty "
            f"({report.order_qty}): not followed"
        )
        esc = Escalation(REPLACED_EXTERNALLY, why, order.client_order_id)
        main = Outcome.refused(order, why, esc)
    else:
        main = follow(book, order, report, ts_ns, venue_order_id=report.venue_order_id)
    if not main.applied:
        return _unmatched(book, report, ts_ns, *main.escalations)
    cl, cum = report.cl_ord_id, report.cum_qty
    early = [f for f in book.unmatched_fills(order.venue) if f.cl_ord_id == cl]
    early.sort(key=lambda f: (not f.cum_qty, f.cum_qty))  # unknown cum last
    n = sum(1 for f in early if f.cum_qty and f.cum_qty < cum)  # those before the fill
    placed = [adoption.place(book, order, f, cum, ts_ns, taken="replaced") for f in early[:n]]
    fill = book.apply_fill(order.client_order_id, report.exec_id, report.last_qty,
                           report.last_px, ts_ns, venue_cum_qty=cum,
                           venue_order_id=report.venue_order_id, fee=report.fee,
                           fee_asset=report.fee_asset)  # fmt: skip
    placed += [adoption.place(book, order, f, cum, ts_ns, taken="replaced") for f in early[n:]]
    return _combined(order, (main, *placed[:n], fill, *placed[n:]), fill)


def _unmatched(book: ExecBook, report: ExecReport, ts_ns: int, *esc: Escalation) -> Outcome:
    """The fill `report`, not applied to the order it named (`esc` why), recorded unmatched;
    refused as a bad fill if its qty or price is not positive or out of bounds
    (`fill_problem`, as `OrderBook.apply_fill` refuses it: no trade can be booked at it)."""
    if (problem := fill_problem(report.last_qty, report.last_px)) is not None:
        why = f"{report.exec_id}: {problem}"
        return Outcome.refused(None, "bad_fill", *esc, Escalation("bad_fill", why))
    out = book.record_unmatched(report, ts_ns)
    return Outcome(out.kind, None, out.records, out.reason, fill_qty=out.fill_qty,
                   fill_px=out.fill_px, escalations=esc + out.escalations)  # fmt: skip


def _status_report(book: ExecBook, order: Order, report: ExecReport, ts_ns: int) -> Outcome:
    """A venue status report: apply the fill quantity we missed, then the status; a
    replace it shows takes effect first, so that its fills count on its terms (someone
    else's: `_outside_status`). The outcome carries that fill (the order's event,
    positions as of a cut count it)."""
    status = report.ord_status
    records: list[dict[str, Any]] = []
    if status not in CUT_SHORT and not order.is_terminal:
        cl, orig = report.cl_ord_id, report.orig_cl_ord_id  # (orig: optional here)
        if order.replaced_outside(cl, order.cl_ord_id) or order.replaced_outside(cl, orig):
            return _outside_status(book, order, report, ts_ns)
        if (shown := _replace_shown(book, order, report, ts_ns)) is not None:
            records += shown.records
    esc: list[Escalation] = []
    fill = Outcome("duplicate")
    if report.cum_qty > order.cum_qty:
        fill = _catch_up(book, order, report, ts_ns)
        records += fill.records
        esc += fill.escalations
    elif report.cum_qty < order.cum_qty:
        esc.append(_cum_behind(order, report))
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
        esc += out.escalations  # an outside replace it followed (or refused) among them
    kind: Literal["applied", "duplicate"] = "applied" if records else "duplicate"
    return Outcome(kind, order, tuple(records), fill_qty=fill.fill_qty, fill_px=fill.fill_px,
                   escalations=tuple(esc))  # fmt: skip


def _outside_status(book: ExecBook, order: Order, report: ExecReport, ts_ns: int) -> Outcome:
    """A status report showing `order` replaced by someone else: followed (escalated, or
    refused: `outside_replace.follow`), then the fills it shows on the new terms
    (`_outside_fills`), then its status."""
    main = follow(book, order, report, ts_ns, reason=report.text,
                  venue_order_id=report.venue_order_id)  # fmt: skip
    if not main.applied:
        return main
    behind = (_cum_behind(order, report),) if report.cum_qty < order.cum_qty else ()
    parts = [main, Outcome("duplicate", escalations=behind)]
    parts += _outside_fills(book, order, report, ts_ns)
    if report.ord_status is not None and report.ord_status != S.FILLED:
        parts.append(book.apply_venue_status(order.client_order_id, report.ord_status, ts_ns,
                                             reason=report.text))  # fmt: skip
    return _combined(order, tuple(parts), main)


def _cum_behind(order: Order, report: ExecReport) -> Escalation:
    detail = f"venue cum {report.cum_qty}, local {order.cum_qty}"
    return Escalation("venue_cum_behind", detail, order.client_order_id)


def _combined(order: Order, parts: tuple[Outcome, ...], main: Outcome) -> Outcome:
    """One outcome for a report that took several steps (`parts`, in order): all their
    records, escalations and fills, and `main`'s kind and reason when no step recorded
    anything."""
    records = tuple(r for o in parts for r in o.records)
    fills = [(o.fill_qty, o.fill_px) for o in parts if o.fill_qty]
    fill_qty, fill_px = fills[0] if len(fills) == 1 else (None, None)
    if len(fills) > 1:  # every fill of the steps, at their average price
        fill_qty = sum((q for q, _ in fills if q), Decimal(0))
        fill_px = sum((q * p for q, p in fills if q and p), Decimal(0)) / fill_qty
    return Outcome(
        "applied" if records else main.kind,
        order,
        records,
        main.reason,
        fill_qty=fill_qty,
        fill_px=fill_px,
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
