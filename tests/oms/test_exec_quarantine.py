"""An execution whose apply raises is quarantined, not left to block its venue forever
(actors/oms/exec_quarantine.py). Before, the OMS answered it INTERNAL and never acked it:
the connector sent it again forever, every execution cut after it was inconsistent and
every reconciliation pass of the venue failed. The fault is injected (fuzzing found no real
input that raises: tests/oms/test_exec_fuzz.py). Pure: no sockets; the intake pause is the
real `IntakeGate` writing its file under tmp_path."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from actors.oms.exec_cut import ExecLog
from actors.oms.exec_intake import ExecIntake
from actors.oms.exec_quarantine import POISON_ENV, ExecApplier
from actors.oms.intake_state import IntakeGate, load_pauses
from actors.oms.journal import encode_record
from actors.oms.order_archive import OrderArchive, Retention
from actors.oms.order_book import OrderBook
from actors.oms.orders import Outcome
from actors.oms.quarantined import KEEP, QUARANTINED, Quarantined
from protocol.codec import Sender, decode
from protocol.config import OmsCfg
from protocol.messages import (
    ExecAck,
    ExecCut,
    ExecReport,
    ExecReports,
    OrderStatus,
    OrdType,
    RiskVerdict,
    Side,
    SubmitOrder,
)
from protocol.wire_out import dump
from tests.log_stub import RecordingLog

V = "simA"
D = Decimal


@dataclass
class _Cfg:
    oms: OmsCfg = field(default_factory=OmsCfg)


class _Switch:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    def engage(self, reason: str) -> None:
        self.reasons.append(reason)


class _Host:
    """The OMS as the applier and `ExecIntake` see it: the real book; the journal is
    the list of records `record` was given; replies wait for the commit."""

    def __init__(self, tmp_path: Path, book: OrderBook | None = None) -> None:
        self.book = book or OrderBook()
        self.log = RecordingLog()
        self.gate = IntakeGate(tmp_path, tmp_path / "rt" / "stops.json", [V], self.log)
        self.kill_switch = _Switch()
        self.kill_switch_engaged = False
        self.cfg = _Cfg()
        self.journal: list[dict[str, Any]] = []
        self.streams: list[tuple[str, dict[str, Any]]] = []
        self.waiting: list[Callable[[], None]] = []
        self.exec_log = ExecLog()
        self.exec_applier = ExecApplier(self)  # type: ignore[arg-type]  # stub host
        self.venues: dict[str, Any] = {}

    def record(self, outcome: Outcome, venue: str = "") -> Outcome:
        for rec in outcome.records:
            encode_record(rec)  # as `Journal.append`: every record must encode
            self.journal.append(rec)
        return outcome

    def publish_stream(self, event: str, data: dict[str, Any]) -> None:
        self.streams.append((event, data))

    def after_commit(self, fn: Callable[[], None], *, first: bool = False) -> None:
        self.waiting.append(fn)

    def durable_crash_point(self, name: str) -> None:
        pass

    def _on_exec(self, report: ExecReport, reply: Any, connector_epoch: int) -> None:
        """As the OMS takes a lone execution (`OmsActor.execs`)."""
        ExecIntake(self, self.log).on_report(report, reply, connector_epoch)  # type: ignore[arg-type]


def _live(book: OrderBook, coid: str = "o1") -> str:
    msg = SubmitOrder(client_order_id=coid, venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(10), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    book.submit(msg, 1)
    book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2)
    order = book.get(coid)
    assert order is not None
    accepted = ExecReport(venue=V, exec_id="A1", kind="accepted", cl_ord_id=order.cl_ord_id)
    book.apply_exec(accepted, 3)
    return order.cl_ord_id


def _fill(cl: str, exec_id: str = "F1", qty: str = "4") -> ExecReport:
    return ExecReport(venue=V, exec_id=exec_id, kind="fill", cl_ord_id=cl, last_qty=D(qty),
                      last_px=D(95), cum_qty=D(qty), exec_seq=5)  # fmt: skip


def _raise_in(book: OrderBook, method: str, exc: Exception) -> None:
    """Inject a fault: the book's `method` raises (a bug in our apply code)."""

    def broken(*args: Any, **kwargs: Any) -> Outcome:
        raise exc

    setattr(book, method, broken)


