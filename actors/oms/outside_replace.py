"""An order replaced at the venue by someone else, not at a request of ours (pure logic,
no I/O): the owner of an adopted order, or someone at the venue's GUI modifying one of ours.

The venue's word stands: the order lives on under the new ClOrdID with the reported terms
(a ``replaced_externally`` event record, its cum carried; its fills then match it, and
reconciliation finds it under that id instead of adopting it again), escalated
(`REPLACED_EXTERNALLY`: log event, counter, alert). `actors.oms.executions` decides a
report is one (a Replaced report, a status report), reconciliation that a venue listing is
one (`actors.oms.reconcile`); both apply it through `replaced_outside` here.

The report may name as replaced (OrigClOrdID) a replace of ours the order does not carry
yet (pending, or given up on): that replace took effect first, its own report lost or
overtaken; it is recorded before (`follow`), so the order does not stay PENDING_REPLACE
under an id the venue no longer knows. Both steps are checked before either is recorded: a
replace of ours that would end the order (its qty filled) is not one a venue replaces again,
so such a report is refused (`BAD_REPLACE`, below), never half applied.

A Replaced report giving the order the ClOrdID of another order of the book is applied to
neither (`id_taken`): it needs a human.

A replace no venue makes is not followed: new terms below what is filled (by our count or
the venue's) or at a price that is not positive contradict the book and the report itself.
It is refused and escalated (`BAD_REPLACE`), the order left as it was (a garbled or hostile
report must not end a live order, nor take it out of risk's open exposure). So is one whose
new qty the report does not give (OrderQty is conditional in FIX): on the old qty its fills
would end the order FILLED while the venue works it, and the venue's next report of it
would then be adopted on top; its fills stay unmatched until a pass follows the replace
from the venue's listing (which gives the qty) by the venue order id. Nor is a report of
another order followed (`foreign`): a replace changes neither symbol nor side, nor (where
the report and the order both name one) the venue order; an external party's ClOrdIDs are
unique only per session and day, so a report naming the order's id as OrigClOrdID may be of
an order of someone else's; a fill under an id the order took from an outside replace is
checked the same way (`fill_of_another`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final, Protocol

from actors.oms.lifecycle import Event, resolve
from actors.oms.orders import Escalation, Order, Outcome, request_cl_ord_id
from actors.oms.positions import ZERO
from protocol.messages import TERMINAL_STATUSES, ExecReport

# the escalation (and log event) of an order replaced at the venue by someone else
REPLACED_EXTERNALLY: Final = "order_replaced_externally"
BAD_REPLACE: Final = "bad_replace_report"  # a replace report no venue would send
ID_TAKEN: Final = "replace_id_taken"  # a Replaced report giving one order another's ClOrdID
FILL_OF_ANOTHER: Final = "outside_id_fill_of_another_order"  # `fill_of_another`


class EventBook(Protocol):
    def record_event(
        self, client_order_id: str, event: Event, ts_ns: int, **fields: Any
    ) -> Outcome: ...


def implausible(
    order: Order, cl_ord_id: str, qty: Decimal | None, venue_cum: Decimal,
    price: Decimal | None = None,
) -> str:  # fmt: skip
    """Why the venue cannot have replaced `order` by `cl_ord_id` to `qty` (and `price`, if
    given) with `venue_cum` filled ("" if it can): a qty below what is filled, or none given
    or not positive (the new qty unknown, 0 as much as none: followed on the old qty, the
    order would end FILLED while the venue works it), or a price that is not positive (no
    limit order has one)."""
    if qty is None or qty <= 0:
        return f"{order.cl_ord_id} replaced by {cl_ord_id} without a positive order qty ({qty})"
    if price is not None and price <= 0:
        return f"{order.cl_ord_id} replaced by {cl_ord_id} to price {price}"
    filled = max(order.cum_qty, venue_cum)
    if qty < filled:
        return f"{order.cl_ord_id} replaced by {cl_ord_id} to qty {qty}, below the {filled} filled"
    return ""


def replaced_outside(
    book: EventBook,
    order: Order,
    cl_ord_id: str,
    qty: Decimal | None,
    price: Decimal | None,
    ts_ns: int,
    *,
    venue_cum: Decimal = ZERO,
    **fields: Any,
) -> Outcome:
    """The venue replaced `order` by `cl_ord_id` (the new terms `qty`, `price` where it
    gives them; `venue_cum` filled as it says) at nobody's request of ours
    (`Order.replaced_outside`): recorded as ``replaced_externally``, escalated
    (`REPLACED_EXTERNALLY`); refused and escalated (`BAD_REPLACE`) if implausible."""
    if why := implausible(order, cl_ord_id, qty, venue_cum, price):
        bad = Escalation(BAD_REPLACE, f"{why}: not followed", order.client_order_id)
        return Outcome.refused(order, why, bad)
    was = _terms(order)  # before the record changes them
    fields |= order.replace_fields(cl_ord_id, qty, price)
    out = book.record_event(order.client_order_id, Event.REPLACED_EXTERNALLY, ts_ns, **fields)
    if not out.applied:
        return out
    whose = "adopted" if order.external else "ours"
    detail = f"{whose} {was} replaced at the venue by {_terms(order)}, no request of ours"
    esc = Escalation(REPLACED_EXTERNALLY, detail, order.client_order_id)
    return Outcome(out.kind, out.order, out.records, out.reason, escalations=(esc,))


def foreign(order: Order, report: ExecReport) -> str:
    """Why `report`, which names `order`'s id as replaced, cannot be of `order` ("" if it
    can): another symbol or side (or none given), or another venue order (both known)."""
    return _other(order, report, f"{report.orig_cl_ord_id} replaced by {report.cl_ord_id}")


def _other(order: Order, report: ExecReport, what: str) -> str:
    """Why `report` (`what` it says) is of another venue order than `order` ("" if it
    cannot tell): another symbol or side (or none given), another venue order id."""
    said = f"{report.exec_id}: {what}"
    if report.symbol != order.symbol or report.side != order.side:
        return (f"{said} as {report.side or '?'} {report.symbol or '?'}, "
                f"the order is {order.side} {order.symbol}")  # fmt: skip
    vid = report.venue_order_id
    if vid and order.venue_order_id and vid != order.venue_order_id:
        return f"{said} as venue order {vid}, the order's is {order.venue_order_id}"
    return ""


def outside_id(order: Order, cl_ord_id: str) -> bool:
    """`cl_ord_id` is one `order` took from an outside replace (an external party's ids
    recycle per session and day): not its first id, nor any other id of ours (`own_id`)."""
    ids = order.cl_ord_ids
    return cl_ord_id in ids[1:] and not own_id(order, cl_ord_id)


def own_id(order: Order, cl_ord_id: str) -> bool:
    """`cl_ord_id` is one we generated for `order`: that of one of its cancel or replace
    requests so far (`request_cl_ord_id`, n = 1 to `request_seq`), not only the replaces:
    a fill under our pending cancel's id is of the order, as any fill under an id of ours."""
    base = order.cl_ord_ids[0]  # read off the id (O(1) a fill), not each id generated
    n = cl_ord_id[len(base) + 2 :]
    if not (n.isascii() and n.isdigit() and len(n) < 10 and 1 <= int(n) <= order.request_seq):
        return False
    return cl_ord_id in (request_cl_ord_id(base, "c", int(n)), request_cl_ord_id(base, "r", int(n)))


