"""Risk reads the OMS's `OrderEvents` (a turn's order events in one message) item by item,
as the lone events they stand for: each applied to the exposure in order, a PENDING_RISK
item only sequenced, a gap before or inside a batch answered with a rebuild, a malformed
batch counted as a bad message (and the gap it leaves rebuilt)."""

from __future__ import annotations

from typing import Any

import msgpack
import zmq

from actors.oms.event_wire import messages, packed
from actors.risk.actor import RiskActor
from actors.risk.sync import EVENTS_PER_TURN
from protocol.batch_messages import EVENT_STREAM_HWM, MAX_EVENT_BATCH
from protocol.codec import Sender
from protocol.messages import OrderEvent, OrderStatus, Side
from protocol.wire_out import dump
from tests.actor_stubs import Client, Harness
from tests.risk.test_actor import check, order, sample, start, verdict


def _following(h: Harness, actor: RiskActor) -> None:
    """An event, so that risk follows the sequence (a gap is after an event it saw)."""
    h.oms.publish(OrderEvent(event_seq=0, order=order("first", OrderStatus.PENDING_RISK, "1")))
    h.pump(lambda: actor.sync._stream == (h.oms.epoch, h.oms.event_seq), what="sequenced")


def test_a_batchs_events_move_the_exposure_one_by_one(h: Harness) -> None:
    """Three orders' events in one message: the PENDING_RISK one sequenced, the other two
    applied (85 filled + 10 open); no gap, so no rebuild."""
    actor = start(h)
    lists = h.oms.listings()
    h.oms.publish_batch(
        [
            OrderEvent(event_seq=0, order=order("p", OrderStatus.PENDING_RISK, "5")),
            OrderEvent(event_seq=0, order=order("x", OrderStatus.PARTIALLY_FILLED, "95", "85")),
            OrderEvent(event_seq=0, order=order("y", OrderStatus.ACCEPTED, "10")),
        ]
    )
    h.pump(lambda: actor.sync.events_applied == 2, what="the batch's two events")
    assert actor.sync._stream == (h.oms.epoch, h.oms.event_seq)
    client = Client(h, "risk")
    v = verdict(client, check("c1", "6", side=Side.BUY))
    assert not v.approved and v.reason_code == "max_position"  # 85 + 10 (x) + 10 (y) + 6
    assert h.oms.listings() == lists


def test_a_gap_before_a_batch_rebuilds(h: Harness) -> None:
    """A batch whose first event_seq skips one (a message the PUB dropped at its
    high-water mark): risk rebuilds from the OMS, as after a lone event's gap."""
    actor = start(h)
    _following(h, actor)
    lists, rebuilds = h.oms.listings(), actor.sync.rebuilds
    events = [OrderEvent(event_seq=0, order=order(c, OrderStatus.ACCEPTED, "1")) for c in "ab"]
    h.oms.publish_batch(events, seq=h.oms.event_seq + 2)
    h.pump(lambda: actor.sync.rebuilds == rebuilds + 1, what="rebuild after a gap")
    assert h.oms.listings() == lists + 1


def test_a_gap_inside_a_batch_rebuilds(h: Harness) -> None:
    """A batch whose items skip an event_seq between them (not from the OMS, which packs a
    turn's events with no gap; a malformed item left out looks the same): risk rebuilds at
    the item after the gap."""
    actor = start(h)
    _following(h, actor)
    lists, rebuilds = h.oms.listings(), actor.sync.rebuilds
    seq = h.oms.event_seq
    items = [dump(OrderEvent(event_seq=seq + n, order=order(c, OrderStatus.ACCEPTED, "1")))
             for n, c in ((1, "a"), (3, "b"))]  # fmt: skip
    h.oms.event_seq = seq + 3
    h.oms.pub.send_multipart(h.oms.sender.encode_body("order_events", {"events": items})[1])
    h.pump(lambda: actor.sync.rebuilds == rebuilds + 1, what="rebuild after a gap")
    assert h.oms.listings() == lists + 1
    assert actor.sync._stream == (h.oms.epoch, seq + 3)


def test_a_malformed_batch_is_counted_and_its_gap_rebuilt(h: Harness) -> None:
    """A batch whose item has no event_seq is refused whole (`bad_message`); the next
    event then shows the gap its events left, and risk rebuilds."""
    _following(h, start(h))
    lists = h.oms.listings()
    bad = sample("tradepulse_bad_messages_total", actor="risk")
    items = [dump(OrderEvent(event_seq=h.oms.event_seq + 1, order=order("a", OrderStatus.ACCEPTED,
                                                                        "1")))]  # fmt: skip
    items.append({k: v for k, v in items[0].items() if k != "event_seq"})
    frame = h.oms.sender.encode_body("order_events", {"events": items})[1]
    assert msgpack.unpackb(frame[0])["type"] == "order_events"
    h.oms.pub.send_multipart(frame)
    h.pump(lambda: sample("tradepulse_bad_messages_total", actor="risk") == bad + 1,
           what="the malformed batch counted")  # fmt: skip
    assert h.oms.listings() == lists
    h.oms.event_seq += 2  # the batch's two
    h.oms.publish(OrderEvent(event_seq=0, order=order("b", OrderStatus.ACCEPTED, "1")))
    h.pump(lambda: h.oms.listings() == lists + 1, what="rebuild after the gap")