class _Reply:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def __call__(self, body: Any) -> None:
        self.sent.append(body)


def _quarantined_total() -> float:
    name = "tradepulse_oms_executions_quarantined_total"
    return REGISTRY.get_sample_value(name, {"venue": V}) or 0.0


def test_an_execution_whose_apply_raises_is_acked_journalled_and_halts_the_venue(
    tmp_path: Path,
) -> None:
    """The apply of a fill raises: the OMS still acks it after the commit (the connector's
    cuts advance), journals it as an `exec_quarantined` record, applies nothing, logs
    `execution_quarantined` (error), counts it, publishes an `order_escalation`, pauses
    intake for the venue (persisted) and engages the kill-switch (a fill moves a
    position). Before: the exception came out of `_on_exec` (answered INTERNAL, no ack)."""
    host = _Host(tmp_path)
    cl = _live(host.book)
    _raise_in(host.book, "apply_fill", ZeroDivisionError("injected"))
    before = _quarantined_total()
    reply = _Reply()
    host._on_exec(_fill(cl), reply, 7)  # type: ignore[arg-type]
    for fn in host.waiting:  # the commit
        fn()
    assert reply.sent == [ExecAck(venue=V, exec_ids=["F1"])]
    [rec] = host.journal
    assert rec["kind"] == QUARANTINED and rec["exec_id"] == "F1" and rec["venue"] == V
    assert rec["error"] == "ZeroDivisionError: injected"
    assert ExecReport.model_validate_json(rec["report"]) == _fill(cl)  # kept as received
    order = host.book.get("o1")
    assert order is not None and order.cum_qty == 0 and "F1" not in order.exec_ids
    assert host.log.names("error") == ["execution_quarantined"]
    assert _quarantined_total() - before == 1
    assert [(e, d["kind"]) for e, d in host.streams] == [
        ("order_escalation", "execution_quarantined")
    ]
    assert host.kill_switch.reasons == [f"execution_quarantined: {V} F1"]
    pauses, _ = load_pauses(host.gate.path)  # what the next OMS incarnation reads
    assert V in pauses.venues and "F1" in pauses.venues[V].reason
    assert host.exec_log.mark(V) == 0  # nothing applied: the cut ring has nothing of it


def test_a_quarantined_execution_sent_again_is_acked_and_never_applied(tmp_path: Path) -> None:
    """The connector sends the quarantined execution again (its ack lost, or the OMS
    restarted: the record is replayed, or read from a snapshot): acked, not applied, not
    journalled again - even once the fault is gone."""
    host = _Host(tmp_path)
    cl = _live(host.book)
    base = host.book.to_dict()
    _raise_in(host.book, "apply_fill", ValueError("injected"))
    assert host.exec_applier.apply(_fill(cl), 10) is None
    journal = list(host.journal)
    del host.book.apply_fill  # the fault is gone: the class's method again
    assert host.exec_applier.apply(_fill(cl), 11) is None
    assert host.journal == journal
    for book in (_replayed(base, journal), OrderBook.from_dict(_replayed(base, journal).to_dict())):
        again = _Host(tmp_path, book)
        reply = _Reply()
        again._on_exec(_fill(cl), reply, 8)  # type: ignore[arg-type]
        for fn in again.waiting:
            fn()
        assert reply.sent == [ExecAck(venue=V, exec_ids=["F1"])] and again.journal == []
        order = book.get("o1")
        assert order is not None and order.cum_qty == 0
    assert host.exec_applier.apply(_fill(cl, "F2"), 12) is not None  # others apply
    order = host.book.get("o1")
    assert order is not None and order.cum_qty == 4


