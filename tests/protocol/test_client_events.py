"""`ExecutionClient.events(statuses=...)`: a client that waits for some statuses does not
decode the events of the others (every client sees every event of every order)."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

import pytest

import protocol.event_batch as event_batch_mod
from protocol import fastpath
from protocol.client import ExecutionClient
from protocol.messages import (
    OrderEvent,
    OrderStatus,
    OrderView,
    OrdType,
    Side,
    Snapshot,
    StreamEvent,
)
from tests.actor_stubs import Harness, Stub


def _event(status: OrderStatus) -> OrderEvent:
    view = OrderView(
        client_order_id="a", venue="simA", symbol="AAPL", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=Decimal(95), status=status,
    )  # fmt: skip
    return OrderEvent(event_seq=0, order=view)


def _joined(h: Harness, client: ExecutionClient) -> None:
    """Publish probes until the subscription has joined (PUB drops what comes before),
    then a last marker, read up to it: the probes still on their way are taken too, so the
    test's own events come next (a loaded machine once let a second probe through)."""
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        h.oms.publish(StreamEvent(event_seq=0, event="probe"))
        if any(isinstance(e, StreamEvent) for e in client.events(timeout_s=0.05)):
            break
    else:
        raise AssertionError("the client's subscription never joined")
    h.oms.publish(StreamEvent(event_seq=0, event="joined"))
    while time.monotonic() < deadline:
        for e in client.events(timeout_s=0.05):
            if isinstance(e, StreamEvent) and e.event == "joined":
                return
    raise AssertionError("the client's stream never showed the joined marker")


def test_joined_takes_the_probes_still_on_their_way(h: Harness) -> None:
    """`_joined` leaves nothing of its own behind: probes published before the one it saw
    (as when the client was slow to read the first) do not come out as the test's first
    events (CI: a `stream_event` where the first FILLED was expected)."""
    client = ExecutionClient(h.cfg, timeout_s=1.0)
    try:
        client.subscribe()
        _joined(h, client)
        for _ in range(3):
            h.oms.publish(StreamEvent(event_seq=0, event="probe"))
        _joined(h, client)
        h.oms.publish(_order_event("after", OrderStatus.ACCEPTED))
        got = _take(client, 1)
    finally:
        client.close()
    assert [type(e).__name__ for e in got] == ["OrderEvent"], got


def _in_sequence(h: Harness, client: ExecutionClient, n: int, prefix: str = "o") -> None:
    """The client subscribed, joined, and `n` ACCEPTED events (`<prefix><i>`) taken: its
    stream in sequence at the OMS's event_seq, before a test makes a gap or an epoch."""
    client.subscribe()
    _joined(h, client)
    for i in range(n):
        h.oms.publish(_order_event(f"{prefix}{i}", OrderStatus.ACCEPTED))
    assert len(_take(client, n)) == n


def _take(
    client: ExecutionClient,
    n: int,
    *,
    statuses: set[OrderStatus] | None = None,
    timeout_s: float = 5.0,
) -> list[OrderEvent | StreamEvent | Snapshot]:
    """The next `n` things `events` yields, waiting for them up to `timeout_s`."""
    got: list[OrderEvent | StreamEvent | Snapshot] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < n and time.monotonic() < deadline:
        for event in client.events(timeout_s=0.05, statuses=statuses):
            got.append(event)
            if len(got) == n:
                break
    return got


