"""What a `VenueLink` keeps of the requests its connector acknowledged (issue 16, "RSS
flat after the first 10,000"): only a pending cancel/replace's id is ever compared (a
finished pass does not send again a cancel/replace the connector acknowledged), so a
placement's acknowledgement is not kept. It was, until the next periodic pass (30 s):
25,000 entries a venue at 1,500 orders/s, the OMS's largest growth after 10,000 orders."""

from __future__ import annotations

from decimal import Decimal

from actors.oms.venue_link import VenueLink
from protocol.messages import (
    Ack,
    CancelOnVenue,
    OrderStatus,
    OrdType,
    PlaceOrder,
    RiskVerdict,
    Side,
    SubmitOrder,
)
from tests.oms.test_venue_link import CONNECTED, StubOms, StubPeer, V, _complete_pass, _link


def _placed(link: VenueLink, oms: StubOms, peer: StubPeer, coid: str) -> None:
    """`coid` approved, sent and acknowledged by the connector."""
    msg = SubmitOrder(
        client_order_id=coid, venue=V, symbol="AAPL", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=Decimal("95"),
    )  # fmt: skip
    oms.book.submit(msg, 1)
    oms.book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2)
    link.enqueue(coid)
    link.dispatch()
    assert isinstance(peer.answer(Ack(ref="x")), PlaceOrder)


def test_acknowledged_placements_are_not_kept() -> None:
    """1,000 placements acknowledged leave nothing behind in the link."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    for n in range(1000):
        _placed(link, oms, peer, f"p-{n}")
    assert link._sent.acked == {}  # noqa: SLF001 (the bound under test)


def test_an_acknowledged_cancel_is_still_kept() -> None:
    """A pending cancel the connector acknowledged is remembered by its id, after a
    placement acknowledged before it, so a finished pass does not send it again."""
    link, oms, peer = _link()
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)
    _placed(link, oms, peer, "c-1")
    oms.book.apply_venue_status("c-1", OrderStatus.ACCEPTED, 3)
    oms.book.request_cancel("c-1", 4)
    link.enqueue("c-1")
    link.dispatch()
    cancel = peer.answer(Ack(ref="y"))
    assert isinstance(cancel, CancelOnVenue)
    order = oms.book.held("c-1")
    assert order is not None and order.pending_cl_ord_id == cancel.cl_ord_id
    assert link._sent.acked == {"c-1": cancel.cl_ord_id}  # noqa: SLF001
