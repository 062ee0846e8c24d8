"""rev17 review of `extrep`: failing tests for defects in following an outside replace."""

from __future__ import annotations

from decimal import Decimal as D

from actors.oms.order_book import OrderBook
from actors.oms.reconcile import apply_plan, plan_reconciliation
from protocol.messages import (
    ExecReport,
    OrderStatus,
    OrdType,
    ReplaceOrder,
    RiskVerdict,
    Side,
    SubmitOrder,
    VenueOrder,
)
from tests.oms.test_external_replace import _fill, _ours, _replaced, _report
from tests.oms.test_sends_first import V

S = OrderStatus


def test_a_venue_order_of_another_symbol_sharing_the_venue_order_id_is_not_a_replace() -> None:
    """Venue order ids are unique per symbol only at some venues (Binance's orderId), and
    others recycle them: our live o1 (BUY 10 ABC, venue order id V-1) is listed open under
    its own ClOrdID, and so is someone else's SELL 5 XYZ (3 filled) that carries the same
    venue order id and comes first in the list. A replace never changes symbol or side, so
    the XYZ order is not o1 replaced: it is adopted, o1 keeps its id, and ABC gets no fill.
    (Defect: `PlanBuilder._replaced_outside` links by venue order id alone: o1 is taken as
    replaced by FOREIGN-9 (its live id now FOREIGN-9, qty 5), the 3 XYZ sold are counted
    as 3 ABC bought, and o1's own listing is skipped as already matched.)"""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").kind != "refused"
    assert order.venue_order_id == "V-1"
    foreign = VenueOrder(cl_ord_id="FOREIGN-9", venue_order_id="V-1", symbol="XYZ",
                         side=Side.SELL, order_qty=D(5), price=D(7),
                         status=S.PARTIALLY_FILLED, cum_qty=D(3), avg_px=D(7),
                         leaves_qty=D(2))  # fmt: skip
    mine = VenueOrder(cl_ord_id="o1", venue_order_id="V-1", symbol="ABC", side=Side.BUY,
                      order_qty=D(10), price=D(100), status=S.ACCEPTED, cum_qty=D(0),
                      avg_px=D(0), leaves_qty=D(10))  # fmt: skip
    plan = plan_reconciliation(V, book.orders(V), [foreign, mine], {}, set())
    apply_plan(book, plan, 5)
    assert (order.cl_ord_id, order.symbol, order.qty) == ("o1", "ABC", 10)
    assert book.position(V, "ABC").qty == 0
    assert book.position(V, "XYZ").qty == -3
    assert book.find(V, "FOREIGN-9") is not order


def test_an_outside_replace_to_less_than_the_filled_qty_does_not_end_the_order() -> None:
    """A garbled or hostile Replaced report: o1 (BUY 10, 6 filled) "replaced" by GUI-7 to
    qty 4, the venue still saying PARTIALLY_FILLED. No venue replaces an order below what it
    has filled: the report contradicts itself and the book. It must not be taken as the
    order's new terms: the order keeps living as it was (qty 10, leaves 4), escalated as a
    bad report. (Defect: the replace applies, the order becomes FILLED with cum 6 > qty 4 -
    dead in the OMS and out of risk's open exposure while the venue says it is live.)"""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_exec(_fill("o1", "F1", "6", "6", "10"), 4).applied
    out = book.apply_exec(_replaced("GUI-7", "o1", "4", "100", "6"), 5)
    assert not order.is_terminal, (order.status, order.qty, order.cum_qty)
    assert order.cum_qty <= order.qty
    assert out.escalations, out


def test_an_outside_replace_of_our_replace_whose_report_was_lost_is_followed() -> None:
    """Our replace o1.r1 (to 12) took effect at the venue but its Replaced report was lost;
    then someone replaced o1.r1 at the venue's GUI to GUI-7 (20): the report names
    OrigClOrdID o1.r1, our pending replace id, which shows both replaces happened. The order
    follows the venue (GUI-7, 20, escalated) and GUI-7's fills match it. (Defect:
    `replaced_outside` asks OrigClOrdID == the live id o1 only; the report is refused as
    "not the pending request", without escalation; o1 stays PENDING_REPLACE under o1, a
    cancel would name o1, and the 5 filled under GUI-7 are an unmatched fill: position 0.)"""
    book = OrderBook()
    order = _ours(book)
    assert book.request_replace(ReplaceOrder(client_order_id="o1", qty=D(12)), 4).applied
    out = book.apply_exec(_replaced("GUI-7", "o1.r1", "20", "100", "0"), 5)
    assert out.applied, out.reason
    assert (order.cl_ord_id, order.qty) == ("GUI-7", 20)
    assert book.apply_exec(_fill("GUI-7", "F1", "5", "5", "20"), 6).applied
    assert order.cum_qty == 5 and book.position(V, "ABC").qty == 5
    assert book.unmatched_fills() == []


