"""`ExecutionClient.events(statuses=...)`: a client that waits for some statuses does not
decode the events of the others (every client sees every event of every order)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest

import protocol.client as client_mod
from protocol.client import ExecutionClient
from protocol.messages import OrderEvent, OrderStatus, OrderView, OrdType, Side, StreamEvent
from tests.actor_stubs import Harness


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(venues=("simA",))
    yield harness
    harness.close()


def _event(status: OrderStatus) -> OrderEvent:
    view = OrderView(
        client_order_id="a", venue="simA", symbol="AAPL", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=Decimal(95), status=status,
    )  # fmt: skip
    return OrderEvent(event_seq=0, order=view)


def _joined(h: Harness, client: ExecutionClient) -> None:
    """Publish probes until the subscription has joined (PUB drops what comes before)."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        h.oms.publish(StreamEvent(event_seq=0, event="probe"))
        if any(isinstance(e, StreamEvent) for e in client.events(timeout_s=0.05)):
            return
    raise AssertionError("the client's subscription never joined")


def test_events_of_other_statuses_are_sequenced_not_decoded(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only ACCEPTED and FILLED order events (and stream events) come out, in sequence;
    the PENDING_RISK and PENDING_SUBMIT ones are not decoded, and raise no gap."""
    client = ExecutionClient(h.cfg, timeout_s=1.0)
    try:
        client.subscribe()
        _joined(h, client)
        decoded = []
        decode = client_mod.decode
        monkeypatch.setattr(client_mod, "decode", lambda f: decoded.append(1) or decode(f))
        for status in (OrderStatus.PENDING_RISK, OrderStatus.PENDING_SUBMIT,
                       OrderStatus.ACCEPTED):  # fmt: skip
            h.oms.publish(_event(status))
        h.oms.publish(StreamEvent(event_seq=0, event="venue_state"))
        h.oms.publish(_event(OrderStatus.FILLED))
        wanted = {OrderStatus.ACCEPTED, OrderStatus.FILLED}
        got = list(client.events(timeout_s=0.5, statuses=wanted))
    finally:
        client.close()
    assert [e.order.status if isinstance(e, OrderEvent) else type(e).__name__ for e in got] == [
        OrderStatus.ACCEPTED,
        "StreamEvent",
        OrderStatus.FILLED,
    ]
    assert [e.event_seq for e in got] == [h.oms.event_seq - 2, h.oms.event_seq - 1, h.oms.event_seq]
    assert len(decoded) == 3
