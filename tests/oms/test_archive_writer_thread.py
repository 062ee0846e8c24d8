"""The OMS archive's writer thread (actors/oms/archive_writer.py) is never a silent,
permanent stall: a thread that could not start, or that died, is noticed on the loop, its
batches are reported failed (counted, kept in memory) and a later hand-over archives them.
Review finding 2 of branch `arch`."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
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
