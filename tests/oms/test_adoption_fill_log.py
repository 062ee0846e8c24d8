"""rev14 (review of fix8): the operator's fill log (`tradepulse fills`, `actors.oms.views`)
logs every ``unmatched_fill`` and every ``fill`` record. A fill an adoption books on its
order (`actors.oms.adoption`) has both: its unmatched record when it came and its ``fill``
record when it was booked. The log then lists the one execution twice: once as unmatched
(no order) and once on the order, so the view shows 20 traded for the venue's 10 (and an
operator reading it sees a fill still unmatched that the book holds)."""

from __future__ import annotations

from actors.oms.order_book import OrderBook
from actors.oms.views import OmsViews
from protocol import commands as wire
from tests.oms.test_adoption_later_fills import V, _answered, _fill


def test_the_fill_log_lists_a_fill_an_adoption_booked_once() -> None:
    """G2 (10 @ 101, venue cum 60) unmatched, then booked by EXT1's adoption (cum 50).
    Expected: the fills view shows exec G2 once, on EXT1's order; got two rows of G2
    (one with no order id), 20 for 10."""
    book = OrderBook()
    views = OmsViews(book)
    for out in (book.apply_exec(_fill("G2", "10", "101", "60"), 1), book.adopt(V, _answered(), 2)):
        for rec in out.records:  # as `OmsActor.record`: after the book applied them
            views.note(rec)
    rows = views.answer(wire.Fills()).data["fills"]
    g2 = [(r["client_order_id"], r["qty"]) for r in rows if r["exec_id"] == "G2"]
    assert g2 == [(f"ext:{V}:EXT1", "10")], g2


def test_a_placed_fill_logged_unmatched_before_a_restart_is_put_on_its_order() -> None:
    """G2 logged unmatched, the views' state saved (snapshot) and restored; the adoption's
    fill record of G2 then puts that row on EXT1 (its side too): one row of G2."""
    book = OrderBook()
    views = OmsViews(book)
    for rec in book.apply_exec(_fill("G2", "10", "101", "60", side=None), 1).records:
        views.note(rec)
    restored = OmsViews(book, views.state())
    for rec in book.adopt(V, _answered(), 2).records:
        restored.note(rec)
    rows = restored.answer(wire.Fills()).data["fills"]
    g2 = [(r["client_order_id"], r["side"], r["ts_ns"]) for r in rows if r["exec_id"] == "G2"]
    assert g2 == [(f"ext:{V}:EXT1", "BUY", 1)], g2
