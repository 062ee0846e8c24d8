"""The client's event stream across OMS incarnations (a review's proofs): the queued events
of an incarnation that died unread cost one snapshot, not one each; a snapshot the OMS
refuses is raised, and the new incarnation's event is not yielded past the gap."""

from __future__ import annotations

import time
from typing import Any

import pytest

from protocol.client import ExecutionClient, NotReady
from protocol.messages import (
    ErrorCode,
    Message,
    OrderStatus,
    RequestRejected,
    Snapshot,
    SnapshotRequest,
    StreamEvent,
)
from tests.actor_stubs import Harness
from tests.protocol.test_client_events import _in_sequence, _order_event
from tests.protocol.test_event_stream import _Answering


@pytest.mark.parametrize("batched", [False, True], ids=["lone", "batch"])
def test_a_dead_incarnations_queued_events_cost_one_snapshot(h: Harness, batched: bool) -> None:
    """E2 publishes 20 events and dies unread; E3 answers the snapshot: one request, one
    Snapshot, none of E2's events (on evb2's first form: 20 requests, 20 Snapshots)."""
    asked: list[int] = []
    answer = h.oms._answer

    def counting(env: Any) -> Message | None:
        if isinstance(env.body, SnapshotRequest):
            asked.append(1)
        return answer(env)

    h.oms._answer = counting  # type: ignore[method-assign]
    client = ExecutionClient(h.cfg, timeout_s=2.0)
    oms = _Answering(h)
    got: list[Any] = []
    try:
        _in_sequence(h, client, 3, "e1-")
        h.oms.new_epoch()
        e2 = [_order_event(f"e2-{i}", OrderStatus.ACCEPTED) for i in range(20)]
        if batched:
            h.oms.publish_batch(e2)
        else:
            for ev in e2:
                h.oms.publish(ev)
        h.oms.new_epoch()
        oms.stub.sender = h.oms.sender
        h.oms.orders_seq = 0
        h.oms.publish(_order_event("e3-0", OrderStatus.ACCEPTED))
        h.oms.publish(StreamEvent(event_seq=0, event="end"))
        oms.start()
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            got.extend(client.events(timeout_s=0.1))
            if any(isinstance(e, StreamEvent) and e.event == "end" for e in got):
                break
    finally:
        oms.close()
        client.close()
    coids = [getattr(getattr(e, "order", None), "client_order_id", "") for e in got]
    assert not [c for c in coids if c.startswith("e2-")]
    assert len(asked) == 1 and sum(isinstance(e, Snapshot) for e in got) == 1, (asked, got)


def test_a_refused_snapshot_is_raised_and_the_event_past_the_gap_held(h: Harness) -> None:
    """A new incarnation's event after a gap, its snapshot refused (NOT_READY): `events`
    raises NotReady and does not yield the event (before: yielded, the gap never mended)."""
    answer = h.oms._answer

    def refusing(env: Any) -> Message | None:
        if isinstance(env.body, SnapshotRequest):
            return RequestRejected(code=ErrorCode.NOT_READY, reason="open orders cut by restarts")
        return answer(env)

    h.oms._answer = refusing  # type: ignore[method-assign]
    client = ExecutionClient(h.cfg, timeout_s=2.0)
    oms = _Answering(h)
    got: list[Any] = []
    raised: list[Exception] = []
    try:
        _in_sequence(h, client, 5, "e1-")
        h.oms.new_epoch()
        oms.stub.sender = h.oms.sender
        h.oms.event_seq = 3  # the new OMS's 1..3 missed (the SUB reconnected late)
        h.oms.publish(_order_event("e2-4", OrderStatus.FILLED))
        oms.start()
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline and not raised and not got:
            try:
                got.extend(client.events(timeout_s=0.2))
            except NotReady as exc:
                raised.append(exc)
    finally:
        oms.close()
        client.close()
    assert raised, f"no refusal raised; yielded {got}"
    assert not got