class _Backlog:
    """A SUB socket's queue already full (what risk finds after falling behind)."""

    def __init__(self, frames: list[list[bytes]]) -> None:
        self.frames = frames
        self.i = 0

    def recv_multipart(self, flags: int = 0, copy: bool = True) -> list[Any]:
        if self.i >= len(self.frames):
            raise zmq.Again()
        self.i += 1
        frames = self.frames[self.i - 1]
        return frames if copy else [zmq.Frame(f) for f in frames]

    def get(self, option: int) -> int:
        return zmq.POLLIN if self.i < len(self.frames) else 0


def test_one_turn_reads_a_bounded_number_of_events(h: Harness) -> None:
    """A backlog of full batches (the OMS's own output for 20 x 128 events): one turn of
    the handler takes about `EVENTS_PER_TURN` events (the batch that spends the budget
    whole), not every queued message's items; the next turns take the rest, in order."""
    actor = start(h)
    epoch, seq = actor.sync._stream or (h.oms.epoch, h.oms.event_seq)
    total = 20 * MAX_EVENT_BATCH
    bodies = [
        packed(dump(OrderEvent(event_seq=seq + 1 + i, order=order(f"o{i}", OrderStatus.ACCEPTED,
                                                                  "1"))))
        for i in range(total)
    ]  # fmt: skip
    sender = Sender("oms", epoch)
    backlog = _Backlog([sender.encode_body(t, b)[1] for t, b in messages(bodies)])
    real = actor.sync.sub
    actor.sync.sub = backlog  # type: ignore[assignment]
    # its frames came from no connection (no binder to judge: tests/risk/test_stream_binder.py)
    actor.zap.from_binders = lambda raw: ([f.bytes for f in m] for m in raw)  # type: ignore[method-assign]
    try:
        before = actor.sync.events_applied
        actor.sync._on_events()
        first = actor.sync.events_applied - before
        turns = 1
        while backlog.i < len(backlog.frames):
            actor.sync._on_events()
            turns += 1
    finally:
        actor.sync.sub = real
    assert EVENTS_PER_TURN <= first < EVENTS_PER_TURN + MAX_EVENT_BATCH
    assert actor.sync.events_applied - before == total and turns == 3
    assert actor.sync._stream == (epoch, seq + total)  # no gap: nothing rebuilt


def test_the_event_subscription_is_bounded_in_batches(h: Harness) -> None:
    """Risk's SUB holds at most `EVENT_STREAM_HWM` messages (`EVENT_STREAM_BYTES` of full
    batches), not the generic 100,000 (GiBs of batches) while its loop is behind."""
    actor = start(h)
    assert actor.sync.sub.getsockopt(zmq.RCVHWM) == EVENT_STREAM_HWM


def test_a_retried_rebuild_keeps_only_the_events_after_its_request(h: Harness) -> None:
    """While the OMS publishes but does not answer the rebuild, each retry drops the events
    buffered before it (its answers will reflect them): the buffer holds what came since
    the last retry, not every event since the gap."""
    n = 300
    actor = start(h)
    _following(h, actor)
    actor.sync.timeout_s = 0.05
    h.oms.answering = False
    h.oms.publish(
        OrderEvent(event_seq=0, order=order("g", OrderStatus.ACCEPTED, "1")),
        seq=h.oms.event_seq + 2,
    )  # a gap: a rebuild, unanswered
    for i in range(n):
        h.oms.publish(OrderEvent(event_seq=0, order=order(f"a{i}", OrderStatus.ACCEPTED, "1")))
    h.pump(lambda: actor.sync._stream == (h.oms.epoch, h.oms.event_seq), what="read")
    lists = h.oms.listings()
    h.pump(lambda: h.oms.listings() >= lists + 3, what="three retries")
    for i in range(n):
        h.oms.publish(OrderEvent(event_seq=0, order=order(f"b{i}", OrderStatus.ACCEPTED, "1")))
    h.pump(lambda: actor.sync._stream == (h.oms.epoch, h.oms.event_seq), what="read")
    assert actor.sync._syncing
    assert len(actor.sync._buffer) <= n, len(actor.sync._buffer)
