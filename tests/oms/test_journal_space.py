"""The OMS journal's space reserve and "journal low" (issue 15, section 3, disk full): space
is kept allocated past the journal's end and topped up in chunks; a top-up that fails with
ENOSPC (injected) makes the journal low, logged once, and intake refuses new submits with
JOURNAL_UNAVAILABLE while cancels go on; space back, it reopens by itself. Pure apart from
a real journal in tmp_path (real fallocate)."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from actors.oms.intake import Intake
from actors.oms.journal import Journal
from actors.oms.journal_space import JournalSpace, allocate_keep_size, allocated_past_end
from actors.oms.order_book import OrderBook
from actors.oms.orders import Outcome
from protocol.client import JournalUnavailable, _raise_for
from protocol.codec import Envelope
from protocol.config import OmsCfg
from protocol.messages import (
    ErrorCode,
    ExecReport,
    Message,
    OrderAck,
    OrderStatus,
    OrdType,
    ReplaceOrder,
    RequestRejected,
    RiskVerdict,
    Side,
    SubmitOrder,
    VenueConnState,
)
from tests.log_stub import RecordingLog

D = Decimal
V = "sim"
RESERVE = 64 << 10
PLENTY = 1 << 40


class _Disk:
    """An injected filesystem: allocations pass through to fallocate until `full`."""

    def __init__(self) -> None:
        self.full = False
        self.unsupported = False
        self.calls = 0
        self.free = PLENTY

    def allocate(self, fd: int, offset: int, length: int) -> None:
        self.calls += 1
        if self.unsupported:
            raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))
        if self.full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        allocate_keep_size(fd, offset, length)

    def free_bytes(self, fd: int) -> int:
        return 0 if self.full else self.free


def _space(tmp_path: Path, disk: _Disk, log: RecordingLog) -> tuple[Journal, JournalSpace]:
    journal, _ = Journal.open(tmp_path, fsync=False)
    space = JournalSpace(journal, RESERVE, log, allocate=disk.allocate, free=disk.free_bytes)
    return journal, space


def _commit(journal: Journal, space: JournalSpace, n: int = 1) -> None:
    journal.append({"kind": "fill", "pad": "x" * (n - 1)})
    journal.commit()
    space.check()


def test_the_reserve_is_allocated_past_the_end_and_topped_up_in_chunks(tmp_path: Path) -> None:
    """At start a whole reserve is allocated past the segment's end (its size unchanged);
    500 commits of ~1 KiB (8x the reserve) cost a handful of fallocate calls, not one each."""
    disk, log = _Disk(), RecordingLog()
    journal, space = _space(tmp_path, disk, log)
    assert disk.calls == 1 and space.remaining == RESERVE and not space.low
    assert os.fstat(journal.fileno()).st_size == 0
    assert allocated_past_end(journal.fileno()) >= RESERVE
    for _ in range(500):
        _commit(journal, space, 1000)
    assert journal.offset > 7 * RESERVE
    assert 2 <= disk.calls <= 20
    assert space.remaining >= RESERVE // 2
    journal.close()


def test_a_sealed_segment_gives_its_reserve_back_and_the_new_one_gets_one(
    tmp_path: Path,
) -> None:
    """A snapshot starts a new segment: the old one is trimmed to its end (no blocks past
    it), the next check reserves space in the new one."""
    disk, log = _Disk(), RecordingLog()
    journal, space = _space(tmp_path, disk, log)
    _commit(journal, space, 100)
    old_fd = os.dup(journal.fileno())
    journal.write_snapshot({"orders": []})
    assert allocated_past_end(old_fd) == 0
    os.close(old_fd)
    assert space.remaining == 0
    space.check()
    assert space.remaining == RESERVE and journal.segment == 2
    journal.close()


def test_enospc_on_a_top_up_makes_the_journal_low_logged_once_then_it_recovers(
    tmp_path: Path,
) -> None:
    """The disk fills: the probe's top-up fails with ENOSPC, the journal is low (the reason
    names the journal dir and ENOSPC), logged once however many probes fail; commits still
    go into the reserve. Space back: the next probe restores it, logged once."""
    disk, log = _Disk(), RecordingLog()
    journal, space = _space(tmp_path, disk, log)
    _commit(journal, space, 100)
    disk.full = True
    for _ in range(5):
        space.probe()
    assert space.low and space.problem is not None
    assert str(tmp_path) in space.problem and "ENOSPC" in space.problem
    assert log.names() == ["journal_space_low"]
    before = space.remaining
    _commit(journal, space, 100)  # in flight: journalled out of the reserve
    assert 0 < space.remaining < before
    disk.full = False
    space.probe()
    assert not space.low and space.problem is None
    assert log.names() == ["journal_space_low", "journal_space_restored"]
    assert space.remaining == RESERVE
    journal.close()


def test_a_commit_that_needs_a_top_up_on_a_full_disk_makes_the_journal_low(
    tmp_path: Path,
) -> None:
    """Between probes: the reserve falls under half after a commit, the top-up fails."""
    disk, log = _Disk(), RecordingLog()
    journal, space = _space(tmp_path, disk, log)
    disk.full = True
    while not space.low:
        _commit(journal, space, 4000)
    assert space.remaining < RESERVE // 2
    assert log.names() == ["journal_space_low"]
    journal.close()


def test_less_than_one_reserve_free_on_the_filesystem_is_low(tmp_path: Path) -> None:
    """The reserve is whole but the filesystem could not give another: low already, so new
    orders stop before the reserve is needed."""
    disk, log = _Disk(), RecordingLog()
    journal, space = _space(tmp_path, disk, log)
    disk.free = RESERVE - 1
    space.probe()
    assert space.low and "under one reserve" in (space.problem or "")
    disk.free = RESERVE + RESERVE // 2  # above the threshold, under the hysteresis
    space.probe()
    assert space.low and log.names() == ["journal_space_low"]
    disk.free = PLENTY
    space.probe()
    assert not space.low
    journal.close()


def test_a_start_on_a_full_disk_starts_low_instead_of_failing(tmp_path: Path) -> None:
    """A restart while the disk is full: no exception, the journal starts low."""
    journal, _ = Journal.open(tmp_path, fsync=False)
    journal.close()
    disk, log = _Disk(), RecordingLog()
    disk.full = True
    journal, space = _space(tmp_path, disk, log)
    assert space.low and log.names() == ["journal_space_low"]
    journal.close()


def test_a_reserve_left_by_an_earlier_incarnation_is_used_at_start(tmp_path: Path) -> None:
    """A killed OMS leaves its reserve past the segment's end; the next start counts it,
    even when it cannot allocate more."""
    disk, log = _Disk(), RecordingLog()
    journal, space = _space(tmp_path, disk, log)
    _commit(journal, space, 100)
    journal.close()  # as a kill -9 does: no trim
    disk.full = True
    journal, space = _space(tmp_path, disk, log)
    assert space.low and space.remaining >= RESERVE - 4096
    journal.close()


def test_a_filesystem_without_fallocate_runs_without_a_reserve(tmp_path: Path) -> None:
    """EOPNOTSUPP: said once, never low for it, not asked again."""
    disk, log = _Disk(), RecordingLog()
    disk.unsupported = True
    journal, space = _space(tmp_path, disk, log)
    for _ in range(3):
        _commit(journal, space)
        space.probe()
    assert not space.low and disk.calls == 1
    assert log.names() == ["journal_reserve_unsupported"]
    journal.close()


# --------------------------------------------------------------------------- intake


class _OpenGate:
    stopped_venues: frozenset[str] = frozenset()  # no venue stopped by an operator

    def refusal(self, venue: str) -> None:
        return None

    def pause_refusal(self, venue: str) -> None:
        return None


class _Host:
    def __init__(self) -> None:
        self.book = OrderBook()
        self.gate = _OpenGate()  # no operator pause (actors.oms.intake_state)
        self.journal_problem: str | None = None
        self.kill_switch_engaged = False
        self.pending: list[Callable[[], None]] = []

    def record(self, outcome: Outcome) -> Outcome:
        return outcome

    def unready(self, venue: str) -> str | None:
        return None  # every venue reconciled (`_Link`)

    def after_commit(self, fn: Callable[[], None], *, first: bool = False) -> None:
        self.pending.append(fn)

    def drop_unsent(self, client_order_id: str) -> bool:
        return False  # no kill-switch, trading open

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        fn()  # a loop turn ends at once here: intake's risk checks go out as they come

    def run_pending(self) -> None:
        pending, self.pending = self.pending, []
        for fn in pending:
            fn()


class _Link:
    ever_reconciled = True
    depth = 0
    ready = True
    state = VenueConnState.CONNECTED

    def __init__(self) -> None:
        self.pushed: list[str] = []

    def push(self, coid: str) -> None:
        self.pushed.append(coid)


class _Risk:
    def __init__(self) -> None:
        self.asked: list[Message] = []

    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> str:
        self.asked.append(body)
        return "id"


class _Reply:
    def __init__(self) -> None:
        self.answers: list[Message] = []
        self.rejections: list[tuple[Any, ...]] = []

    def __call__(self, body: Message) -> None:
        self.answers.append(body)

    def reject(self, code: ErrorCode, reason: str, field: str | None = None) -> None:
        self.rejections.append((code, reason, field))


def _refused() -> float:
    value = REGISTRY.get_sample_value(
        "tradepulse_orders_refused_total", {"reason": "journal_unavailable"}
    )
    return value or 0.0


def _live_order(host: _Host, coid: str = "o1") -> None:
    """`coid` accepted at the venue (qty 10 @ 95)."""
    msg = SubmitOrder(client_order_id=coid, venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(10), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    assert host.book.submit(msg, 1).applied
    assert host.book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).applied
    order = host.book.get(coid)
    assert order is not None
    accepted = ExecReport(venue=V, exec_id=f"E-{coid}", kind="accepted",
                          cl_ord_id=order.cl_ord_id)  # fmt: skip
    assert host.book.apply_exec(accepted, 3).applied


def test_intake_refuses_new_orders_while_the_journal_is_low_and_cancels_go_on() -> None:
    """Low: a submit is refused JOURNAL_UNAVAILABLE with the journal's reason at once (no
    risk round trip, nothing journalled), counted; a cancel and a quantity-lowering replace
    go through; a replace that raises the quantity or moves the price is refused."""
    host, link, risk = _Host(), _Link(), _Risk()
    intake = Intake(host, {V: link}, risk, OmsCfg())  # type: ignore[arg-type, dict-item]
    _live_order(host)
    assert host.book.get("o1") is not None
    host.journal_problem = "OMS journal /x/oms cannot reserve space (ENOSPC: ...)"
    before = _refused()
    reply = _Reply()
    msg = SubmitOrder(client_order_id="o2", venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(1), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    intake.submit(msg, reply)  # type: ignore[arg-type]
    assert reply.rejections == [(ErrorCode.JOURNAL_UNAVAILABLE, host.journal_problem, None)]
    assert host.book.get("o2") is None and risk.asked == []
    assert _refused() == before + 1
    with pytest.raises(JournalUnavailable, match="ENOSPC"):
        _raise_for(
            RequestRejected(code=ErrorCode.JOURNAL_UNAVAILABLE, reason=reply.rejections[0][1])
        )

    for replace in (ReplaceOrder(client_order_id="o1", qty=D(20)),
                    ReplaceOrder(client_order_id="o1", qty=D(5), price=D(96))):  # fmt: skip
        reply = _Reply()
        intake.cancel_or_replace("o1", reply, replace)  # type: ignore[arg-type]
        assert [r[0] for r in reply.rejections] == [ErrorCode.JOURNAL_UNAVAILABLE]
    assert risk.asked == [] and _refused() == before + 3

    reply = _Reply()
    intake.cancel_or_replace("o1", reply, None)  # type: ignore[arg-type]
    host.run_pending()
    assert reply.rejections == [] and isinstance(reply.answers[0], OrderAck)
    order = host.book.get("o1")
    assert order is not None and order.status is OrderStatus.PENDING_CANCEL
    assert link.pushed == ["o1"]

    _live_order(host, "o3")
    reply = _Reply()
    intake.cancel_or_replace("o3", reply, ReplaceOrder(client_order_id="o3", qty=D(5)))  # type: ignore[arg-type]
    host.run_pending()
    assert reply.rejections == [] and risk.asked == []  # lowering: takes risk off, no risk
    order = host.book.get("o3")
    assert order is not None and order.status is OrderStatus.PENDING_REPLACE
    assert link.pushed == ["o1", "o3"]


def test_intake_takes_orders_again_once_the_journal_is_no_longer_low() -> None:
    host, link, risk = _Host(), _Link(), _Risk()
    intake = Intake(host, {V: link}, risk, OmsCfg())  # type: ignore[arg-type, dict-item]
    host.journal_problem = "full"
    msg = SubmitOrder(client_order_id="o2", venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(1), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    intake.submit(msg, _Reply())  # type: ignore[arg-type]
    host.journal_problem = None
    reply = _Reply()
    intake.submit(msg, reply)  # type: ignore[arg-type]
    assert reply.rejections == [] and len(risk.asked) == 1
    order = host.book.get("o2")
    assert order is not None and order.status is OrderStatus.PENDING_RISK
