"""A fake SUB socket and a scripted OMS request for `EventStream` (no zmq, no processes):
the stream's edges in tests/protocol/test_event_stream_edges.py."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from protocol.codec import Sender
from protocol.event_stream import EventStream
from protocol.messages import (
    ErrorCode,
    Message,
    OrderEvent,
    OrderStatus,
    OrderView,
    OrdType,
    RequestRejected,
    Side,
    Snapshot,
    SnapshotRequest,
    StreamEvent,
)


class FakeSub:
    def __init__(self) -> None:
        self.q: deque[list[bytes]] = deque()

    def poll(self, _ms: int) -> int:
        return 1 if self.q else 0

    def recv_multipart(self) -> list[bytes]:
        return self.q.popleft()


def order_event(coid: str, seq: int, status: OrderStatus = OrderStatus.ACCEPTED) -> OrderEvent:
    view = OrderView(
        client_order_id=coid, venue="simA", symbol="AAPL", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=Decimal(95), status=status,
    )  # fmt: skip
    return OrderEvent(event_seq=seq, order=view)


class Oms:
    """Publishes onto the fake SUB; answers snapshot requests as scripted."""

    def __init__(self, sub: FakeSub) -> None:
        self.sub = sub
        self.answers: deque[tuple[int, Message]] = deque()
        self.asked = 0

    def pub(self, epoch: int, body: Any) -> None:
        self.sub.q.append(Sender("oms", epoch).encode(body))

    def request(self, body: Message) -> tuple[int, Message]:
        assert isinstance(body, SnapshotRequest)
        self.asked += 1
        return self.answers.popleft()


def refused_error(reply: Message) -> Exception:
    return RuntimeError(f"refused: {reply}")


def make_stream(oms: Oms) -> EventStream:
    return EventStream(oms.request, refused_error)


def drain(stream: EventStream, sub: FakeSub, limit: int = 100) -> list[Any]:
    """What the stream yields until the fake socket is empty (calls with timeout 0, each
    reading one message at least; a call that raises raises here)."""
    out: list[Any] = []
    while True:
        before = len(out)
        for ev in stream.events(sub, 0.0, None):  # type: ignore[arg-type]
            out.append(ev)
            if len(out) >= limit:
                return out
        if not sub.q and len(out) == before:
            return out


def names(evs: list[Any]) -> list[str]:
    out = []
    for e in evs:
        if isinstance(e, Snapshot):
            out.append(f"SNAP@{e.event_seq}")
        elif isinstance(e, OrderEvent):
            out.append(e.order.client_order_id)
        elif isinstance(e, StreamEvent):
            out.append(f"stream:{e.event}")
    return out


NOT_READY = RequestRejected(code=ErrorCode.NOT_READY, reason="x")
Unused = Callable[[], None]
