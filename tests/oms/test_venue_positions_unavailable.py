"""A venue that does not serve positions (issue 11, finding 2, the AN half): its
RequestForPositions is refused (BusinessMessageReject 380=3), yet reconciliation completes
without venue positions, logged once per connector incarnation, and orders flow."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from actors.oms.venue_link import VenueLink
from protocol.messages import (
    ErrorCode,
    GetPositions,
    OpenOrders,
    OpenOrdersRequest,
    RequestRejected,
    VenueConnState,
)
from tests.oms.test_venue_link import StubOms, StubPeer, V

AN_REFUSED = RequestRejected(
    code=ErrorCode.VENUE_REFUSED, reason="BusinessMessageReject of AN: 380=3 unsupported MsgType AN"
)


def test_a_pass_completes_without_venue_positions_when_the_venue_refuses_them() -> None:
    oms, peer = StubOms(), StubPeer()
    link = VenueLink(V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger())
    with capture_logs() as logs:
        link.on_state(VenueConnState.CONNECTED, 7, "logged on")
        assert isinstance(peer.answer(OpenOrders(venue=V, orders=[])), OpenOrdersRequest)
        assert isinstance(peer.answer(AN_REFUSED), GetPositions)
        assert link.ready and oms.reconciled == [True] and oms.timers == []
        link.start_reconcile()  # a second pass of the same incarnation: not logged again
        peer.answer(OpenOrders(venue=V, orders=[]))
        peer.answer(AN_REFUSED)
        link.on_state(VenueConnState.CONNECTED, 8, "logged on")  # a new incarnation: again
        peer.answer(OpenOrders(venue=V, orders=[]))
        peer.answer(AN_REFUSED)
    assert oms.reconciled == [True, False, False] and link.ready
    unavailable = [e for e in logs if e["event"] == "venue_positions_unavailable"]
    assert len(unavailable) == 2 and "380=3" in unavailable[0]["reason"]
    assert not any(e["event"] == "reconcile_failed" for e in logs)
    assert link.retry.failures == 0


def test_the_connector_down_still_fails_the_pass() -> None:
    """VENUE_DOWN (nothing was sent) is no refusal by the venue: the pass fails."""
    oms, peer = StubOms(), StubPeer()
    link = VenueLink(V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger())
    link.on_state(VenueConnState.CONNECTED, 7, "logged on")
    peer.answer(OpenOrders(venue=V, orders=[]))
    peer.answer(RequestRejected(code=ErrorCode.VENUE_DOWN, reason="not logged on"))
    assert not link.ready and oms.reconciled == [] and link.retry.failures == 1


def test_a_positions_timeout_fails_the_pass_rather_than_skipping_positions() -> None:
    """A venue slow to answer AN does serve positions: a TIMEOUT fails the pass (retried),
    so a cold start does not take flat opening positions for good (found by review)."""
    oms, peer = StubOms(), StubPeer()
    link = VenueLink(V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger())
    link.on_state(VenueConnState.CONNECTED, 7, "logged on")
    peer.answer(OpenOrders(venue=V, orders=[]))
    peer.answer(RequestRejected(code=ErrorCode.TIMEOUT, reason="no answer within 5.0 s"))
    assert not link.ready and oms.reconciled == [] and link.retry.failures == 1
