"""An older client against a newer core (rolling upgrades): the replies, events and
control replies of a core that added fields this client's schema lacks are read as the
client knows them, not refused (before: every request timed out, every event was dropped).
The client's public calls, over fake sockets fed the current encoder's bytes."""

from __future__ import annotations

import threading
import time
import typing
from collections import deque
from decimal import Decimal
from typing import Any

import msgspec
import pytest
import zmq

from protocol.client import ExecutionClient, IncompatibleCore, OrderSpec, Timeout
from protocol.codec import decode
from protocol.control import control_request
from protocol.control_binder import write_identity
from protocol.exceptions import RiskRejected
from protocol.messages import (
    ErrorCode,
    OrderAck,
    OrderList,
    OrderStatus,
    Positions,
    PositionView,
    RequestRejected,
    Snapshot,
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
    write_identity(h.cfg.runtime_path)  # this process bound the control socket: the supervisor

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


# --------------------------------------------------------------------------- a newer enum value


def _busted(body: dict[str, Any], *path: str | int) -> dict[str, Any]:
    """`body` with the order status at `path` a value this client's `OrderStatus` lacks."""
    target: Any = body
    for key in path:
        target = target[key]
    target["status"] = "SUSPENDED"
    return body


def test_a_reply_this_client_cannot_read_raises_at_once_not_at_the_deadline(h: Harness) -> None:
    """The OMS answered, in a newer core's enum value: resending gets the same answer, so
    the call raises `IncompatibleCore` (a `Timeout`: a submit's order may exist) naming the
    field, at once, after one request (before: resent every retry interval until the
    deadline, then a `Timeout` saying no answer came)."""
    asked: list[str] = []

    def answer(env: Any) -> tuple[str, dict[str, Any]]:
        asked.append(env.body.type)
        return "order_ack", _busted(dump(OrderAck(order=filled_event().order)), "order")

    c = ExecutionClient(h.cfg, timeout_s=8.0, retry_interval_s=0.05)
    c._sock.close(0)
    c._sock = _NewerOms(answer)  # type: ignore[assignment]
    try:
        started = time.monotonic()
        with pytest.raises(IncompatibleCore, match=r"order\.status': 'SUSPENDED'") as raised:
            c.get_order("o-1")
        assert isinstance(raised.value, Timeout)
        assert time.monotonic() - started < 5.0  # not the 8 s deadline
        assert asked == ["get_order"]
        (outcome,) = c.submit_many([OrderSpec("simA", "AAPL", "BUY", "1", price="95")])
        assert isinstance(outcome, IncompatibleCore)
        assert asked == ["get_order", "submit_order"]
    finally:
        c.close()


class _NewerEnvelope(_NewerOms):
    """Answers in an envelope this client's codec refuses (a newer `v`, a header field)."""

    def send(self, packed: bytes, flags: int = 0, copy: bool = True) -> None:
        env = decode([packed])
        mtype, body = self.answer(env)
        head = msgspec.msgpack.decode(frame(mtype, body, env.msg_id)[0])
        self.out.append([msgspec.msgpack.encode({**head, "v": 2, "trace": "t-1"})])


def test_a_reply_in_a_newer_envelope_raises_at_once(h: Harness) -> None:
    """The envelope is not compatible (docs/architecture.md "Compatibility"), but the
    reply's correlation id is read alone: the call says so at once."""
    c = ExecutionClient(h.cfg, timeout_s=8.0, retry_interval_s=0.05)
    c._sock.close(0)
    ack = dump(OrderAck(order=filled_event().order))
    c._sock = _NewerEnvelope(lambda _env: ("order_ack", ack))  # type: ignore[assignment]
    try:
        started = time.monotonic()
        with pytest.raises(IncompatibleCore, match="trace|version"):
            c.get_order("o-1")
        assert time.monotonic() - started < 5.0
    finally:
        c.close()


def test_submit_many_items_this_client_cannot_read_are_their_outcome_at_once(h: Harness) -> None:
    """In a `Replies`, an item in a newer core's enum value is that order's outcome
    (`IncompatibleCore`), the others read; nothing is resent (before: resent until the
    deadline, then `Timeout`)."""
    view = filled_event().order
    asked: list[int] = []

    def answer(env: Any) -> tuple[str, dict[str, Any]]:
        if env.body.type == "submit_order":  # one resent alone
            asked.append(1)
            return "order_ack", _busted(dump(OrderAck(order=view)), "order")
        asked.append(len(env.body.orders))
        items = []
        for n, i in enumerate(env.body.orders):
            body = dump(OrderAck(order=view))
            items.append({"corr": i["id"], "type": "order_ack",
                          "body": _busted(body, "order") if n == 1 else body})  # fmt: skip
        return "replies", {"replies": items}

    c = ExecutionClient(h.cfg, timeout_s=8.0, retry_interval_s=0.05)
    c._sock.close(0)
    c._sock = _NewerOms(answer)  # type: ignore[assignment]
    try:
        started = time.monotonic()
        specs = [OrderSpec("simA", "AAPL", "BUY", "1", price="95") for _ in range(3)]
        first, second, third = c.submit_many(specs)
        assert time.monotonic() - started < 5.0
        assert (first, third) == (view, view)
        assert isinstance(second, IncompatibleCore)
        assert asked == [3]
    finally:
        c.close()


def test_an_order_in_a_status_this_client_lacks_does_not_stall_its_event_stream(
    h: Harness,
) -> None:
    """An event in a newer core's `OrderStatus` is a gap; the snapshot that follows lists
    that order, so it cannot be read either: `events` raises `IncompatibleCore` once, at
    once, and the next call goes on past the gap with the events behind it (before: every
    call asked snapshots until its deadline and raised `Timeout`, the events behind never
    delivered, the OMS asked a snapshot every retry interval for as long as the order was
    open)."""
    asked: list[str] = []

    def answer(env: Any) -> tuple[str, dict[str, Any]]:
        asked.append(env.body.type)
        snap = Snapshot(event_seq=2, orders=[filled_event(OrderStatus.ACCEPTED).order])
        return "snapshot", _busted(dump(snap), "orders", 0)

    c = ExecutionClient(h.cfg, timeout_s=8.0, retry_interval_s=0.05)
    c._sock.close(0)
    c._sock = _NewerOms(answer)  # type: ignore[assignment]
    sub = FakeSub()
    c._sub = sub  # type: ignore[assignment]
    events = [filled_event(OrderStatus.ACCEPTED, 1), filled_event(OrderStatus.ACCEPTED, 2),
              filled_event(OrderStatus.FILLED, 3), filled_event(OrderStatus.FILLED, 4)]  # fmt: skip
    bodies = [dump(e) for e in events]
    _busted(bodies[1], "order")
    sub.q.extend(frame("order_event", b) for b in bodies)
    got: list[Any] = []
    try:
        started = time.monotonic()
        got.extend(c.events(timeout_s=10.0))  # 1, then the gap: a snapshot
    except IncompatibleCore as exc:
        assert "orders.0.status" in str(exc)
    else:
        raise AssertionError("the unreadable snapshot was not raised")
    try:
        assert time.monotonic() - started < 5.0
        assert asked == ["snapshot_request"]
        got.extend(c.events(timeout_s=0.5))
        assert got == [events[0], events[2], events[3]]
        assert asked == ["snapshot_request"]
    finally:
        c._sub = None
        c.close()
