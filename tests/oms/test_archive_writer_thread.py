"""The OMS archive's writer thread (actors/oms/archive_writer.py) is never a silent,
permanent stall: a thread that could not start, or that died, is noticed on the loop, its
batches are reported failed (counted, kept in memory) and a later hand-over archives them;
a commit that hangs is logged and its age exported. Review findings 2 and 3 of `arch`."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from actors.oms import archive_writer
from actors.oms import evictions as ev
from tests.oms.test_evictions import _book, _cancelled, _Clock, _failures
from tests.oms.test_exec_quarantine import _Host


def test_a_writer_thread_that_failed_to_start_is_started_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first start fails (RuntimeError "can't start new thread"): before, `_thread` was
    set anyway, every later batch queued to a thread that never ran (in flight forever,
    nothing counted) and the stop's close() raised (join of an unstarted thread)."""
    clock = _Clock()
    book, evictions, archive = _book(tmp_path, clock)
    host = _Host(tmp_path, book)
    real_start = threading.Thread.start
    starts = {"n": 0}

    def start_once_failing(self: threading.Thread) -> None:
        starts["n"] += 1
        if starts["n"] == 1:
            raise RuntimeError("can't start new thread")
        real_start(self)

    monkeypatch.setattr(archive_writer.threading.Thread, "start", start_once_failing)
    before = _failures()
    try:
        for i in range(6):
            _cancelled(host, f"o{i}")
            evictions.flush()  # each journal commit
            clock.now += 5.0  # past RETRY_S
        assert _failures() - before == 1  # the failed start, counted once
        assert evictions.sync(timeout_s=10.0)
        assert evictions.in_flight == 0 and len(evictions) == 0
        assert book.held("o0") is None and book.get("o0") is not None  # archived
    finally:
        assert evictions.close(5.0)
        archive.close()


def test_a_writer_thread_that_died_is_noticed_and_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exception escaping the thread (the rollback after a failed commit raised
    MemoryError): before, the batch it held was never reported, so in flight forever and
    nothing counted or logged. Now: `order_archive_writer_died`, the batch failed (counted,
    kept in memory), and written by a new thread after RETRY_S."""
    clock = _Clock()
    book, evictions, archive = _book(tmp_path, clock)
    host = _Host(tmp_path, book)

    def rollback_fails(db: object) -> None:
        raise MemoryError

    def disk_error() -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(archive_writer, "_rolled_back", rollback_fails)
    evictions.writer.before_commit = disk_error
    before = _failures()
    try:
        _cancelled(host, "o0")
        _cancelled(host, "o1")  # o0 let go (keep=1)
        with capture_logs() as logs:
            evictions.flush()
            dead = evictions.writer._thread  # noqa: SLF001
            assert dead is not None
            dead.join(10.0)
            assert not dead.is_alive()
            evictions.poll()
        assert "order_archive_writer_died" in [e["event"] for e in logs]
        assert _failures() - before == 1 and evictions.in_flight == 0
        assert book.held("o0") is not None  # still in memory
        monkeypatch.undo()
        evictions.writer.before_commit = lambda: None
        clock.now += ev.RETRY_S
        assert evictions.sync(timeout_s=10.0)
        assert book.held("o0") is None and book.get("o0") is not None  # archived
    finally:
        assert evictions.close(5.0)
        archive.close()


def _oldest_unconfirmed() -> float | None:
    return REGISTRY.get_sample_value("tradepulse_oms_archive_oldest_unconfirmed_seconds")


def test_a_hung_archive_commit_is_logged_and_its_age_exported(tmp_path: Path) -> None:
    """Review finding 3: a COMMIT that never returns (an fsync hung on a sick device) failed
    nothing, so nothing was counted or logged however long it lasted (eviction stopped at
    MAX_IN_FLIGHT). Now the age of the oldest unconfirmed batch is a gauge (alert
    OrderArchiveStalled) and past STALL_S it is logged, once per STALL_S."""
    clock = _Clock()
    book, evictions, archive = _book(tmp_path, clock)
    host = _Host(tmp_path, book)
    release = threading.Event()
    evictions.writer.before_commit = lambda: None if release.wait(30.0) else None
    try:
        with capture_logs() as logs:
            for i in range(300):
                _cancelled(host, f"o{i}")
                if i % 20 == 0:
                    evictions.flush()  # each journal commit
                    clock.now += 10.0  # 150 s in all
            evictions.flush()
        stalled = [e for e in logs if e["event"] == "order_archive_commit_stalled"]
        assert 4 <= len(stalled) <= 5, stalled  # once per STALL_S of the 150 s
        assert stalled[0]["oldest_unconfirmed_s"] >= ev.STALL_S and stalled[0]["in_flight"] > 0
        assert (_oldest_unconfirmed() or 0.0) >= 140.0
        release.set()
        assert evictions.sync(timeout_s=10.0)
        assert _oldest_unconfirmed() == 0.0  # nothing waits
    finally:
        release.set()
        assert evictions.close(5.0)
        archive.close()