def test_events_of_other_statuses_are_sequenced_not_decoded(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only ACCEPTED and FILLED order events (and stream events) come out, in sequence;
    the PENDING_RISK and PENDING_SUBMIT ones are not decoded, and raise no gap."""
    client = ExecutionClient(h.cfg, timeout_s=1.0)
    try:
        client.subscribe()
        _joined(h, client)
        decoded = []  # a lone event is decoded by `codec.decode` or its fast path without it
        decode, fast = event_batch_mod.decode, event_batch_mod._fast_lone
        monkeypatch.setattr(event_batch_mod, "decode", lambda f: decoded.append(1) or decode(f))
        monkeypatch.setattr(event_batch_mod, "_fast_lone", lambda f: decoded.append(1) or fast(f))
        for status in (OrderStatus.PENDING_RISK, OrderStatus.PENDING_SUBMIT,
                       OrderStatus.ACCEPTED):  # fmt: skip
            h.oms.publish(_event(status))
        h.oms.publish(StreamEvent(event_seq=0, event="venue_state"))
        h.oms.publish(_event(OrderStatus.FILLED))
        wanted = {OrderStatus.ACCEPTED, OrderStatus.FILLED}
        got = _take(client, 3, statuses=wanted)
    finally:
        client.close()
    assert [e.order.status if isinstance(e, OrderEvent) else type(e).__name__ for e in got] == [
        OrderStatus.ACCEPTED,
        "StreamEvent",
        OrderStatus.FILLED,
    ]
    assert [e.event_seq for e in got] == [h.oms.event_seq - 2, h.oms.event_seq - 1, h.oms.event_seq]
    assert len(decoded) == 3


def _order_event(coid: str, status: OrderStatus) -> OrderEvent:
    event = _event(status)
    return event.model_copy(
        update={"order": event.order.model_copy(update={"client_order_id": coid})}
    )


def test_a_batch_of_events_comes_out_one_by_one_in_sequence_with_stream_events(
    h: Harness,
) -> None:
    """An `OrderEvents` (a turn's events) yields its events one by one, before the stream
    event published after it, with no gap and so no snapshot."""
    client = ExecutionClient(h.cfg, timeout_s=1.0)
    try:
        client.subscribe()
        _joined(h, client)
        h.oms.publish_batch([_order_event(c, OrderStatus.ACCEPTED) for c in ("a", "b", "c")])
        h.oms.publish(StreamEvent(event_seq=0, event="venue_state"))
        got = _take(client, 4)
    finally:
        client.close()
    assert [(type(e).__name__, e.event_seq) for e in got] == [
        ("OrderEvent", h.oms.event_seq - 3), ("OrderEvent", h.oms.event_seq - 2),
        ("OrderEvent", h.oms.event_seq - 1), ("StreamEvent", h.oms.event_seq),
    ]  # fmt: skip
    assert [e.order.client_order_id for e in got if isinstance(e, OrderEvent)] == ["a", "b", "c"]


def test_a_caller_that_stops_inside_a_batch_gets_the_rest_next_time(h: Harness) -> None:
    """The caller stops at the batch's first event; its next call yields the second and
    third, in sequence (no snapshot: nothing was missed)."""
    client = ExecutionClient(h.cfg, timeout_s=1.0)
    try:
        client.subscribe()
        _joined(h, client)
        h.oms.publish_batch([_order_event(c, OrderStatus.ACCEPTED) for c in ("a", "b", "c")])
        first = next(iter(client.events(timeout_s=2.0)))
        rest = _take(client, 2)
    finally:
        client.close()
    assert isinstance(first, OrderEvent) and first.order.client_order_id == "a"
    assert [e.order.client_order_id for e in rest if isinstance(e, OrderEvent)] == ["b", "c"]
    assert len(rest) == 2


def test_a_batch_after_a_gap_yields_a_snapshot_first(h: Harness) -> None:
    """A batch whose first event_seq skips one (a message dropped before it: PUB drops at
    its high-water mark) is preceded by a fresh Snapshot, as a lone event after a gap is;
    then its events after the snapshot's event_seq, one by one."""
    client = ExecutionClient(h.cfg, timeout_s=2.0)
    done = threading.Event()
    endpoint = Stub(h.ctx, "oms", h.cfg.client_endpoint, h.oms._answer)  # the clients' socket
    answering = threading.Thread(target=_answer_until, args=(endpoint, done))
    try:
        client.subscribe()
        _joined(h, client)
        h.oms.orders_seq = h.oms.event_seq + 1  # the snapshot reflects the event missed
        h.oms.publish_batch(
            [_order_event(c, OrderStatus.ACCEPTED) for c in ("a", "b")], seq=h.oms.event_seq + 2
        )
        answering.start()
        got = _take(client, 3)
    finally:
        done.set()
        if answering.is_alive():
            answering.join(5.0)
        endpoint.sock.close(linger=0)
        client.close()
    assert [type(e).__name__ for e in got] == ["Snapshot", "OrderEvent", "OrderEvent"]
    assert [e.event_seq for e in got] == [h.oms.event_seq - 2, h.oms.event_seq - 1, h.oms.event_seq]


def _answer_until(stub: Stub, done: threading.Event) -> None:
    while not done.is_set():
        if stub.sock.poll(20):
            stub.pump()


@pytest.mark.parametrize("batched", [False, True], ids=["lone", "batch"])
def test_a_restarted_omss_events_follow_a_snapshot(h: Harness, batched: bool) -> None:
    """The OMS restarted (a new epoch: event_seq from 1 again) and its first event was not
    received (the SUB reconnected after it): its next events, whose event_seq the client
    already passed in the old incarnation, come after a fresh Snapshot, not dropped as
    old."""
    client = ExecutionClient(h.cfg, timeout_s=2.0)
    done = threading.Event()
    endpoint = Stub(h.ctx, "oms", h.cfg.client_endpoint, h.oms._answer)  # the clients' socket
    answering = threading.Thread(target=_answer_until, args=(endpoint, done))
    try:
        _in_sequence(h, client, 5, "old")  # the client at event_seq >= 5
        h.oms.new_epoch()
        endpoint.sender = h.oms.sender  # its answers come from the new incarnation
        h.oms.event_seq = h.oms.orders_seq = 1  # its first event missed; the snapshot has it
        answering.start()
        new = [_order_event("new", OrderStatus.ACCEPTED), _order_event("new", OrderStatus.FILLED)]
        if batched:
            h.oms.publish_batch(new)
        else:
            for event in new:
                h.oms.publish(event)
        got = _take(client, 3)
    finally:
        done.set()
        if answering.is_alive():
            answering.join(5.0)
        endpoint.sock.close(linger=0)
        client.close()
    assert [(type(e).__name__, e.event_seq) for e in got] == [
        ("Snapshot", 1), ("OrderEvent", 2), ("OrderEvent", 3)
    ]  # fmt: skip


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
def test_statuses_filter_lone_and_batched_events_on_both_paths(
    h: Harness, monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    """With the fast path off (`TP_WIRE_FASTPATH=0`: no peek) a lone event of another
    status is filtered after its decode, as a batch's item is: only the FILLED come out."""
    monkeypatch.setattr(fastpath, "ENABLED", fast)
    client = ExecutionClient(h.cfg, timeout_s=1.0)
    try:
        client.subscribe()
        _joined(h, client)
        for status in (OrderStatus.PENDING_SUBMIT, OrderStatus.ACCEPTED, OrderStatus.FILLED):
            h.oms.publish(_order_event("lone", status))
        h.oms.publish_batch(
            [_order_event("batch", s) for s in (OrderStatus.ACCEPTED, OrderStatus.FILLED)]
        )
        h.oms.publish(StreamEvent(event_seq=0, event="end"))
        got = _take(client, 3, statuses={OrderStatus.FILLED})
    finally:
        client.close()
    assert [
        (e.order.client_order_id, e.order.status.value) if isinstance(e, OrderEvent) else e.type
        for e in got
    ] == [("lone", "FILLED"), ("batch", "FILLED"), "stream_event"]


def test_events_returns_at_its_timeout_while_events_keep_coming(h: Harness) -> None:
    """`timeout_s` bounds the call on a busy stream too: a caller slower than the stream
    (here 1 ms of work an event, against 20 events a ms) gets control back at its timeout
    although events are always waiting. Before, the deadline was only looked at when a
    poll found nothing, so such a call never returned while the OMS was busy."""
    client = ExecutionClient(h.cfg, timeout_s=1.0)
    publishing = threading.Event()
    stop = threading.Event()

    def publish() -> None:  # ACCEPTED events, 20 a ms, for up to 10 s
        until = time.monotonic() + 10.0
        publishing.set()
        while not stop.is_set() and time.monotonic() < until:
            h.oms.publish_batch([_order_event("busy", OrderStatus.ACCEPTED)] * 20)
            stop.wait(0.001)  # the publisher's pace, not a synchronisation

    client.subscribe()
    _joined(h, client)
    publisher = threading.Thread(target=publish, daemon=True)
    try:
        publisher.start()
        assert publishing.wait(5.0)
        got = 0
        for _ in client.events(timeout_s=0.3):
            got += 1
            time.sleep(0.001)  # the caller's work on each event
            if not publisher.is_alive():
                break  # the stream went quiet first: the call did not end at its timeout
        still_publishing = publisher.is_alive()
    finally:
        stop.set()
        publisher.join(timeout=15.0)
        client.close()
    assert still_publishing, "events() only returned once the stream went quiet"
    assert got > 0
