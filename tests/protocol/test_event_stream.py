"""`ExecutionClient.events` across a snapshot: what it yields when the snapshot fails, when
the caller stops right after it, and when it comes from another OMS incarnation."""

from __future__ import annotations

import threading

import pytest

from protocol.client import ExecutionClient, Timeout
from protocol.messages import OrderEvent, OrderStatus, Snapshot, StreamEvent
from tests.actor_stubs import Harness, Stub
from tests.protocol.test_client_events import (
    _answer_until,
    _in_sequence,
    _joined,
    _order_event,
    _take,
)


class _Answering:
    """The OMS's clients' endpoint, answered from another thread once `start`ed."""

    def __init__(self, h: Harness) -> None:
        self.stub = Stub(h.ctx, "oms", h.cfg.client_endpoint, h.oms._answer)
        self.done = threading.Event()
        self.thread = threading.Thread(target=_answer_until, args=(self.stub, self.done))

    def start(self) -> None:
        self.thread.start()

    def close(self) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join(5.0)
        self.stub.sock.close(linger=0)


def _kinds(got: list[OrderEvent | StreamEvent | Snapshot]) -> list[str]:
    return [f"{e.type}:{e.order.status.value}" if isinstance(e, OrderEvent) else e.type
            for e in got]  # fmt: skip


def test_a_new_epoch_whose_snapshot_timed_out_is_taken_again_next_call(h: Harness) -> None:
    """The OMS restarted (event_seq from 1 again) and does not answer the snapshot in time:
    `events` raises Timeout; the next call takes the same event again, still as a new
    epoch's (a Snapshot first), so the new incarnation's later events are not dropped as
    duplicates of the old one's."""
    client = ExecutionClient(h.cfg, timeout_s=0.5)
    oms = _Answering(h)
    try:
        client.subscribe()
        _joined(h, client)
        for i in range(10):
            h.oms.publish(_order_event(f"old{i}", OrderStatus.ACCEPTED))
        assert len(_take(client, 10)) == 10  # the client is at event_seq >= 10
        h.oms.new_epoch()
        oms.stub.sender = h.oms.sender  # its answers come from the new incarnation
        h.oms.publish(_order_event("new", OrderStatus.ACCEPTED))  # epoch 2, seq 1
        h.oms.publish(_order_event("new", OrderStatus.PENDING_SUBMIT))  # seq 2
        h.oms.answering = False  # the snapshot request gets no answer in time
        oms.start()
        with pytest.raises(Timeout):
            for _ in client.events(timeout_s=3.0):
                pass
        h.oms.orders_seq = 2  # the snapshot it answers now reflects seq 2
        h.oms.answering = True
        h.oms.publish(_order_event("new", OrderStatus.FILLED))  # seq 3
        h.oms.publish(StreamEvent(event_seq=0, event="end"))  # seq 4
        got = _take(client, 3, timeout_s=3.0)
    finally:
        oms.close()
        client.close()
    assert _kinds(got) == ["snapshot", "order_event:FILLED", "stream_event"]
    assert [e.event_seq for e in got] == [2, 3, 4]


@pytest.mark.parametrize("batched", [False, True], ids=["lone", "batch"])
def test_a_caller_that_stops_at_the_snapshot_gets_the_event_after_it_next_call(
    h: Harness, batched: bool
) -> None:
    """A gap yields a Snapshot and then the event that showed it; a caller that takes only
    the Snapshot (`next(...)`, a break) gets that event first on its next call, not a
    second snapshot that has the order open and the fill lost."""
    client = ExecutionClient(h.cfg, timeout_s=2.0)
    oms = _Answering(h)
    try:
        _in_sequence(h, client, 3)
        oms.start()
        at = h.oms.event_seq
        h.oms.orders_seq = at + 1  # the snapshot reflects the event lost in the gap only
        fill = _order_event("f", OrderStatus.FILLED)
        if batched:
            h.oms.publish_batch([fill, _order_event("g", OrderStatus.ACCEPTED)], seq=at + 2)
        else:
            h.oms.publish(fill, seq=at + 2)  # a gap: at + 1 was dropped
        first = next(iter(client.events(timeout_s=3.0)))  # the caller takes one thing
        assert isinstance(first, Snapshot) and first.event_seq == at + 1
        rest = _take(client, 2 if batched else 1, timeout_s=2.0)
    finally:
        oms.close()
        client.close()
    assert [(e.type, e.event_seq) for e in rest] == [("order_event", at + 2)] + (
        [("order_event", at + 3)] if batched else []
    )
    assert _kinds(rest)[0] == "order_event:FILLED"


def test_old_epoch_events_are_not_yielded_after_a_new_epochs_snapshot(h: Harness) -> None:
    """A gap in the old OMS's last events is answered by its successor (another epoch,
    event_seq from 1 again): after that Snapshot the old incarnation's queued events are
    dropped, not yielded as newer than it; the new incarnation's next event follows."""
    client = ExecutionClient(h.cfg, timeout_s=2.0)
    oms = _Answering(h)
    try:
        _in_sequence(h, client, 3)
        at = h.oms.event_seq
        # the old OMS's last events (one of them dropped: a gap), still queued at the client
        h.oms.publish(_order_event("x", OrderStatus.ACCEPTED), seq=at + 2)
        h.oms.publish(_order_event("x", OrderStatus.PARTIALLY_FILLED))
        h.oms.new_epoch()
        oms.stub.sender = h.oms.sender  # the answers come from the new OMS
        h.oms.orders_seq = 1  # its snapshot: event_seq 1 (x FILLED in it)
        h.oms.publish(_order_event("y", OrderStatus.ACCEPTED), seq=2)
        oms.start()
        got = _take(client, 2)
    finally:
        oms.close()
        client.close()
    assert [(e.type, e.event_seq) for e in got] == [("snapshot", 1), ("order_event", 2)]
    assert isinstance(got[1], OrderEvent) and got[1].order.client_order_id == "y"
