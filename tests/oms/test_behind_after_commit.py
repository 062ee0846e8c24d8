"""A request waiting behind its order's request in flight (actors/oms/link_sent.py) is sent
after the turn's commit, never from inside the Peer's callback (found by review): cancel C1
in flight; a periodic pass ends meanwhile and its requeue puts the order behind C1; the
venue rejects C1 (35=9, overtaking the connector's Ack as the venue's New can); the client
asks a cancel again (C2, recorded, its push registered after the commit); then, in the same
turn, the connector's Ack of C1 arrives: C2 went out before its journal commit."""

from __future__ import annotations

from decimal import Decimal

from actors.oms.lifecycle import Event
from protocol.messages import (
    Ack,
    CancelOnVenue,
    GetPositions,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatus,
    PlaceOrder,
    Positions,
    Side,
)
from protocol.venue_messages import VenueOrder
from tests.oms.test_cancel_during_place import placing
from tests.oms.test_venue_link import CONNECTOR, V


def test_nothing_uncommitted_is_sent_at_the_ack_of_the_request_in_flight() -> None:
    link, oms, peer = placing()
    book = oms.book
    assert isinstance(peer.answer(Ack(ref="p")), PlaceOrder)
    book.apply_venue_status("x-1", OrderStatus.ACCEPTED, 3)
    assert book.request_cancel("x-1", 4).applied
    link.push("x-1")  # after the cancel's commit
    [(c1, c1_cb)] = peer.sent
    assert isinstance(c1, CancelOnVenue)
    peer.sent.clear()  # C1 stays in flight; a periodic pass runs meanwhile
    link.start_reconcile()
    live = VenueOrder(
        cl_ord_id="x-1", venue_order_id="V-1", symbol="AAPL", side=Side.BUY,
        order_qty=Decimal(1), price=Decimal("95"), status=OrderStatus.ACCEPTED,
        leaves_qty=Decimal(1),
    )  # fmt: skip
    assert isinstance(peer.answer(OpenOrders(venue=V, orders=[live])), OpenOrdersRequest)
    assert isinstance(peer.answer(Positions(source="venue", venue=V, positions=[])), GetPositions)
    assert peer.sent == [] and link.is_in_flight("x-1")  # requeued: waits behind C1
    # the venue rejects C1 (its 35=9 overtakes the connector's Ack of C1)
    out = book.record_event("x-1", Event.CANCEL_REJECTED, 5, reason="too late")
    assert out.applied and book.get("x-1").status is OrderStatus.ACCEPTED
    # same loop turn: the client cancels again; recorded, NOT committed (push comes after)
    assert book.request_cancel("x-1", 6).applied
    c2 = book.get("x-1").pending_cl_ord_id
    assert c2 != c1.cl_ord_id
    c1_cb(CONNECTOR.envelope(Ack(ref="c1")))  # same turn: the connector's Ack of C1
    sent = [b.cl_ord_id for b, _ in peer.sent]
    assert c2 not in sent, f"cancel {c2} sent before its journal commit (no push yet): {sent}"
    oms.commit()  # the turn's commit, then its sends: C2 once
    assert [b.cl_ord_id for b, _ in peer.sent] == [c2]
