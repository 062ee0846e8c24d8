"""rev20 review of `extfix`: failing tests for defects in following an outside replace."""

from __future__ import annotations

from decimal import Decimal as D

from actors.oms.order_book import OrderBook
from actors.oms.reconcile import apply_plan, plan_reconciliation
from protocol.messages import OrderStatus, Side, VenueOrder
from tests.oms.test_external_replace import _ours
from tests.oms.test_sends_first import V

S = OrderStatus


def test_an_order_answered_under_its_own_id_is_not_linked_by_venue_order_id() -> None:
    """Our o1 (BUY 10 ABC, venue order id V-1) filled at the venue, its fill reports lost;
    the venue (which recycles order ids) then gave V-1 to someone else's BUY 20 ABC,
    FOREIGN-9, 4 filled. A pass: the venue lists FOREIGN-9 open, and answers the status
    query for o1 under o1's own ClOrdID: FILLED 10. The venue says what became of o1, so
    FOREIGN-9 is not o1 replaced: o1 is FILLED (10 missed), FOREIGN-9 adopted, position
    10 + 4. (Defect: `PlanBuilder._replaced_outside` links FOREIGN-9 to o1 before o1's
    answer is looked at, and o1, then "matched", never gets it: o1 lives on as FOREIGN-9
    (20, 4 filled), its 10 are lost (position 4), and a cancel of o1 - or the kill
    switch's - is sent for someone else's order.)"""
    book = OrderBook()
    order = _ours(book)
    assert book.apply_venue_status("o1", S.ACCEPTED, 4, venue_order_id="V-1").kind != "refused"
    assert order.venue_order_id == "V-1"
    foreign = VenueOrder(cl_ord_id="FOREIGN-9", venue_order_id="V-1", symbol="ABC",
                         side=Side.BUY, order_qty=D(20), price=D(100),
                         status=S.PARTIALLY_FILLED, cum_qty=D(4), avg_px=D(100),
                         leaves_qty=D(16))  # fmt: skip
    answer = VenueOrder(cl_ord_id="o1", venue_order_id="V-1", symbol="ABC", side=Side.BUY,
                        order_qty=D(10), price=D(100), status=S.FILLED, cum_qty=D(10),
                        avg_px=D(100), leaves_qty=D(0))  # fmt: skip
    plan = plan_reconciliation(V, book.orders(V), [foreign], {"o1": answer}, set())
    apply_plan(book, plan, 5)
    assert (order.cl_ord_id, order.qty) == ("o1", 10), plan.actions
    assert order.status is S.FILLED and order.cum_qty == 10
    assert book.find(V, "FOREIGN-9") is not order
    assert book.position(V, "ABC").qty == 14
