"""After the commit, a turn's venue requests go out before its events and replies (issue 16,
p50: the PlaceOrder no longer waits for the PENDING_SUBMIT event's encode and send, nor
competes with risk and the clients that event wakes). The events still show only what is
durable: a send that records something (an approved order dropped unsent) publishes its new
state after the next commit, not in this turn. `OmsActor.after_iteration` runs on a stub
OMS (journal, publisher) around the real book, commit policy and event hold."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from functools import partial
from typing import Any

import pytest

from actors.oms import reads
from actors.oms.actor import OmsActor
from actors.oms.commit_policy import AfterCommit, CommitPolicy, EventHold
from actors.oms.event_wire import EventFill
from actors.oms.order_book import OrderBook
from protocol.batch_messages import MAX_EVENT_BATCH
from protocol.codec import Sender, decode
from protocol.event_batch import events_of
from protocol.messages import (
    OrderEvent,
    OrderStatus,
    OrdType,
    RiskVerdict,
    Side,
    StreamEvent,
    SubmitOrder,
)  # fmt: skip

V = "simA"


class _Journal:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.pending = False
        self.records_since_snapshot = 0
        self.durable: list[str] = []  # statuses made durable, in order
        self.buffered: list[str] = []
        self.hooked: list[int] = []

    def append(self, record: dict[str, Any]) -> None:  # `OmsActor.record`'s
        self.pending = True

    def commit(self, *, hook: bool = True) -> None:
        self.calls.append("commit")
        self.durable += self.buffered
        self.buffered = []
        self.pending = False
        if hook:
            self.run_after_commit()

    def run_after_commit(self) -> None:  # the archive's hook: after the turn's sends
        self.hooked.append(len(self.calls))  # when, in `calls`

    def poll_background(self) -> None:
        pass


class _Pub:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.seqs: list[int] = []  # event_seq of every event published, in order
        self.messages: list[str] = []  # the type of every message published
        self.events: list[OrderEvent] = []

    def send_multipart(self, frames: list[bytes], copy: bool = True) -> None:
        self.messages.append(decode(frames).type)
        for seq, body in events_of(frames):  # a lone event, or a turn's events in one message
            assert isinstance(body, OrderEvent | StreamEvent)
            self.seqs.append(seq)
            if isinstance(body, StreamEvent):
                self.calls.append(f"stream {body.event}")
            else:
                self.events.append(body)
                self.calls.append(f"event {body.order.client_order_id} {body.order.status.value}")


class _Anything:
    """gate, space, cfg.oms: whatever after_iteration asks of them, answered idle."""

    low = False
    snapshot_every = 1_000_000

    def __getattr__(self, name: str) -> Any:
        return self if name == "oms" else (lambda *a, **k: None)


class _Clients:
    """The client endpoint's reply window (`ClientEndpoint.hold` / `release`)."""

    def __init__(self) -> None:
        self.holding = 0
        self.windows = 0

    def hold(self) -> None:
        self.holding += 1
        self.windows += 1

    def release(self) -> None:
        self.holding -= 1


