"""A cancel asked while the order's placement is in flight to the connector (the venue's
New overtook the connector's Ack) is sent as soon as the placement is acknowledged. It was
dropped from the link's queue by `dispatch` (its order in flight) and waited for the next
reconciliation pass's requeue, seconds later (found by the omsrss review). The placement
itself is never sent twice."""

from __future__ import annotations

from decimal import Decimal

from actors.oms.venue_link import VenueLink
from protocol.messages import (
    Ack,
    OrderStatus,
    OrdType,
    PlaceOrder,
    RiskVerdict,
    Side,
    SubmitOrder,
)
from tests.oms.test_venue_link import CONNECTED, StubOms, StubPeer, V, _complete_pass, _link


def placing() -> tuple[VenueLink, StubOms, StubPeer]:
    """A reconciled link whose order x-1 (approved) is pushed: its PlaceOrder in flight."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    msg = SubmitOrder(
        client_order_id="x-1", venue=V, symbol="AAPL", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=Decimal("95"),
    )  # fmt: skip
    oms.book.submit(msg, 1)
    oms.book.risk_verdict(RiskVerdict(client_order_id="x-1", approved=True), 2)
    link.push("x-1")
    return link, oms, peer


def test_cancel_asked_while_placement_in_flight_is_sent_after_the_ack() -> None:
    link, oms, peer = placing()
    assert isinstance(peer.sent[-1][0], PlaceOrder)  # in flight, not yet answered
    # the venue's New (exec report, on the OMS's router) beats the connector's Ack (reply)
    oms.book.apply_venue_status("x-1", OrderStatus.ACCEPTED, 3)
    out = oms.book.request_cancel("x-1", 4)
    assert out.applied and oms.book.get("x-1").status is OrderStatus.PENDING_CANCEL
    link.push("x-1")  # as intake does after the commit
    assert isinstance(peer.answer(Ack(ref="p")), PlaceOrder)
    oms.commit()  # the turn's commit, then its sends
    kinds = [type(b).__name__ for b, _ in peer.sent]
    assert kinds == ["CancelOnVenue"], kinds  # at the Ack, no pass


def test_a_placement_pushed_again_while_in_flight_is_not_sent_twice() -> None:
    link, oms, peer = placing()
    link.push("x-1")  # again while in flight: the same request
    assert [type(b).__name__ for b, _ in peer.sent] == ["PlaceOrder"]
    assert isinstance(peer.answer(Ack(ref="p")), PlaceOrder)
    assert peer.sent == [] and not link.is_waiting("x-1")  # not sent again
