"""A venue order we have no record of (external), taken over by reconciliation at the
venue's state (pure logic, no I/O).

`OrderBook.adopt` hands the venue's view of the order here, which applies it through the
book's own commands (`AdoptBook`): a ClOrdID the book knows is not adopted again
(`known_at_venue`); an unknown one becomes a ``new`` record of `Order.adopted`.

Its fills so far are one fill inferred from venue state (the synthetic exec id
`recon:<ClOrdID>:<venue cum>`, as a reconciliation's missed fill), and the outcome says so:
`fill_qty` its cum_qty, `fill_px` its average price. The order's first event carries that
fill (merged with any later fill of the same turn), so risk, which never saw the order,
counts all of it as new even when the event finishes the order; the fills metric counts
it once. The book's positions take it from the ``new`` record (`OrderBook.apply_record`),
never from the outcome; the exec cut's ring notes only execution reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from actors.oms.orders import Escalation, Order, Outcome
from protocol.messages import VenueOrder


class AdoptBook(Protocol):
    """The book commands an adoption is applied through."""

    def find(self, venue: str, cl_ord_id: str) -> Order | None: ...

    def held(self, client_order_id: str) -> Order | None: ...

    def apply_record(self, record: Mapping[str, Any]) -> None: ...


def adopt(book: AdoptBook, venue: str, vo: VenueOrder, ts_ns: int) -> Outcome:
    """Take over `vo` at `venue` (see the module docstring)."""
    if (known := book.find(venue, vo.cl_ord_id)) is not None:
        return known_at_venue(known, vo)
    new = Order.adopted(venue, vo, ts_ns)
    record = {"kind": "new", "order": new.to_dict()}
    book.apply_record(record)
    order = book.held(new.client_order_id)
    assert order is not None  # just indexed
    if not order.cum_qty:
        return Outcome("applied", order, (record,))
    return Outcome("applied", order, (record,), fill_qty=order.cum_qty, fill_px=order.avg_px)


def known_at_venue(order: Order, vo: VenueOrder) -> Outcome:
    """`OrderBook.adopt` of a ClOrdID we know: a duplicate, except that a terminal order of
    ours the venue shows in another state (one read back from the archive, so the
    reconciliation planner did not see it) is escalated as the planner would."""
    if order.is_terminal and vo.status != order.status:
        detail = f"{vo.cl_ord_id}: local {order.status}, venue {vo.status}"
        esc = Escalation("terminal_mismatch", detail, order.client_order_id)
        return Outcome.refused(order, "a terminal order of ours", esc)
    return Outcome("duplicate", order, reason="known")
