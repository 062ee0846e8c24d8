"""The archive writes after a durable journal commit never raise out of it, and no commit
does unbounded archive work (review rv_recon2b, findings 3 and 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

import actors.oms.evictions as evictions_mod
from actors.oms.evictions import RETRY_S
from actors.oms.journal import Journal
from actors.oms.retention import open_book
from tests.oms.test_evictions import _book, _cancelled, _Clock, _failures
from tests.oms.test_exec_quarantine import _Host
from tests.runtime.test_heap_trim import _Timers


def test_any_archive_failure_after_the_commit_is_counted_and_retried_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
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

    monkeypatch.setattr(archive, "put", no_memory)
    failures = _failures()
    journal.append({"kind": "note"})
    assert journal.commit() == 1  # durable: not reported as failed
    assert _failures() == failures + 1
    assert book.held("o0") is not None and len(evictions) == 1  # kept in memory
    monkeypatch.undo()
    clock.now += RETRY_S
    evictions.sync()  # tried again: archived, out of memory
    assert book.held("o0") is None and len(archive) == 1
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


def test_each_commit_writes_at_most_flush_every_orders_and_the_timer_the_rest(
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
    archive.sync()
    assert len(archive) == 2  # this commit's share
    _trim, (interval_s, flush) = timers.every
    assert interval_s == RETRY_S
    journal.append({"kind": "note"})  # a record not committed yet: the timer waits
    flush()
    archive.sync()
    assert len(archive) == 2
    journal.commit()
    flush()
    archive.sync()
    assert len(archive) == 5
    evictions.sync()
    assert evictions.pending_orders() == 0
    journal.close()


def test_the_gauge_shows_the_orders_waiting_for_the_archive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    book, evictions, archive = _book(tmp_path, clock)
    host = _Host(tmp_path, book)
    _cancelled(host, "o0")
    _cancelled(host, "o1")  # o0 let go

    def full(*args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(archive, "put", full)
    evictions.flush()
    assert REGISTRY.get_sample_value("tradepulse_oms_archive_pending_orders") == 1
    monkeypatch.undo()
    clock.now += RETRY_S
    evictions.sync()
    assert REGISTRY.get_sample_value("tradepulse_oms_archive_pending_orders") == 0
