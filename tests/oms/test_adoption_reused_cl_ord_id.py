"""rev14 (review of fix8): an adoption books the unmatched fills of its ClOrdID whose venue
cum_qty is above the adopted one on the adopted order (`actors.oms.adoption`), whatever
venue order they came from. A ClOrdID is unique only among a venue's open orders (many
crypto venues) or within a trading day (FIX): someone else's market order EXT1 (venue order
V1) fills at once, never listed open, so its fill stays unmatched (escalated, and kept in
the book and its snapshots); later EXT1 names another order of theirs (V9) that rests
unfilled, and a pass adopts it. V1's old fill is then booked on V9."""

from __future__ import annotations

from decimal import Decimal as D

from actors.oms.order_book import OrderBook
from protocol.messages import ExecReport, OrderStatus, Side, VenueOrder

V = "sim"


def test_an_adoption_does_not_book_a_fill_of_an_earlier_venue_order_of_its_cl_ord_id() -> None:
    """V1's fill G1 (30 @ 100, venue cum 30, venue order V1) is unmatched. The adopted
    V9 (EXT1, BUY 100, nothing filled: cum 0) must be the venue's state: cum 0, ACCEPTED,
    no fill in its outcome, the position unmoved, G1 still unmatched (it is not V9's).
    Got: G1 booked on V9: cum 30 (PARTIALLY_FILLED, leaves 70 for the venue's 100), the
    adoption's OrderEvent fill 30 (risk counts 30 of a fill V9 never had), position 30
    from the adoption; V9's own later fills then run the order FILLED at venue cum 70
    and its last 30 are refused as overfills."""
    book = OrderBook()
    g1 = ExecReport(venue=V, exec_id="G1", kind="fill", cl_ord_id="EXT1", venue_order_id="V1",
                    symbol="ABC", side=Side.BUY, last_qty=D(30), last_px=D(100),
                    cum_qty=D(30))  # fmt: skip
    assert book.apply_exec(g1, 1).applied  # unmatched: EXT1 is not ours
    resting = VenueOrder(cl_ord_id="EXT1", venue_order_id="V9", symbol="ABC", side=Side.BUY,
                         order_qty=D(100), price=D(100), status=OrderStatus.ACCEPTED,
                         cum_qty=D(0), avg_px=D(0), leaves_qty=D(100))  # fmt: skip
    out = book.adopt(V, resting, 2)
    assert out.applied
    order = book.get(f"ext:{V}:EXT1")
    assert order is not None
    got = (order.cum_qty, order.status, out.fill_qty, book.position(V, "ABC").qty)
    assert got == (0, OrderStatus.ACCEPTED, None, 0), got
    assert [u.exec_id for u in book.unmatched_fills(V)] == ["G1"]


def _g(exec_id: str, cum: str, venue_order_id: str) -> ExecReport:
    return ExecReport(venue=V, exec_id=exec_id, kind="fill", cl_ord_id="EXT1",
                      venue_order_id=venue_order_id, symbol="ABC", side=Side.BUY,
                      last_qty=D(10), last_px=D(100), cum_qty=D(cum))  # fmt: skip


def _ext1(cum: str, venue_order_id: str = "V9") -> VenueOrder:
    return VenueOrder(cl_ord_id="EXT1", venue_order_id=venue_order_id, symbol="ABC",
                      side=Side.BUY, order_qty=D(100), price=D(100),
                      status=OrderStatus.PARTIALLY_FILLED, cum_qty=D(cum), avg_px=D(100),
                      leaves_qty=D(100) - D(cum))  # fmt: skip


def test_a_fill_of_another_venue_order_within_the_adopted_cum_is_not_taken_as_held() -> None:
    """V1's G1 (venue cum 10) and V9's G2 (venue cum 20); V9 adopted at cum 20: G2 is held
    by its state, G1 (cum within 20, but of V1) is not: it stays unmatched, escalated."""
    book = OrderBook()
    for report in (_g("G1", "10", "V1"), _g("G2", "20", "V9")):
        assert book.apply_exec(report, 1).applied
    out = book.adopt(V, _ext1("20"), 2)
    assert [u.exec_id for u in book.unmatched_fills(V)] == ["G1"]
    assert [e.kind for e in out.escalations] == ["unplaced_fill"]
    assert "venue order V1" in out.escalations[0].detail
    assert book.position(V, "ABC").qty == 20


def test_a_fill_whose_venue_order_is_unknown_is_held_by_the_cum_but_never_placed() -> None:
    """No venue order id on the fills (older records, a venue that does not say) or on the
    adopted order: G1 (cum 10) is within the adopted 20: held, as before the id was kept;
    G3 (cum 30) is after it: not placed on a guess, it stays unmatched, escalated."""
    for fill_id, order_id in (("", "V9"), ("V9", "")):
        book = OrderBook()
        for report in (_g("G1", "10", fill_id), _g("G3", "30", fill_id)):
            assert book.apply_exec(report, 1).applied
        out = book.adopt(V, _ext1("20", order_id), 2)
        assert [u.exec_id for u in book.unmatched_fills(V)] == ["G3"]
        assert [e.kind for e in out.escalations] == ["unplaced_fill"]
        assert "unknown" in out.escalations[0].detail
        assert book.get(f"ext:{V}:EXT1").cum_qty == 20  # type: ignore[union-attr]


def test_an_unmatched_fill_keeps_its_venue_order_id_in_records_and_snapshots() -> None:
    """Journal record and snapshot carry it; one written before it was kept loads as
    unknown ("")."""
    book = OrderBook()
    rec = book.apply_exec(_g("G1", "10", "V1"), 1).records[0]
    assert rec["venue_order_id"] == "V1"
    again = OrderBook.from_dict(book.to_dict())
    assert again.unmatched_fills(V)[0].venue_order_id == "V1"
    old = OrderBook()
    old.apply_record({k: v for k, v in rec.items() if k != "venue_order_id"})
    assert old.unmatched_fills(V)[0].venue_order_id == ""