def _acked_total() -> float:
    name = "tradepulse_oms_quarantined_executions_acked_total"
    return REGISTRY.get_sample_value(name, {"venue": V}) or 0.0


def test_a_resend_numbered_anew_is_still_the_quarantined_report_and_is_counted(
    tmp_path: Path,
) -> None:
    """A restarted connector may number the resend anew (exec_seq): the same content is
    the same report, acked and not applied; each such ack is logged and counted."""
    host = _Host(tmp_path)
    cl = _live(host.book)
    _raise_in(host.book, "apply_fill", ValueError("injected"))
    assert host.exec_applier.apply(_fill(cl), 10) is None
    del host.book.apply_fill
    acked = _acked_total()
    host.log.lines.clear()
    resend = _fill(cl).model_copy(update={"exec_seq": 99})
    assert host.exec_applier.apply(resend, 11) is None
    assert _acked_total() == acked + 1
    assert host.log.names("warning") == ["execution_quarantined_acked"]
    order = host.book.get("o1")
    assert order is not None and order.cum_qty == 0


def test_another_report_reusing_a_quarantined_exec_id_is_applied(tmp_path: Path) -> None:
    """Venues reuse ExecIDs (across days, per order): another order's fill carrying the
    quarantined report's ExecID is applied as any other (logged), not silently acked and
    dropped; the quarantined report itself sent again is still not applied."""
    host = _Host(tmp_path)
    cl1 = _live(host.book, "o1")
    cl2 = _live(host.book, "o2")
    _raise_in(host.book, "apply_fill", ValueError("injected"))
    assert host.exec_applier.apply(_fill(cl1, "E1"), 10) is None  # quarantined
    del host.book.apply_fill  # the bug is gone
    host.log.lines.clear()
    acked = _acked_total()
    reply = _Reply()
    host._on_exec(_fill(cl2, "E1"), reply, 7)  # type: ignore[arg-type]
    for fn in host.waiting:
        fn()
    o2 = host.book.get("o2")
    assert o2 is not None and o2.cum_qty == 4 and reply.sent == [ExecAck(venue=V, exec_ids=["E1"])]
    assert host.log.names("warning") == ["execution_quarantine_id_reused"]
    assert _acked_total() == acked
    assert host.exec_applier.apply(_fill(cl1, "E1"), 11) is None  # the quarantined one
    o1 = host.book.get("o1")
    assert o1 is not None and o1.cum_qty == 0