def fill_of_another(order: Order, report: ExecReport) -> str:
    """Why the fill `report`, under an id `order` took from an outside replace, cannot be
    of `order` ("" if it can): another symbol or side (or none given), or another venue
    order (both known). Such a fill is not applied to the order: recorded unmatched and
    escalated (`FILL_OF_ANOTHER`), as a fill that matches none."""
    if not outside_id(order, report.cl_ord_id):
        return ""
    return _other(order, report, f"a fill under {report.cl_ord_id}")


def follow(book: EventBook, order: Order, report: ExecReport, ts_ns: int, **fields: Any) -> Outcome:
    """`replaced_outside` of the replace `report` shows (OrigClOrdID by ClOrdID, its qty,
    price and cum), after the replace of ours its OrigClOrdID names, if the order does not
    carry it yet (module docstring); one outcome with the records of both. Refused and
    escalated (`BAD_REPLACE`) if the report is of another order (`foreign`)."""
    cl, ours, qty, price = report.cl_ord_id, report.orig_cl_ord_id, report.order_qty, report.price
    venue_cum = report.cum_qty
    if why := foreign(order, report):
        bad = Escalation(BAD_REPLACE, f"{why}: not followed", order.client_order_id)
        return Outcome.refused(order, why, bad)
    if not ours or ours == order.cl_ord_id or not order.shows_replace(ours):
        return replaced_outside(book, order, cl, qty, price, ts_ns, venue_cum=venue_cum,
                                **fields)  # fmt: skip
    # both steps checked before anything is recorded: ours must leave the order live and
    # the outside replace must be allowed on top of it
    ours_fields = order.replace_fields(ours, None, None)
    if why := implausible(order, cl, qty, venue_cum, price) or _after_ours(order, ours_fields, qty):
        bad = Escalation(BAD_REPLACE, f"{why}: not followed", order.client_order_id)
        return Outcome.refused(order, why, bad)
    vid = fields.get("venue_order_id", "")
    first = book.record_event(order.client_order_id, Event.REPLACED, ts_ns, venue_order_id=vid,
                              **ours_fields)  # fmt: skip
    if not first.applied:
        return first
    out = replaced_outside(book, order, cl, qty, price, ts_ns, venue_cum=venue_cum,
                           **fields)  # fmt: skip
    return Outcome("applied", order, first.records + out.records, out.reason,
                   escalations=out.escalations)  # fmt: skip


def _after_ours(order: Order, ours: dict[str, Any], qty: Decimal | None) -> str:
    """Why the order cannot take the replace of ours (its record `ours`), then an outside
    replace to `qty` ("" if it can): ours would end it (its qty filled) or leave it where
    the outside replace is not allowed."""
    status = order.next_status(Event.REPLACED, ours["qty"])
    new_qty = Decimal(ours["qty"]) if qty is None else qty  # (`implausible` refused 0 and below)
    if status is None or status in TERMINAL_STATUSES:
        return f"{ours['cl_ord_id']} at qty {ours['qty']} would be {status or 'refused'}"
    if resolve(status, Event.REPLACED_EXTERNALLY, order.cum_qty, new_qty) is None:
        return f"{ours['cl_ord_id']} ({status}) cannot be replaced"
    return ""


def id_taken(named: Order, holder: Order, report: ExecReport) -> Outcome:
    """A Replaced report of `named` (its OrigClOrdID) by the ClOrdID of another order,
    `holder`: neither `holder`'s own replace nor one `named` can take (a venue refuses the
    ClOrdID of a live order, and an order keeps its symbol and side); applied to neither
    (`holder`'s fills would count `named`'s trades), refused and escalated (`ID_TAKEN`)."""
    why = (f"{report.exec_id}: {report.orig_cl_ord_id} replaced by {report.cl_ord_id}, "
           f"the ClOrdID of {holder.client_order_id} ({holder.status})")  # fmt: skip
    return Outcome.refused(named, why, Escalation(ID_TAKEN, why, named.client_order_id))


def _terms(order: Order) -> str:
    return f"{order.cl_ord_id} {order.qty} @ {order.price}"
