"""`EventStream.events(timeout_s)` on a busy stream: the call's timeout bounds the caller's
time in it (a review's proof of de4cd24; a fake SUB and a fake clock: no timing)."""

from __future__ import annotations

import types

import pytest

from protocol import event_stream
from protocol.codec import Sender
from protocol.wire_out import dump
from tests.protocol.event_stream_fakes import FakeSub, Oms, drain, make_stream, order_event


def test_a_batch_read_before_the_timeout_is_not_all_yielded_past_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A caller at 1 ms an event calls with timeout 10 ms; one `OrderEvents` of 128 is
    waiting. The call should end at about its timeout (the rest kept for the next call, as
    `ExecutionClient.events` says); it yields the whole batch: 118 ms past it."""
    now = [100.0]
    monkeypatch.setattr(event_stream, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    sub = FakeSub()
    oms = Oms(sub)
    stream = make_stream(oms)
    oms.pub(1, order_event("e1-1", 1))
    assert len(drain(stream, sub)) == 1  # in sequence at 1
    items = [dump(order_event(f"b{i}", i)) for i in range(2, 130)]
    sub.q.append(Sender("oms", 1).encode_body("order_events", {"events": items})[1])
    deadline = now[0] + 0.010
    late = 0
    for _ in stream.events(sub, 0.010, None):  # type: ignore[arg-type]
        late += now[0] > deadline
        now[0] += 0.001  # the caller's work on each event
    rest = drain(stream, sub)
    assert late <= 1, f"{late} events yielded past the timeout ({len(rest)} left)"
