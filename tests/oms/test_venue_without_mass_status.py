"""A venue that does not serve OrderMassStatusRequest (issue 11, finding 2, the AF half):
the connector answers OpenOrdersRequest VENUE_REFUSED. The pass goes on with no open-orders
list: every open local order is asked by OrderStatusRequest, in chunks, one chunk in
flight, each given the time the venue's rate limit needs; nothing is adopted; the
fallback is logged once per connector incarnation. Ledger positions are not compared."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
import structlog
from structlog.testing import capture_logs

from actors.oms import reconcile_pass
from actors.oms.venue_link import VenueLink
from protocol.codec import Envelope
from protocol.messages import (
    ErrorCode,
    GetPositions,
    Message,
    OpenOrdersRequest,
    OrderStatusAnswer,
    OrderStatusQuery,
    OrdType,
    Positions,
    PositionView,
    RequestRejected,
    RiskVerdict,
    Side,
    SubmitOrder,
    VenueConnState,
)
from tests.oms.test_venue_link import StubOms, StubPeer, V

AF_REFUSED = RequestRejected(
    code=ErrorCode.VENUE_REFUSED, reason="the venue does not serve OrderMassStatusRequest (AF)"
)


def _open_orders(oms: StubOms, n: int) -> None:
    for i in range(n):
        coid = f"o{i}"
        order = SubmitOrder(
            client_order_id=coid, venue=V, symbol="AAPL", side=Side.BUY, qty=Decimal(1),
            order_type=OrdType.LIMIT, price=Decimal("95"),
        )  # fmt: skip
        oms.book.submit(order, 1)
        oms.book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2)


class _TimedPeer(StubPeer):
    """Records each request's timeout too."""

    def __init__(self) -> None:
        super().__init__()
        self.timeouts: list[float] = []

    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> str:
        self.timeouts.append(timeout_s)
        return super().request(body, callback, timeout_s)


def test_without_af_every_open_order_is_asked_by_h_in_paced_chunks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reconcile_pass, "STATUS_CHUNK", 2)
    oms, peer = StubOms(), _TimedPeer()
    _open_orders(oms, 5)
    link = VenueLink(
        V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger(), status_rate_per_s=1.0
    )
    with capture_logs() as logs:
        link.on_state(VenueConnState.CONNECTED, 7, "logged on")
        assert isinstance(peer.answer(AF_REFUSED), OpenOrdersRequest)
        chunks = []
        while isinstance(peer.sent[0][0], OrderStatusQuery):
            assert len(peer.sent) == 1  # one chunk in flight
            query = peer.sent[0][0]
            chunks.append(query.cl_ord_ids)
            peer.answer(OrderStatusAnswer(venue=V, orders=[], unknown=query.cl_ord_ids))
        assert isinstance(peer.sent[0][0], GetPositions)
        ledger = [PositionView(venue=V, symbol="AAPL", qty=Decimal(3))]
        peer.answer(Positions(source="ledger", venue=V, positions=ledger))
    assert sorted(c for chunk in chunks for c in chunk) == sorted(
        o.cl_ord_id for o in oms.book.orders(V)
    )
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert peer.timeouts[1:4] == [7.0, 7.0, 6.0]  # 5 s + 2 (or 1) H at 1 H/s
    assert link.ready and oms.reconciled == [True]
    (plan,) = oms.plans
    assert not any(type(a).__name__ == "Adopt" for a in plan.actions)
    events = [e["event"] for e in logs]
    assert events.count("venue_open_orders_unavailable") == 1
    assert events.count("venue_positions_unavailable") == 1  # ledger positions: not compared
    assert "reconcile_failed" not in events
