"""The archive hand-over after a durable journal commit never raises out of it, and no
commit does unbounded archive work (review rv_recon2b, findings 3 and 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

import actors.oms.evictions as evictions_mod
from actors.oms.evictions import POLL_S, RETRY_S
from actors.oms.journal import Journal
from actors.oms.retention import open_book
from tests.helpers import eventually
from tests.oms.test_evictions import _book, _cancelled, _Clock, _failures
from tests.oms.test_exec_quarantine import _Host
from tests.runtime.test_heap_trim import _Timers


def test_any_archive_failure_after_the_commit_is_counted_and_retried_not_raised(
    tmp_path: Path,
) -> None:
    clock = _Clock()
    book, evictions, archive = _book(tmp_path, clock)
    host = _Host(tmp_path, book)
    journal, _ = Journal.open(tmp_path / "j", fsync=False)
    journal.after_commit = evictions.flush
    _cancelled(host, "o0")
    _cancelled(host, "o1")  # o0 let go

    def no_memory(*args: Any) -> None:
        raise MemoryError

    evictions.writer.before_commit = no_memory  # in the writer thread
    failures = _failures()
    journal.append({"kind": "note"})
    assert journal.commit() == 1  # durable: not reported as failed
    eventually(lambda: evictions.poll() or _failures() == failures + 1)
    assert book.held("o0") is not None and len(evictions) == 1  # kept in memory
    evictions.writer.before_commit = lambda: None
    clock.now += RETRY_S
    assert evictions.sync()  # tried again: archived, out of memory
    assert book.held("o0") is None and len(archive) == 1
    evictions.close()
    journal.close()


def test_a_raising_hand_over_does_not_raise_out_of_a_durable_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packing an order (on the loop) raises: counted, the order kept waiting (not lost
    between pending and in flight), nothing raised; handed over again later."""
    clock = _Clock()
    book, evictions, _ = _book(tmp_path, clock)
    host = _Host(tmp_path, book)
    journal, _ = Journal.open(tmp_path / "j", fsync=False)
    journal.after_commit = evictions.flush
    _cancelled(host, "o0")
    _cancelled(host, "o1")  # o0 let go

    def broken(order: object) -> None:
        raise MemoryError

    monkeypatch.setattr(evictions_mod, "_row", broken)
    failures = _failures()
    journal.append({"kind": "note"})
    assert journal.commit() == 1
    assert _failures() == failures + 1 and book.held("o0") is not None
    assert len(evictions) == 1 and evictions.in_flight == 0  # still waiting, not lost
    monkeypatch.undo()
    assert evictions.sync()  # handed over again: archived, out of memory
    assert book.held("o0") is None
    evictions.close()
    journal.close()


def test_a_raising_after_commit_hook_does_not_raise_out_of_a_durable_commit(
    tmp_path: Path,
) -> None:
    journal, _ = Journal.open(tmp_path, fsync=False)

    def broken() -> None:
        raise ValueError("hook bug")

    journal.after_commit = broken
    journal.append({"kind": "note"})
    assert journal.commit() == 1
    journal.append({"kind": "note"})
    assert journal.commit() == 1  # still usable
    journal.close()
    _, rec = Journal.open(tmp_path, fsync=False)
    assert len(rec.records) == 2


def test_each_commit_hands_over_at_most_flush_every_orders_and_the_timer_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evictions_mod, "FLUSH_EVERY", 2)
    journal, rec = Journal.open(tmp_path, fsync=False)
    timers = _Timers()
    book = open_book(journal, rec.snapshot, tmp_path, keep=1, timers=timers)
    evictions = book.evictions
    assert evictions is not None and book.retention is not None
    archive = book.retention.archive
    host = _Host(tmp_path, book)
    for i in range(6):
        _cancelled(host, f"o{i}")  # o0..o4 let go (as a replay lets them go)
    assert evictions.pending_orders() == 5
    journal.append({"kind": "note"})
    journal.commit()
    assert evictions.in_flight == 2  # this commit's share
    eventually(lambda: evictions.poll() or evictions.in_flight == 0)
    assert len(archive) == 2 and evictions.pending_orders() == 3
    _trim, (interval_s, flush) = timers.every
    assert interval_s == RETRY_S
    journal.append({"kind": "note"})  # a record not committed yet: the timer waits
    flush()
    assert evictions.in_flight == 0 and evictions.pending_orders() == 3
    journal.commit()  # two more
    eventually(lambda: evictions.poll() or evictions.in_flight == 0)
    assert len(archive) == 4
    flush()  # the timer: the last one
    eventually(lambda: evictions.poll() or evictions.in_flight == 0)
    assert len(archive) == 5
    assert evictions.sync()
    assert evictions.pending_orders() == 0
    evictions.close()
    journal.close()


def test_the_writer_reports_are_read_on_a_timer_when_no_commit_comes(tmp_path: Path) -> None:
    """After a hand-over, a `POLL_S` timer (one at a time) reads the writer's report: the
    orders leave memory with no further journal commit."""
    journal, rec = Journal.open(tmp_path, fsync=False)
    timers = _Timers()
    book = open_book(journal, rec.snapshot, tmp_path, keep=1, timers=timers)
    evictions = book.evictions
    assert evictions is not None
    host = _Host(tmp_path, book)
    for i in range(3):
        _cancelled(host, f"o{i}")
    journal.append({"kind": "note"})
    journal.commit()
    journal.append({"kind": "note"})
    journal.commit()  # still in flight: no second timer
    assert [d for d, _ in timers.later] == [POLL_S]
    _delay, tick = timers.later.pop()
    eventually(lambda: tick() or book.held("o0") is None, interval_s=0.02)
    assert book.held("o1") is None and evictions.in_flight == 0
    evictions.close()
    journal.close()


def test_the_gauge_shows_the_orders_waiting_for_the_archive(tmp_path: Path) -> None:
    clock = _Clock()
    book, evictions, _ = _book(tmp_path, clock)
    host = _Host(tmp_path, book)
    _cancelled(host, "o0")
    _cancelled(host, "o1")  # o0 let go

    def full(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    evictions.writer.before_commit = full
    assert not evictions.sync()
    assert REGISTRY.get_sample_value("tradepulse_oms_archive_pending_orders") == 1
    evictions.writer.before_commit = lambda: None
    clock.now += RETRY_S
    assert evictions.sync()
    assert REGISTRY.get_sample_value("tradepulse_oms_archive_pending_orders") == 0
    evictions.close()
