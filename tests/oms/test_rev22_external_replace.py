"""rev22 review of `extfix`: failing tests for defects in following an outside replace."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from actors.oms.order_book import OrderBook
from actors.oms.reconcile import apply_plan, plan_reconciliation
from protocol.messages import OrderStatus, OrdType, RiskVerdict, Side, SubmitOrder
from tests.oms.test_external_replace import _fill, _ours, _replaced, _report, _vo
from tests.oms.test_sends_first import V

S = OrderStatus


@pytest.mark.parametrize("kind", ["replaced", "status"])
def test_an_outside_replace_without_order_qty_does_not_end_the_order_on_its_old_qty(
    kind: str,
) -> None:
    """o1 (BUY 10, V-1) is replaced at the venue to GUI-7 (20); the Replaced report carries
    no OrderQty (FIX 38 is conditional: CashOrderQty instead). GUI-7's new qty is unknown,
    as for a fill without it (rev20 #5: "the order must not end on its old qty"); then F1,
    10 under GUI-7 (venue cum 10, order qty 20). The order works 10 more at the venue: it
    must not end FILLED. Then GUI-8 replaces GUI-7 (30, cum 10), and a pass lists GUI-8
    (V-1, cum 10): one order, the position the venue's 10. (Defect: `follow` takes the
    old qty 10 for GUI-7, so F1 ends o1 FILLED at 10 - dead in the OMS and risk while the
    venue works it; a fill after it is refused as an overfill; GUI-8's Replaced report is
    refused "not allowed in FILLED" without escalation, and the pass, whose venue-order-id
    link skips terminal orders, adopts GUI-8 at cum 10: the 10 booked twice, position 20.)"""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").kind != "refused"
    no_qty = _replaced("GUI-7", "o1", "20", "100", "0").model_copy(
        update={"kind": kind, "order_qty": None, "ord_status": S.ACCEPTED}
    )
    book.apply_exec(no_qty, 5)
    book.apply_exec(_fill("GUI-7", "F1", "10", "10", "20"), 6)
    assert not order.is_terminal, (order.status, order.qty, order.cum_qty)
    book.apply_exec(_replaced("GUI-8", "GUI-7", "30", "100", "10", exec_id="R2"), 7)
    plan = plan_reconciliation(V, book.orders(V), [_vo("GUI-8", "30", "10")], {}, set())
    apply_plan(book, plan, 8)
    assert [o.client_order_id for o in book.orders(V)] == ["o1"], plan.actions
    assert book.position(V, "ABC").qty == 10


@pytest.mark.parametrize("last_qty", ["0", "-5"])
def test_a_fill_without_a_positive_qty_naming_our_id_as_orig_is_no_unmatched_fill(
    last_qty: str,
) -> None:
    """A "fill" under GUI-7 naming o1 as OrigClOrdID, without its order qty (so the replace
    is not followed, rev20 #5) and with LastQty 0 (or negative: garbled) is no trade:
    `OrderBook.apply_exec` records an unmatched fill only for a positive qty, and on main
    it was refused as a bad fill. (Defect: `executions._outside_fill` records it through
    `record_unmatched`, bypassing that check: an ``unmatched_fill`` of 0 (or -5) ABC is
    journalled for good, escalated as a trade the book cannot account for (the kill
    switch engaged) and again by every pass; a negative one widens the room
    `adoption.explained` finds in an adopted cum, so a real fill may be settled away.)"""
    book = OrderBook()
    _ours(book)
    assert book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").kind != "refused"
    garbled = _report("fill", "GUI-7", "F1", orig_cl_ord_id="o1", last_qty=D(last_qty),
                      last_px=D(100), avg_px=D(100))  # fmt: skip
    out = book.apply_exec(garbled, 5)
    assert book.unmatched_fills() == [], out
    assert "unmatched_fill" not in {e.kind for e in out.escalations}


def test_an_order_a_pass_found_filled_is_linked_by_the_venue_order_id_the_pass_saw() -> None:
    """o1 (BUY 10) was sent and its ack lost (PENDING_SUBMIT); a pass lists it (V-1, 4
    filled): o1 is caught up to 4 and works on. Then o1 is replaced at the venue to GUI-7
    (20), the Replaced report lost; the next pass lists GUI-7 (V-1, cum 4). o1's venue
    order is V-1 - the first pass saw it - so GUI-7 is o1 replaced: one order, position
    the venue's 4. (Defect: the first pass books the missed fill (`ApplyMissedFill`, no
    venue order id) and, o1 no longer PENDING_SUBMIT after it, plans no `Update` carrying
    V-1 - unlike an order it finds unfilled: o1 keeps no venue order id, the venue-order-id
    link (`PlanBuilder._replaced_outside`) skips it, GUI-7 is adopted at cum 4 on top: the
    4 booked twice, position 8, o1 escalated every pass as having no venue evidence.)"""
    book = OrderBook()
    msg = SubmitOrder(client_order_id="o1", venue=V, symbol="ABC", side=Side.BUY, qty=D(10),
                      order_type=OrdType.LIMIT, price=D(100))  # fmt: skip
    assert book.submit(msg, 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id="o1", approved=True), 2).applied
    apply_plan(book, plan_reconciliation(V, book.orders(V), [_vo("o1", "10", "4")], {}, set()), 3)
    order = book.get("o1")
    assert order is not None and order.cum_qty == 4
    plan = plan_reconciliation(V, book.orders(V), [_vo("GUI-7", "20", "4")], {}, set())
    apply_plan(book, plan, 4)
    assert [o.client_order_id for o in book.orders(V)] == ["o1"], plan.actions
    assert book.position(V, "ABC").qty == 4


def test_a_fill_of_another_venue_order_under_an_outside_id_is_not_booked_on_ours() -> None:
    """o1 (BUY 10 ABC, V-1) followed an outside replace to GUI-7 (20), so GUI-7 is one of
    its ClOrdIDs now. An external party's ClOrdIDs are unique only per session and day
    (rev20 #2, `outside_replace.foreign`): a fill under GUI-7 of SELL XYZ, venue order V-9,
    is another order's. It must not be booked on o1. (Defect: `foreign` checks only reports
    routed by OrigClOrdID; a fill routed by ClOrdID is applied to o1 whatever its symbol,
    side or venue order: 5 XYZ sold booked as 5 ABC bought, no escalation - and on a
    finished o1 as a late fill. Our own ClOrdIDs never had this exposure before extfix.)"""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").kind != "refused"
    assert book.apply_exec(_replaced("GUI-7", "o1", "20", "100", "0"), 5).applied
    other = _fill("GUI-7", "F9", "5", "5", "50").model_copy(
        update={"symbol": "XYZ", "side": Side.SELL, "venue_order_id": "V-9"}
    )
    out = book.apply_exec(other, 6)
    assert order.cum_qty == 0, (out.kind, out.escalations)
    assert book.position(V, "ABC").qty == 0


def test_a_torn_outside_fill_leaves_no_fill_unmatched_for_good() -> None:
    """F0 (3 under GUI-7, venue cum 3) came unmatched; F1 (7 under GUI-7, cum 10, order
    qty 20, OrigClOrdID o1) follows the replace and places F0 (rev20 #5). kill -9 tears the
    journal's tail after the outcome's first record (o1 follows GUI-7; F0's and F1's fill
    records lost). On restart the connector sends F1 again (never acked): applied, cum 7.
    The pass lists GUI-7 (cum 10) and catches o1 up by 3 - F0's 3: o1 holds the venue's
    10, so F0, a fill of that venue order under GUI-7 within cum 10, is accounted for
    (settled, as `adoption.settle` does for a catch-up). (Defect: `adoption.caught_up` takes
    out only fills within the catch-up's own cum range (7, 10]; F0 (0, 3] stays unmatched
    for good - escalated every pass as 3 ABC the book cannot account for, though the
    position holds them: a standing false alarm an operator may "repair" by booking the 3
    a second time. Nothing places it: the resent F1 takes the ordinary fill path.)"""
    book = OrderBook()
    _ours(book)
    assert book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").kind != "refused"
    before = book.to_dict()
    records = list(book.apply_exec(_fill("GUI-7", "F0", "3", "3", "20"), 5).records)
    f1 = _fill("GUI-7", "F1", "7", "10", "20").model_copy(update={"orig_cl_ord_id": "o1"})
    out = book.apply_exec(f1, 6)
    assert [r["kind"] for r in out.records] == ["event", "fill", "fill"], out.records
    restarted = OrderBook.from_dict(before)
    for rec in records + [out.records[0]]:  # the torn tail: the outcome's first record only
        restarted.apply_record(rec)
    assert restarted.apply_exec(f1, 7).applied
    plan = plan_reconciliation(V, restarted.orders(V), [_vo("GUI-7", "20", "10")], {}, set())
    apply_plan(restarted, plan, 8)
    assert restarted.position(V, "ABC").qty == 10
    assert restarted.unmatched_fills() == []


@pytest.mark.parametrize("price", ["0", "-5"])
def test_an_outside_replace_to_a_price_no_limit_order_has_is_not_followed(price: str) -> None:
    """A garbled Replaced report: o1 (LIMIT BUY 10 @ 100) replaced at the venue by GUI-7 to
    20 @ 0 (or -5). No venue makes a limit order of a price that is not positive (the OMS
    refuses one: `terms_problem`, `cancel_replace.request_replace`); like a replace below
    the filled qty (rev17 #2) it is refused and escalated, the order left as it was.
    (Defect: `outside_replace.implausible` checks only the qty: o1 follows to price 0 / -5,
    its view shows it, and every qty-only replace of the client is then refused "invalid
    price for the order type".)"""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").kind != "refused"
    out = book.apply_exec(_replaced("GUI-7", "o1", "20", price, "0"), 5)
    assert (order.cl_ord_id, order.qty, order.price) == ("o1", 10, 100), out
    assert "bad_replace_report" in {e.kind for e in out.escalations}
