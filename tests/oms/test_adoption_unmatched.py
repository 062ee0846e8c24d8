"""An adoption and the unmatched fills of its ClOrdID (`OrderBook._apply_new`): every one is
taken as explained by the adopted cum_qty, also a fill that came after the venue state the
adoption was made from (the open-orders answer: a pass spans loop turns, executions flow
meanwhile). Such a fill is then in no position and no longer unmatched."""

from __future__ import annotations

from decimal import Decimal as D

from actors.oms.order_book import OrderBook
from protocol.messages import ExecReport, OrderStatus, Side, VenueOrder

V = "sim"


def _answered() -> VenueOrder:
    """The venue's open-orders answer: EXT1, BUY 100 (someone else's), 50 filled @ 100."""
    return VenueOrder(cl_ord_id="EXT1", venue_order_id="V1", symbol="ABC", side=Side.BUY,
                      order_qty=D(100), price=D(100), status=OrderStatus.PARTIALLY_FILLED,
                      cum_qty=D(50), avg_px=D(100), leaves_qty=D(50))  # fmt: skip


def _later_fill() -> ExecReport:
    """EXT1's next fill, after that answer: 10 @ 100, venue cum 60 (unmatched: not ours yet)."""
    return ExecReport(venue=V, exec_id="G2", kind="fill", cl_ord_id="EXT1", symbol="ABC",
                      side=Side.BUY, last_qty=D(10), last_px=D(100), cum_qty=D(60),
                      venue_order_id="V1")  # fmt: skip


def test_an_adoption_does_not_swallow_a_fill_after_the_state_it_adopts() -> None:
    """G2 (cum 60) came after the answer the adoption takes (cum 50): the adoption does not
    explain it. Either the book counts it (position 60, the venue's) or it stays unmatched
    (escalated each pass). It is dropped instead: position 50, nothing unmatched, and the
    venue's reports of G2 are duplicates (too low until a later report's cum catches up)."""
    book = OrderBook()
    assert book.apply_exec(_later_fill(), 1).applied  # recorded unmatched, escalated
    assert book.adopt(V, _answered(), 2).applied
    counted = book.position(V, "ABC").qty == 60
    still_unmatched = any(u.exec_id == "G2" for u in book.unmatched_fills(V))
    assert counted or still_unmatched, (book.position(V, "ABC").qty, book.unmatched_fills(V))


def test_a_cold_start_counts_a_fill_swallowed_by_its_adoption_once() -> None:
    """Cold start: the positions answer (asked after the open orders) holds G2: 60. The book
    after the adoption holds 50, so the cold pass takes 60 as the opening position
    (`PlanApplier.finish`). EXT1's cancel then says cum 60 where the order says 50: the
    10 of G2 are caught up again. The book must hold the venue's 60; it holds 70 (a
    difference the position heartbeat sees every beat: the kill-switch at tolerance 0)."""
    book = OrderBook()
    assert book.apply_exec(_later_fill(), 1).applied
    assert book.adopt(V, _answered(), 2).applied
    if book.position(V, "ABC").qty != 60:  # as `PlanApplier._take_opening_positions`: only
        book.set_opening_position(V, "ABC", D(60), D(100), 3)  # a book that differs
    cancelled = ExecReport(venue=V, exec_id="C1", kind="cancelled", cl_ord_id="EXT1",
                           symbol="ABC", side=Side.BUY, cum_qty=D(60), avg_px=D(100))  # fmt: skip
    assert book.apply_exec(cancelled, 4).applied
    assert book.position(V, "ABC").qty == 60, book.position(V, "ABC")
