"""The client event stream's edges across OMS incarnations and refused snapshots (a
review's proofs; `EventStream` with a fake SUB and a scripted OMS: no processes)."""

from __future__ import annotations

import pytest

from protocol.messages import Snapshot, StreamEvent
from tests.protocol.event_stream_fakes import (
    NOT_READY,
    FakeSub,
    Oms,
    drain,
    make_stream,
    names,
    order_event,
)


def _at_e1(n: int = 3) -> tuple[FakeSub, Oms, object]:
    sub = FakeSub()
    oms = Oms(sub)
    stream = make_stream(oms)
    for i in range(1, n + 1):
        oms.pub(1, order_event(f"e1-{i}", i))
    assert names(drain(stream, sub)) == [f"e1-{i}" for i in range(1, n + 1)]
    return sub, oms, stream


def test_a_refused_snapshot_is_raised_once_then_the_stream_goes_on() -> None:
    """The OMS refuses the snapshot after a gap: the refusal is raised (one request), and
    the next call goes on past the gap with no second request (the caller was told; an
    OMS that keeps refusing does not hold the stream up, nor get asked once per call)."""
    sub, oms, stream = _at_e1()
    oms.pub(2, order_event("e2-4", 4))  # E2's 1..3 missed
    oms.pub(2, order_event("e2-5", 5))
    oms.answers.append((2, NOT_READY))
    with pytest.raises(Exception, match="refused"):
        drain(stream, sub)  # type: ignore[arg-type]
    assert oms.asked == 1
    assert names(drain(stream, sub)) == ["e2-4", "e2-5"]  # type: ignore[arg-type]
    assert oms.asked == 1
    oms.pub(2, order_event("e2-7", 7))  # a later gap: asked again
    oms.answers.append((2, Snapshot(event_seq=7, orders=[])))
    assert names(drain(stream, sub)) == ["SNAP@7"]  # type: ignore[arg-type]
    assert oms.asked == 2


def test_a_refused_snapshot_inside_a_batch_keeps_the_rest_of_the_batch() -> None:
    from protocol.codec import Sender
    from protocol.wire_out import dump

    sub, oms, stream = _at_e1()
    items = [dump(order_event(f"e2-{i}", i)) for i in (4, 5, 6)]
    sub.q.append(Sender("oms", 2).encode_body("order_events", {"events": items})[1])
    oms.answers.append((2, NOT_READY))
    with pytest.raises(Exception, match="refused"):
        drain(stream, sub)  # type: ignore[arg-type]
    assert names(drain(stream, sub)) == ["e2-4", "e2-5", "e2-6"]  # type: ignore[arg-type]


def test_live_incarnation_not_blacked_out_by_an_older_answer() -> None:
    """E2's event held; the snapshot is answered by E1 (an overlapping/late incarnation).
    d10f5ea marks E2 (the newer, live one) replaced: every later E2 event is dropped
    before the gap check, so no snapshot is ever asked again: the stream is silent."""
    sub, oms, stream = _at_e1()
    oms.pub(2, order_event("e2-1", 1))
    oms.answers.append((1, Snapshot(event_seq=3, orders=[])))
    first = names(drain(stream, sub))  # type: ignore[arg-type]
    for i in range(2, 6):
        oms.pub(2, order_event(f"e2-{i}", i))
    oms.answers.append((2, Snapshot(event_seq=1, orders=[])))
    later = names(drain(stream, sub))  # type: ignore[arg-type]
    assert [n for n in later if n.startswith("e2-")] == ["e2-2", "e2-3", "e2-4", "e2-5"], (
        first,
        later,
        oms.asked,
    )


def test_snapshot_from_the_next_incarnation_then_its_seq_1() -> None:
    """E1 gap (seq 8 after 5); E1 died, E2 (published 1..3) answers event_seq 3; E2's 1..4
    then come: one Snapshot expected, then e2-4 (seen: E2's seq 1 asks a second one: the
    `1 < seq <= last` duplicate test leaves seq 1 out)."""
    sub, oms, stream = _at_e1(5)
    oms.pub(1, order_event("e1-8", 8))
    for i in range(1, 5):
        oms.pub(2, order_event(f"e2-{i}", i))
    oms.answers.append((2, Snapshot(event_seq=3, orders=[])))
    oms.answers.append((2, Snapshot(event_seq=3, orders=[])))
    got = names(drain(stream, sub))  # type: ignore[arg-type]
    assert got == ["SNAP@3", "e2-4"] and oms.asked == 1, (got, oms.asked)


def test_an_oms_that_keeps_refusing_does_not_wedge_the_stream() -> None:
    """The live OMS refuses every snapshot (INTERNAL: a read that raises on one order) and
    keeps publishing, a kill_switch stream event among them. A caller that catches and
    calls again (what the docstring says: "the next call asks again") gets nothing, ever,
    and asks once per call with no pacing; meanwhile the SUB's queue only grows."""
    from protocol.messages import ErrorCode, RequestRejected

    sub, oms, stream = _at_e1()
    oms.pub(2, order_event("e2-4", 4))
    for i in range(5, 105):
        oms.pub(2, order_event(f"e2-{i}", i))
    oms.pub(2, StreamEvent(event_seq=105, event="kill_switch"))
    internal = RequestRejected(code=ErrorCode.INTERNAL, reason="KeyError: 'x'")
    got: list[object] = []
    refusals = 0
    for _ in range(1000):
        oms.answers.append((2, internal))
        try:
            got.extend(drain(stream, sub))  # type: ignore[arg-type]
        except Exception:  # noqa: BLE001
            refusals += 1
    assert "stream:kill_switch" in names(got), (refusals, oms.asked, len(sub.q))


def test_the_branchs_scenario_with_an_oms_that_published_before_answering() -> None:
    """evb3's own scenario (E2 publishes 20 and dies unread; E3 answers) as a real OMS
    answers: E3 has published 1..2 (queued behind E2's) and its snapshot says event_seq 2
    (the branch's test sets orders_seq = 0, so E3's seq 1 is 'next'). Expected one
    snapshot; E3's seq 1 asks a second (the `1 < seq` duplicate test)."""
    sub, oms, stream = _at_e1()
    for i in range(1, 21):
        oms.pub(2, order_event(f"e2-{i}", i))
    for i in (1, 2, 3):
        oms.pub(3, order_event(f"e3-{i}", i))
    for _ in range(5):
        oms.answers.append((3, Snapshot(event_seq=2, orders=[])))
    got = names(drain(stream, sub))  # type: ignore[arg-type]
    assert got == ["SNAP@2", "e3-3"] and oms.asked == 1, (got, oms.asked)
