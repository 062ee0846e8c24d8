"""The open-order snapshot is one reply only up to SNAPSHOT_MAX_ORDERS: more is refused
(BAD_REQUEST, naming list_orders), so the OMS never builds a reply over the codec's 4 MiB
in one loop turn (20,000 open orders: 4.5 MiB and 0.8 s, the OMS killed as hung)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.oms import reads
from actors.oms.order_book import OrderBook
from protocol.messages import (
    ErrorCode,
    OrdType,
    RequestRejected,
    RiskVerdict,
    Side,
    Snapshot,
    SubmitOrder,
)


def _book(n: int) -> OrderBook:
    book = OrderBook()
    for i in range(n):
        coid = f"c{i}"
        order = SubmitOrder(
            client_order_id=coid, venue="v", symbol="S", side=Side.BUY, qty=Decimal(1),
            order_type=OrdType.LIMIT, price=Decimal(100),
        )  # fmt: skip
        book.submit(order, 1)
        book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2)
    return book


def test_snapshot_up_to_the_limit_and_refused_over_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reads, "SNAPSHOT_MAX_ORDERS", 3)
    snap = reads.snapshot(_book(3), 7)
    assert isinstance(snap, Snapshot) and len(snap.orders) == 3 and snap.event_seq == 7
    refused = reads.snapshot(_book(4), 7)
    assert isinstance(refused, RequestRejected) and refused.code is ErrorCode.BAD_REQUEST
    assert "4 open orders" in refused.reason and "list_orders" in refused.reason
