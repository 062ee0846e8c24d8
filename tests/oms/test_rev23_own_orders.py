"""rev23 review of `extfix`: failing tests for regressions on our own orders (no outside
replace involved) found by the main-vs-extfix fuzz, and for defects of the rev22 fixes."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from actors.oms.order_book import OrderBook
from protocol.messages import ExecReport, OrderStatus, Side
from tests.oms.test_external_replace import _fill, _ours, _replaced, _report
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


@pytest.mark.parametrize("last_px", ["0", "-3"])
def test_a_fill_of_another_order_without_a_positive_price_is_refused_not_unmatched(
    last_px: str,
) -> None:
    """o1 (BUY 10, V-1) followed an outside replace to GUI-7; a fill under GUI-7 of another
    order (SELL XYZ, V-9: external ClOrdIDs recycle) with LastPx 0 (or -3: garbled) arrives.
    Before 8264dcf it reached `OrderBook.apply_fill` and was refused as a ``bad_fill``
    (`fill_problem`): no trade can be booked at that price. (Defect, 8264dcf + ed12005:
    `executions._unmatched` checks only LastQty <= 0, so the fill is journalled as an
    ``unmatched_fill`` at price 0 (or -3) for good and escalated as a trade the book cannot
    account for; an adoption may later place it on an order (`adoption.place`) at that
    price. The same gap rev22 #4 closed for the qty.)"""
    book = OrderBook()
    _ours(book)
    assert book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").kind != "refused"
    assert book.apply_exec(_replaced("GUI-7", "o1", "20", "100", "0"), 5).applied
    garbled = ExecReport(venue=V, exec_id="F1", kind="fill", cl_ord_id="GUI-7", symbol="XYZ",
                         side=Side.SELL, venue_order_id="V-9", last_qty=D(5),
                         last_px=D(last_px), cum_qty=D(5), avg_px=D(100), order_qty=D(5),
                         ord_status=S.PARTIALLY_FILLED)  # fmt: skip
    out = book.apply_exec(garbled, 6)
    assert book.unmatched_fills() == [], out
    assert "bad_fill" in {e.kind for e in out.escalations}


def test_an_outside_replace_to_order_qty_0_is_not_followed_on_the_old_qty() -> None:
    """o1 (BUY 10, V-1) is replaced at the venue to GUI-7 (20); the Replaced report carries
    OrderQty 0 (garbled, or a parser's default for an absent tag 38). Its new qty is as
    unknown as without OrderQty (rev22 #1, 19a6cab: refused, ``bad_replace_report``). Then
    F1, 10 under GUI-7 (venue cum 10, order qty 20): the order works 10 more at the venue
    and must not end FILLED. (Defect: `implausible` refuses None and a qty below the
    filled, but 0 with nothing filled passes, and `Order.replace_fields` takes `qty or ...`:
    the 0 falls back to the old qty 10. The replace is followed on the old qty, as rev22 #1
    described: F1 ends o1 FILLED at 10 while the venue works it, later fills are refused as
    overfills and the venue's next replace of it is adopted on top.)"""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").kind != "refused"
    book.apply_exec(_replaced("GUI-7", "o1", "0", "100", "0"), 5)
    book.apply_exec(_fill("GUI-7", "F1", "10", "10", "20"), 6)
    assert not order.is_terminal, (order.status, order.qty, order.cum_qty)


def test_a_fill_naming_our_id_as_orig_with_order_qty_0_does_not_follow_the_old_qty() -> None:
    """rev23 #3 on the path of a fill that shows the outside replace (its Replaced report
    lost): F1, 10 under GUI-7 naming o1 as OrigClOrdID, OrderQty 0 (no CumQty, so not
    below the filled). The new qty is unknown,
    as without OrderQty (rev20 #5): nothing is followed, the fill is recorded unmatched for
    a pass to follow and settle. (Before the fix: followed with `replace_fields` taking the
    old qty 10 for the 0, so F1 ended o1 FILLED while the venue works it.)"""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").kind != "refused"
    fill = _report("fill", "GUI-7", "F1", orig_cl_ord_id="o1", last_qty=D(10), last_px=D(100),
                   avg_px=D(100), order_qty=D(0), ord_status=S.PARTIALLY_FILLED)  # fmt: skip
    book.apply_exec(fill, 5)
    assert not order.is_terminal, (order.status, order.qty, order.cum_qty)
    assert order.cl_ord_id == "o1"
    assert [u.exec_id for u in book.unmatched_fills()] == ["F1"]