def test_a_fill_under_the_new_id_before_the_replaced_report_is_taken_by_the_order() -> None:
    """Reports reordered: 5 fill under GUI-7 before the Replaced report of o1 -> GUI-7 (cum
    0 at the replace) arrives. The fill matched no order then (unmatched, escalated); once
    the report says GUI-7 is o1, that fill is o1's: the position is the venue's 5 and no
    unmatched fill is left, as an adoption explains the unmatched fills under its ClOrdID.
    (Defect: the fill stays unmatched: position 0 while the venue holds 5 until a
    reconciliation pass infers it, and the unmatched record is never explained.)"""
    book = OrderBook()
    order = _ours(book)
    early = book.apply_exec(_fill("GUI-7", "F1", "5", "5", "20"), 4)
    assert [e.kind for e in early.escalations] == ["unmatched_fill"]
    assert book.apply_exec(_replaced("GUI-7", "o1", "20", "100", "0"), 5).applied
    assert order.cum_qty == 5 and book.position(V, "ABC").qty == 5
    assert book.unmatched_fills() == []


def test_an_outside_replace_taking_another_orders_clordid_is_escalated() -> None:
    """A garbled or hostile Replaced report: o1 (BUY 10 ABC) "replaced" by b1, the ClOrdID
    of another order of ours (SELL 3 XYZ, cancelled; a venue only refuses ClOrdIDs of live
    orders). The report names o1 as OrigClOrdID: it cannot be b1's own replace, nor can o1
    take b1's id; it needs a human (escalated), and b1 does not become o1's live id.
    (Defect: the report is routed to b1 by its ClOrdID and acked as a "duplicate", without
    a word; o1 keeps o1 while the venue moved it, and its fills under b1 then count on b1:
    XYZ -2 instead of ABC +2, only a late_fill said.)"""
    book = OrderBook()
    order = _ours(book)
    b = SubmitOrder(client_order_id="b1", venue=V, symbol="XYZ", side=Side.SELL, qty=D(3),
                    order_type=OrdType.LIMIT, price=D(7))  # fmt: skip
    assert book.submit(b, 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id="b1", approved=True), 2).applied
    assert book.apply_exec(_report("accepted", "b1", "B1"), 3).applied
    assert book.apply_exec(_report("cancelled", "b1", "B2"), 3).applied
    out = book.apply_exec(_replaced("b1", "o1", "20", "100", "0", exec_id="R9"), 5)
    assert out.kind != "duplicate", out.reason
    assert out.escalations, out
    assert book.find(V, "o1") is order


def _status_of_gui7(cum: str) -> ExecReport:
    """A venue status report: o1 lives as GUI-7 (20 @ 100, `cum` filled), OrigClOrdID o1."""
    return _report("status", "GUI-7", "ST1", orig_cl_ord_id="o1", order_qty=D(20),
                   price=D(100), cum_qty=D(cum), avg_px=D(100),
                   ord_status=S.PARTIALLY_FILLED)  # fmt: skip


def test_a_status_report_of_an_outside_replace_counts_the_fills_it_shows() -> None:
    """A status report shows o1 (BUY 10) replaced at the venue to GUI-7 (20) with 15 filled.
    The 15 are fills we missed on the order's new terms: position 15, no overfill. (Defect:
    `_status_report` catches up the fills before `apply_venue_status` takes the replace, so
    15 > the old qty 10 is refused as an overfill (a false escalation) and the 15 are
    lost - cum 0, position 0, the order ACCEPTED - until a later report or pass.)"""
    book = OrderBook()
    order = _ours(book)
    out = book.apply_exec(_status_of_gui7("15"), 5)
    assert "overfill" not in [e.kind for e in out.escalations], out.escalations
    assert (order.cl_ord_id, order.qty, order.cum_qty) == ("GUI-7", 20, 15)
    assert book.position(V, "ABC").qty == 15


def test_a_status_report_of_an_outside_replace_is_escalated() -> None:
    """A status report shows o1 (BUY 10) replaced at the venue to GUI-7 (20), nothing
    filled: the book follows it, and the outcome carries the `order_replaced_externally`
    escalation (the log, counter and alert come from it). (Defect: `_status_report` keeps
    `apply_venue_status`'s records but drops its escalations: the outside replace is
    followed without a log line, count or alert.)"""
    book = OrderBook()
    order = _ours(book)
    out = book.apply_exec(_status_of_gui7("0"), 5)
    assert out.applied and (order.cl_ord_id, order.qty) == ("GUI-7", 20), out.reason
    assert [e.kind for e in out.escalations] == ["order_replaced_externally"]
