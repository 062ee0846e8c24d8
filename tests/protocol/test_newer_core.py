"""An older client against a newer core (rolling upgrades): the replies, events and
control replies of a core that added fields this client's schema lacks are read as the
client knows them, not refused (before: every request timed out, every event was dropped).
The client's public calls, over fake sockets fed the current encoder's bytes."""

from __future__ import annotations

import threading
import typing
from collections import deque
from decimal import Decimal
from typing import Any

import pytest
import zmq

from protocol.client import ExecutionClient, OrderSpec
from protocol.codec import decode
from protocol.control import control_request
from protocol.exceptions import RiskRejected
from protocol.messages import (
    ErrorCode,
    OrderAck,
    OrderList,
    OrderStatus,
    Positions,
    PositionView,
    RequestRejected,
    StreamEvent,
)
from protocol.wire_out import dump
from tests.actor_stubs import Harness
from tests.protocol.event_stream_fakes import FakeSub, Oms, drain, make_stream
from tests.protocol.newer_core import NEWER, filled_event, frame, newer

# --------------------------------------------------------------------------- the client


class _NewerOms:
    """The client's DEALER, answered at once by a newer core (`answer`: the request's
    envelope -> the reply's type and wire body)."""

    def __init__(self, answer: typing.Callable[[Any], tuple[str, dict[str, Any]]]) -> None:
        self.answer = answer
        self.out: deque[list[bytes]] = deque()

    def send(self, packed: bytes, flags: int = 0, copy: bool = True) -> None:
        env = decode([packed])
        mtype, body = self.answer(env)
        self.out.append(frame(mtype, body, "" if mtype == "replies" else env.msg_id))

    def send_multipart(self, frames: list[bytes], flags: int = 0, copy: bool = True) -> None:
        (packed,) = frames
        self.send(packed)

    def poll(self, _ms: int) -> int:
        return 1 if self.out else 0

    def recv_multipart(self, flags: int = 0) -> list[bytes]:
        if not self.out:
            raise zmq.Again()
        return self.out.popleft()

    def close(self, linger: int = 0) -> None:
        pass


def _client(h: Harness, answer: Any) -> ExecutionClient:
    c = ExecutionClient(h.cfg, timeout_s=0.5, retry_interval_s=0.1)
    c._sock.close(0)
    c._sock = _NewerOms(answer)  # type: ignore[assignment]
    return c


def test_an_older_client_reads_a_newer_cores_replies(h: Harness) -> None:
    """Acks, pages, positions and refusals with fields the client does not know (at the
    top and inside their orders and positions) are read, not refused (before: every
    request of the client timed out)."""
    view = filled_event().order
    position = PositionView(venue="simA", symbol="AAPL", qty=Decimal(3))

    def answer(env: Any) -> tuple[str, dict[str, Any]]:
        t = env.body.type
        if t in ("submit_order", "get_order"):
            return "order_ack", newer(dump(OrderAck(order=view)), "order")
        if t == "list_orders":
            return "order_list", newer(dump(OrderList(orders=[view, view])), "orders")
        if t == "get_positions":
            return "positions", newer(dump(Positions(source="oms", positions=[position])),
                                       "positions")  # fmt: skip
        if t == "cancel_order":
            rej = RequestRejected(code=ErrorCode.RISK_REJECTED, reason="no", field="qty")
            return "request_rejected", newer(dump(rej))
        raise AssertionError(t)

    c = _client(h, answer)
    try:
        assert c.submit("simA", "AAPL", "BUY", "1", price="95") == view
        assert c.get_order("o-1") == view
        assert c.list_orders() == [view]
        assert c.positions() == [position]
        with pytest.raises(RiskRejected):
            c.cancel("o-1")
    finally:
        c.close()


def test_submit_many_reads_a_newer_cores_batched_replies(h: Harness) -> None:
    view = filled_event().order

    def answer(env: Any) -> tuple[str, dict[str, Any]]:
        items = env.body.orders
        body = newer(dump(OrderAck(order=view)), "order")
        return "replies", {"replies": [{"corr": i["id"], "type": "order_ack", "body": body}
                                       for i in items], **NEWER}  # fmt: skip

    c = _client(h, answer)
    try:
        specs = [OrderSpec("simA", "AAPL", "BUY", "1", price="95") for _ in range(3)]
        assert c.submit_many(specs) == [view] * 3
    finally:
        c.close()


@pytest.mark.parametrize("batched", [False, True])
def test_an_older_clients_event_stream_reads_a_newer_cores_events(batched: bool) -> None:
    """Lone events, a batch (new fields in it and in its items) and stream events: every
    one yielded, in sequence, as the client's schema reads them (no snapshot: no gap)."""
    sub = FakeSub()
    oms = Oms(sub)
    stream = make_stream(oms)
    events = [filled_event(OrderStatus.ACCEPTED, 1), filled_event(OrderStatus.FILLED, 2)]
    bodies = [newer(dump(e), "order") for e in events]
    if batched:
        sub.q.append(frame("order_events", {"events": bodies, **NEWER}))
    else:
        sub.q.extend(frame("order_event", b) for b in bodies)
    sub.q.append(frame("stream_event", {**dump(StreamEvent(event_seq=3, event="x")), **NEWER}))
    assert drain(stream, sub) == [*events, StreamEvent(event_seq=3, event="x")]
    assert oms.asked == 0


def test_a_control_client_reads_a_newer_daemons_reply(h: Harness) -> None:
    sock = h.control.sock

    def answer() -> None:
        if sock.poll(5000):
            frames = sock.recv_multipart()
            env = decode(frames[1:])
            reply = {"status": "ok", "reason": "", "data": {"a": 1}, **NEWER}
            sock.send_multipart([frames[0], *frame("control_reply", reply, env.msg_id)])

    t = threading.Thread(target=answer)
    t.start()
    try:
        assert control_request(h.cfg, "status", timeout_s=5.0).data == {"a": 1}
    finally:
        t.join(10)