def test_a_poison_execution_inside_a_batch_is_quarantined_and_acked_with_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In an `ExecReports` (the connector's executions of one turn), the item whose apply
    raises is quarantined and acknowledged with its siblings: left unacked, the connector
    would send it again forever and hold every execution cut of the venue."""
    book = OrderBook()
    cl1, cl2 = _live(book, "o1"), _live(book, "o2")
    monkeypatch.setenv(POISON_ENV, cl1)
    host = _Host(tmp_path, book)
    quarantined = _quarantined_total()
    items = [dump(_fill(cl1, "F1")), dump(_fill(cl2, "F2"))]
    msg = ExecReports.model_construct(venue=V, reports=items)
    batch = decode(Sender(f"connector.{V}", 7).encode(msg)).body
    assert isinstance(batch, ExecReports)
    reply = _Reply()
    ExecIntake(host, host.log).on_batch(batch, reply, 7)  # type: ignore[arg-type]
    assert reply.sent == []  # nothing before the commit
    for fn in host.waiting:
        fn()
    assert reply.sent == [ExecAck(venue=V, exec_ids=["F1", "F2"])]
    assert _quarantined_total() == quarantined + 1
    o1, o2 = book.get("o1"), book.get("o2")
    assert o1 is not None and o1.cum_qty == 0
    assert o2 is not None and o2.cum_qty == 4


def _replayed(base: dict[str, Any], records: list[dict[str, Any]]) -> OrderBook:
    book = OrderBook.from_dict(base)
    for rec in records:
        book.apply_record(rec)
    return book


def test_steps_applied_before_the_raise_are_journalled_so_replay_matches_memory(
    tmp_path: Path,
) -> None:
    """A cancel whose CumQty says we missed 4: the missed fill is applied, then the cancel's
    own step raises. The fill changed the book in memory, so it is journalled too (memory
    and journal stay equal: a replay gives the same order) and the report is quarantined."""
    host = _Host(tmp_path)
    cl = _live(host.book)
    base = host.book.to_dict()
    _raise_in(host.book, "record_event", KeyError("injected"))
    cancelled = ExecReport(venue=V, exec_id="C1", kind="cancelled", cl_ord_id=cl,
                           cum_qty=D(4), avg_px=D(95))  # fmt: skip
    assert host.exec_applier.apply(cancelled, 10) is None
    assert [r["kind"] for r in host.journal] == ["fill", QUARANTINED]
    order = host.book.get("o1")
    assert order is not None and order.cum_qty == 4 and order.status is not OrderStatus.CANCELLED
    replay = _replayed(base, host.journal).get("o1")
    assert replay is not None and (replay.cum_qty, replay.status) == (order.cum_qty, order.status)
    logged = host.log.events("execution_quarantined")
    assert [f["steps_applied"] for f in logged] == [1]


def test_a_step_applied_before_the_raise_is_noted_in_the_exec_log(tmp_path: Path) -> None:
    """A cancel whose CumQty says we missed 4: the catch-up fill moves the position, then the
    cancel step raises. The fill is journalled and noted in the execution log as any applied
    execution is: the OMS's position as of a cut before this execution excludes the 4 (no
    false divergence for the position heartbeat) and the order is marked touched."""
    host = _Host(tmp_path)
    cl = _live(host.book)
    _raise_in(host.book, "record_event", KeyError("injected"))
    mark = host.exec_log.mark(V)
    cancelled = ExecReport(venue=V, exec_id="C1", kind="cancelled", cl_ord_id=cl,
                           cum_qty=D(4), avg_px=D(95), exec_seq=5)  # fmt: skip
    host._on_exec(cancelled, _Reply(), 7)  # type: ignore[arg-type]
    assert [r["kind"] for r in host.journal] == ["fill", QUARANTINED]
    now = {"ABC": host.book.position(V, "ABC").qty}
    assert now == {"ABC": D(4)}
    before = ExecCut(connector_epoch=7, exec_seq=4)
    assert host.exec_log.positions_as_of(V, before, now) == {"ABC": D(0)}
    assert host.exec_log.touched_after(V, mark, "o1")


def test_a_transient_failure_is_not_quarantined(tmp_path: Path) -> None:
    """OSError (the disk, the journal) or MemoryError: raised as before (answered INTERNAL,
    sent again by the connector), nothing journalled, nothing paused."""
    host = _Host(tmp_path)
    cl = _live(host.book)
    for exc in (OSError(28, "No space left on device"), MemoryError()):
        _raise_in(host.book, "apply_fill", exc)
        with pytest.raises(type(exc)):
            host.exec_applier.apply(_fill(cl), 10)
    assert host.journal == [] and host.streams == [] and host.kill_switch.reasons == []
    assert V not in host.gate.pauses.venues


def _archived_book(tmp_path: Path) -> OrderBook:
    """A book keeping one terminal order in memory: older ones are in its SQLite archive."""
    return OrderBook(Retention(OrderArchive(tmp_path / "orders.sqlite"), keep=1))


def _cancel(host: _Host, cl: str, exec_id: str) -> None:
    rep = ExecReport(venue=V, exec_id=exec_id, kind="cancelled", cl_ord_id=cl)
    out = host.exec_applier.apply(rep, 5)
    assert out is not None and out.applied


@pytest.mark.parametrize(
    "error", ["disk I/O error", "database or disk is full", "database is locked"]
)
def test_a_sqlite_failure_reading_the_archive_is_transient_not_poison(
    tmp_path: Path, error: str
) -> None:
    """A late report for an order no longer in memory is looked up in the SQLite archive;
    a failure there (sqlite3.OperationalError, not an OSError) is the machine, not the
    report: raised (answered INTERNAL, sent again), nothing journalled, nothing paused,
    and the resend is applied once the archive reads again."""
    host = _Host(tmp_path, _archived_book(tmp_path))
    cl0 = _live(host.book, "o0")
    _cancel(host, cl0, "X0")
    cl1 = _live(host.book, "o1")
    _cancel(host, cl1, "X1")  # o1 terminal: o0 leaves memory (keep=1) once archived
    assert host.book.evictions is not None
    host.book.evictions.sync()  # (after the journal commit)
    assert host.book.held("o0") is None
    archive = host.book.retention.archive  # type: ignore[union-attr]
    real_find = archive.find

    def failing(venue: str, cl: str) -> Any:
        raise sqlite3.OperationalError(error)

    archive.find = failing  # type: ignore[method-assign]
    host.journal.clear()
    late = ExecReport(venue=V, exec_id="L1", kind="fill", cl_ord_id=cl0, last_qty=D(1),
                      last_px=D(95), cum_qty=D(1))  # fmt: skip
    with pytest.raises(sqlite3.OperationalError):
        host.exec_applier.apply(late, 10)
    assert host.journal == [] and host.streams == [] and host.kill_switch.reasons == []
    assert V not in host.gate.pauses.venues and len(host.book.quarantined) == 0
    archive.find = real_find  # type: ignore[method-assign]
    out = host.exec_applier.apply(late, 11)  # the resend
    assert out is not None and out.applied and [r["kind"] for r in host.journal] == ["fill"]


def test_a_quarantined_report_that_moves_no_position_pauses_the_venue_only(
    tmp_path: Path,
) -> None:
    """An `accepted` whose apply raises: the venue's intake is paused, the kill-switch is
    left alone (no position can be wrong); a second one does not rewrite the pause."""
    host = _Host(tmp_path)
    cl = _live(host.book, "o2")
    _raise_in(host.book, "record_event", RuntimeError("injected"))
    for exec_id in ("A2", "A3"):
        report = ExecReport(venue=V, exec_id=exec_id, kind="accepted", cl_ord_id=cl)
        assert host.exec_applier.apply(report, 10) is None
    assert host.kill_switch.reasons == []
    pause = host.gate.pauses.venues[V]
    assert "A2" in pause.reason and pause.by == "oms (execution quarantined)"
    assert [r["exec_id"] for r in host.book.quarantined.records(V)] == ["A2", "A3"]


def test_a_report_without_exec_id_is_not_taken_for_a_quarantined_one(tmp_path: Path) -> None:
    """A quarantined report without an exec id does not make every later report without
    one look quarantined: the next is applied."""
    host = _Host(tmp_path)
    cl = _live(host.book)
    _raise_in(host.book, "apply_venue_status", RuntimeError("injected"))
    status = ExecReport(venue=V, exec_id="", kind="status", cl_ord_id=cl,
                        ord_status=OrderStatus.CANCELLED)  # fmt: skip
    assert host.exec_applier.apply(status, 10) is None
    del host.book.apply_venue_status
    out = host.exec_applier.apply(status, 11)
    assert out is not None and out.applied
    order = host.book.get("o1")
    assert order is not None and order.status is OrderStatus.CANCELLED


def test_the_quarantine_is_bounded() -> None:
    """At most KEEP quarantined executions are remembered (the oldest forgotten first)."""
    q = Quarantined({"venue": V, "exec_id": f"E{i}"} for i in range(KEEP + 5))
    assert len(q) == KEEP and (V, "E4") not in q and (V, "E5") in q
