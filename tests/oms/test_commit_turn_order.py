"""The OMS's turn after its commit (`OmsActor.after_iteration`): the venue sends go first
(the order's path waits on them), then the turn's order events, then replies and reads.

- A send that records (an approved order dropped unsent: kill-switch engaged, window
  closed, operator stop) is made durable before the turn's reads and replies run: a
  snapshot or page never shows a state a kill -9 would take back.
- Anything a send publishes (`publish_stream`) reaches the stream after the events built
  before it: the stream stays in event_seq order.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

from actors.oms import reads
from actors.oms.actor import OmsActor
from actors.oms.commit_policy import AfterCommit, CommitPolicy, EventHold
from actors.oms.order_book import OrderBook
from protocol.codec import Sender, decode
from protocol.messages import OrderStatus, OrdType, RiskVerdict, Side, Snapshot, SubmitOrder


class _Journal:
    def __init__(self) -> None:
        self.pending = False
        self.durable: list[str] = []  # statuses made durable, in order
        self.buffered: list[str] = []
        self.records_since_snapshot = 0

    def commit(self) -> None:
        self.durable += self.buffered
        self.buffered = []
        self.pending = False

    def poll_background(self) -> None:
        pass


class _Pub:
    def __init__(self) -> None:
        self.seqs: list[int] = []

    def send_multipart(self, frames: Any, copy: bool = True) -> None:
        self.seqs.append(decode(frames).body.event_seq)


class _Anything:
    low = False
    snapshot_every = 1_000_000

    def __getattr__(self, name: str) -> Any:
        return self if name == "oms" else (lambda *a, **k: None)


class _Oms:
    """The real `after_iteration`, commit policy, book and publishing; a stub journal."""

    after_iteration = OmsActor.after_iteration
    after_commit = OmsActor.after_commit
    publish_stream = OmsActor.publish_stream
    _publish = OmsActor._publish
    _publish_built = OmsActor._publish_built

    def __init__(self) -> None:
        self.journal = _Journal()
        self.pub = _Pub()
        self.sender = Sender("oms", 1)
        self.book = OrderBook()
        self.commits = CommitPolicy()
        self.event_hold = EventHold(lambda _d, _fn: None)
        self._after_commit = AfterCommit()
        self._built: list[Any] = []
        self._changed: dict[str, tuple[D | None, D | None]] = {}
        self.event_seq = 0
        self.gate = self.space = self.cfg = _Anything()

    def crash_point(self, name: str) -> None:
        pass

    def approved(self, coid: str) -> None:
        """`coid` submitted and approved in this turn, its records not committed yet."""
        msg = SubmitOrder(client_order_id=coid, venue="simA", symbol="ABC", side=Side.BUY,
                          qty=D(1), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
        assert self.book.submit(msg, 1).applied
        assert self.book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).applied
        self.journal.buffered += ["PENDING_RISK", "PENDING_SUBMIT"]
        self.journal.pending, self.commits._must = True, True
        self._changed[coid] = (None, None)


def test_a_read_does_not_show_a_drop_that_is_not_durable_yet() -> None:
    oms = _Oms()
    answers: list[tuple[Snapshot, list[str]]] = []  # each with what was durable then

    def read() -> None:  # a client's SnapshotRequest, then risk's verdict in the same turn
        answers.append((reads.snapshot(oms.book, oms.event_seq), list(oms.journal.durable)))  # type: ignore[arg-type]

    oms.after_commit(read)
    oms.approved("o1")

    def push() -> None:  # VenueLink.push -> OmsActor.drop_unsent (kill-switch engaged)
        oms.book.apply_venue_status("o1", OrderStatus.REJECTED, 3, reason="kill-switch")
        oms.journal.buffered.append("REJECTED")
        oms.journal.pending = True
        oms._changed["o1"] = (None, None)

    oms.after_commit(push, first=True)
    oms.after_iteration()  # type: ignore[arg-type]
    ((snap, durable),) = answers
    assert not snap.orders  # o1 ended: not open
    assert durable == ["PENDING_RISK", "PENDING_SUBMIT", "REJECTED"]  # and that was durable


def test_the_stream_is_published_in_event_seq_order() -> None:
    oms = _Oms()
    oms.approved("o1")

    def send() -> None:  # a venue send that publishes (an escalation, say)
        oms.publish_stream("order_escalation", {"client_order_id": "o1"})  # type: ignore[arg-type]

    oms.after_commit(send, first=True)
    oms.after_iteration()  # type: ignore[arg-type]
    assert oms.pub.seqs == [1, 2]