class _Oms:
    after_iteration = OmsActor.after_iteration
    after_commit = OmsActor.after_commit
    _publish_built = OmsActor._publish_built
    publish_stream = OmsActor.publish_stream
    _send_committed = OmsActor._send_committed
    record = OmsActor.record

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._built: list[Any] = []
        self.journal = _Journal(self.calls)
        self.pub = _Pub(self.calls)
        self.sender = Sender("oms", 1)
        self.book = OrderBook()
        self.commits = CommitPolicy()
        self.event_hold = EventHold(lambda _d, _fn: None)
        self._after_commit = AfterCommit()
        self._changed: dict[str, tuple[D | None, D | None]] = {}
        self.event_seq = 0
        self.gate = self.space = self.cfg = self.views = self.at_venue = _Anything()
        self.venues: dict[str, Any] = {}  # links whose sends the turn holds (send_batch.py)
        self.clients = _Clients()

    def crash_point(self, name: str) -> None:
        self.calls.append(name)

    def approve(self, coid: str, qty: D = D(1), symbol: str = "ABC", side: Side = Side.BUY) -> None:
        """The verdict's turn as intake leaves it: records pending, the venue push and the
        client's ack waiting for the commit."""
        msg = SubmitOrder(client_order_id=coid, venue=V, symbol=symbol, side=side,
                          qty=qty, order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
        assert self.book.submit(msg, 1).applied
        verdict = RiskVerdict(client_order_id=coid, approved=True)
        assert self.book.risk_verdict(verdict, 2).applied
        self.journal.pending, self.commits._must = True, True
        self._changed[coid] = EventFill()

    def push(self, coid: str, action: Callable[[], None] | None = None) -> Callable[[], None]:
        def send() -> None:
            self.calls.append(f"send {coid}")
            if action is not None:
                action()

        return send


def test_the_venue_request_goes_before_the_event_and_the_ack() -> None:
    """commit, then PlaceOrder, then the PENDING_SUBMIT event, then the client's OrderAck."""
    oms = _Oms()
    oms.approve("o1")
    oms.after_commit(lambda: oms.calls.append("ack o1"))
    oms.after_commit(oms.push("o1"), first=True)  # queued after the ack, sent before it
    oms.after_iteration()
    assert oms.calls == [
        "commit", "after_journal_before_send", "send o1", "event o1 PENDING_SUBMIT", "ack o1",
    ]  # fmt: skip


def test_the_commits_own_work_waits_for_what_the_turn_sends() -> None:
    """The commit's hook (the archive's hand-over), the fsync histogram and the reserve
    check ran between the fdatasync and the PlaceOrder: they run once the venue request,
    the events and the replies are out, once a turn."""
    oms = _Oms()
    oms.approve("o1")
    oms.after_commit(lambda: oms.calls.append("ack o1"))
    oms.after_commit(oms.push("o1"), first=True)
    oms.after_iteration()
    assert oms.journal.hooked == [len(oms.calls)]  # once, after the last of them


def test_what_a_send_records_is_published_after_its_own_commit() -> None:
    """The push drops the order unsent (REJECTED, journalled after this turn's commit): it
    is committed at once, before the turn's events and replies; this turn publishes the
    PENDING_SUBMIT built before the send, the next one REJECTED. Built after the send, the
    event would have shown REJECTED in place of PENDING_SUBMIT."""
    oms = _Oms()
    oms.approve("o1")

    def drop() -> None:  # what OmsActor.drop_unsent does through record()
        oms.book.apply_venue_status("o1", OrderStatus.REJECTED, 3, reason="kill-switch")
        oms.journal.pending, oms.commits._must = True, True
        oms._changed["o1"] = EventFill()

    oms.after_commit(oms.push("o1", drop), first=True)
    oms.after_iteration()
    assert oms.calls == [
        "commit", "after_journal_before_send", "send o1", "commit", "event o1 PENDING_SUBMIT",
    ]  # fmt: skip
    oms.calls.clear()
    oms.after_iteration()
    assert oms.calls == ["event o1 REJECTED"]


def test_after_commit_keeps_each_list_in_order() -> None:
    """Venue requests in the order queued, then replies and reads in the order queued."""
    after = AfterCommit()
    assert not after
    seen: list[str] = []
    for name, first in (("r1", False), ("s1", True), ("r2", False), ("s2", True)):
        after.add(lambda n=name: seen.append(n), first=first)  # type: ignore[misc]
    assert after
    sends, then = after.take()
    for fn in [*sends, *then]:
        fn()
    assert seen == ["s1", "s2", "r1", "r2"] and not after


def test_a_read_does_not_show_a_drop_that_is_not_durable_yet() -> None:
    """A send that drops the order unsent (REJECTED) is committed before the turn's reads
    run: a snapshot answered in that turn never shows a state a kill -9 would take back
    (found by review; for a read queued after the verdict it predates sends-first)."""
    oms = _Oms()
    answers: list[tuple[Any, list[str]]] = []  # each with what was durable then

    def read() -> None:  # a client's SnapshotRequest, then risk's verdict in the same turn
        answers.append((reads.snapshot(oms.book, oms.event_seq), list(oms.journal.durable)))

    oms.after_commit(read)
    oms.approve("o1")
    oms.journal.buffered += ["PENDING_RISK", "PENDING_SUBMIT"]

    def drop() -> None:  # what OmsActor.drop_unsent does through record()
        oms.book.apply_venue_status("o1", OrderStatus.REJECTED, 3, reason="kill-switch")
        oms.journal.buffered.append("REJECTED")
        oms.journal.pending = True
        oms._changed["o1"] = EventFill()

    oms.after_commit(oms.push("o1", drop), first=True)
    oms.after_iteration()
    ((snap, durable),) = answers
    assert not snap.orders  # o1 ended: not open
    assert durable == ["PENDING_RISK", "PENDING_SUBMIT", "REJECTED"]  # and that was durable


def test_the_stream_stays_in_event_seq_order_when_a_send_publishes() -> None:
    """The turn's order events (built before the commit) go out before anything a send
    publishes (`publish_stream`: an escalation, say)."""
    oms = _Oms()
    oms.approve("o1")
    publish = partial(oms.publish_stream, "order_escalation", {"client_order_id": "o1"})
    oms.after_commit(oms.push("o1", publish), first=True)
    oms.after_iteration()
    assert oms.pub.seqs == [1, 2]
    assert oms.calls[-2:] == ["event o1 PENDING_SUBMIT", "stream order_escalation"]


def test_a_turns_order_events_go_as_one_message_before_what_a_send_publishes() -> None:
    """Two orders approved in one turn: their events go out as one `OrderEvents` (in
    event_seq order), and a stream event a send publishes after them, with the next seq."""
    oms = _Oms()
    oms.approve("o1")
    oms.approve("o2")
    publish = partial(oms.publish_stream, "order_escalation", {"client_order_id": "o1"})
    oms.after_commit(oms.push("o1", publish), first=True)
    oms.after_iteration()
    assert oms.pub.messages == ["order_events", "stream_event"]
    assert oms.pub.seqs == [1, 2, 3]
    assert oms.calls[-3:] == [
        "event o1 PENDING_SUBMIT", "event o2 PENDING_SUBMIT", "stream order_escalation",
    ]  # fmt: skip


def test_a_turn_with_more_events_than_a_batch_holds_publishes_several() -> None:
    """Over `MAX_EVENT_BATCH` events in one turn: several messages, none over the bound,
    every event once and in order (the one left over goes as a lone `OrderEvent`)."""
    oms = _Oms()
    n = MAX_EVENT_BATCH * 2 + 1
    for i in range(n):
        oms.approve(f"o{i:04d}")
    oms.after_iteration()
    assert oms.pub.messages == ["order_events", "order_events", "order_event"]
    assert oms.pub.seqs == list(range(1, n + 1))


def test_the_turns_replies_run_inside_the_client_reply_window_after_the_commit() -> None:
    """The replies of a turn run after its commit, inside one window of the client
    endpoint (a batch's answers of the turn go out as one `Replies` at its close), which
    is closed again when the turn ends, also when a reply raises."""
    oms = _Oms()
    oms.approve("o1")
    seen: list[tuple[bool, int]] = []
    oms.after_commit(lambda: seen.append(("commit" in oms.calls, oms.clients.holding)))

    def broken() -> None:
        raise RuntimeError("a reply broke")

    oms.after_commit(broken)
    with pytest.raises(RuntimeError):
        oms.after_iteration()
    assert seen == [(True, 1)]
    assert (oms.clients.windows, oms.clients.holding) == (1, 0)


def test_an_orders_event_carries_every_fill_since_its_previous_event() -> None:
    """Two executions of `o1` applied in one turn (a connector's batch), then a status
    change: its one event carries both fills, 3 @ 90 and 1 @ 94 as 4 @ 91, not the last
    outcome's (none). Risk counts an event's fill as all that is new of an order it no
    longer knows (a late fill on an order ended before its exposure rebuild)."""
    oms = _Oms()
    oms.approve("o1", qty=D(10))
    oms.after_iteration()
    oms.record(oms.book.apply_fill("o1", "E1", D(3), D(90), 3))
    oms.record(oms.book.apply_fill("o1", "E2", D(1), D(94), 4))
    oms.record(oms.book.request_cancel("o1", 5))
    oms.commits._must = True
    oms.after_iteration()
    first, event = oms.pub.events
    assert first.fill_qty is None and event.order.status is OrderStatus.PENDING_CANCEL
    assert (event.order.cum_qty, event.fill_qty, event.fill_px) == (4, 4, 91)
    oms.record(oms.book.apply_fill("o1", "E3", D(2), D(95), 6))
    oms.commits._must = True
    oms.after_iteration()
    assert (oms.pub.events[-1].fill_qty, oms.pub.events[-1].fill_px) == (2, 95)  # since then
