"""rev23 review of `extfix`: failing tests for regressions on our own orders (no outside
replace involved) found by the main-vs-extfix fuzz."""

from __future__ import annotations

from decimal import Decimal as D

from actors.oms.order_book import OrderBook
from protocol.messages import ExecReport, OrderStatus
from tests.oms.test_external_replace import _ours
from tests.oms.test_sends_first import V

S = OrderStatus


def test_a_fill_under_our_cancel_id_without_symbol_and_side_is_booked_on_the_order() -> None:
    """o1 (BUY 10, V-1) has our cancel o1.c1 pending; the venue reports a fill of 3 under
    o1.c1 (OrigClOrdID o1), without Symbol and Side (optional in `ExecReport`). o1.c1 is our
    own id: on main the fill is booked on o1 (cum 3, position 3). (Defect, 8264dcf:
    `outside_replace.outside_id` takes every id after the first that is not a replace of
    ours as one taken from an outside replace, our cancel ids included, so `fill_of_another`
    finds "none given" for symbol/side and the fill is journalled unmatched and escalated
    (``outside_id_fill_of_another_order``, ``unmatched_fill``); a pass then books the venue's
    cum by a missed fill and the unmatched fill stays, escalated every pass. The fuzz shows
    it in ~2% of sequences with symbol-less reports and fills under a pending cancel id.)"""
    book = OrderBook()
    _ours(book)
    assert book.request_cancel("o1", 4).applied
    fill = ExecReport(venue=V, exec_id="F1", kind="fill", cl_ord_id="o1.c1",
                      orig_cl_ord_id="o1", venue_order_id="V-1", last_qty=D(3),
                      last_px=D(100), cum_qty=D(3), avg_px=D(100),
                      ord_status=S.PARTIALLY_FILLED)  # fmt: skip
    out = book.apply_exec(fill, 5)
    assert out.fill_qty == 3, (out.kind, out.reason, [e.kind for e in out.escalations])
    assert book.unmatched_fills() == []
    assert book.position(V, "ABC").qty == 3
