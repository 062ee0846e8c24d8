"""The OMS gives the C heap's free pages back on a timer while its journal moves and at
every journal snapshot (`actors.oms.heap_trim`, `actors.oms.retention.open_book`)."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from actors.oms.heap_trim import TRIM_EVERY_S, HeapTrim, _glibc_trim
from actors.oms.journal import Journal
from actors.oms.retention import open_book
from tests.helpers import REPO_ROOT


class _StubTrim:
    def __init__(self, gives: int = 1) -> None:
        self.calls: list[int] = []
        self.gives = gives

    def __call__(self, pad: int) -> int:
        self.calls.append(pad)
        return self.gives


class _Timers:
    def __init__(self) -> None:
        self.every: list[tuple[float, Callable[[], None]]] = []

    def call_every(self, interval_s: float, fn: Callable[[], None]) -> None:
        self.every.append((interval_s, fn))


def test_run_trims_with_no_pad_and_counts_the_trims_and_their_time() -> None:
    """Every run is one malloc_trim(0); the ones that gave memory back are counted apart."""
    gives, none = _StubTrim(1), _StubTrim(0)
    trim, idle = HeapTrim(gives), HeapTrim(none)
    trim.run()
    trim.run()
    idle.run()
    assert gives.calls == [0, 0] and none.calls == [0]
    assert (trim.trims, trim.released, idle.trims, idle.released) == (2, 2, 1, 0)
    assert trim.seconds >= trim.longest_s >= 0.0


def test_every_snapshot_syncs_the_archive_then_trims(tmp_path: Path) -> None:
    """`open_book` hooks the journal's snapshot: the archive is committed first (its orders
    must be durable before the snapshot leaves them out), then the heap is trimmed; nothing
    is trimmed between snapshots."""
    stub = _StubTrim()
    journal, rec = Journal.open(tmp_path, fsync=False)
    book = open_book(journal, rec.snapshot, tmp_path, keep=3, trim=HeapTrim(stub))
    retention = book.retention
    assert retention is not None
    seen: list[str] = []
    sync = retention.archive.sync
    retention.archive.sync = lambda: (seen.append(f"sync after {len(stub.calls)} trims"), sync())  # type: ignore[method-assign]
    assert stub.calls == []
    journal.write_snapshot(book.to_dict())
    assert seen == ["sync after 0 trims"] and stub.calls == [0]
    journal.write_snapshot(book.to_dict())
    assert stub.calls == [0, 0]
    journal.close()


def test_the_timer_trims_only_after_the_journal_moved(tmp_path: Path) -> None:
    """With the actor's timers, `open_book` trims every TRIM_EVERY_S, but only when a record
    was journalled since the last trim: an idle OMS does not trim again and again."""
    stub, timers = _StubTrim(), _Timers()
    journal, rec = Journal.open(tmp_path, fsync=False)
    open_book(journal, rec.snapshot, tmp_path, keep=3, timers=timers, trim=HeapTrim(stub))
    [(interval_s, tick)] = timers.every
    assert interval_s == TRIM_EVERY_S
    tick()
    tick()
    assert stub.calls == [0]  # the first tick, then nothing moved
    journal.append({"kind": "note", "ts_ns": 1})
    journal.commit()
    tick()
    tick()
    assert stub.calls == [0, 0]
    journal.close()


@pytest.mark.skipif(_glibc_trim() is None, reason="glibc's malloc_trim only")
def test_a_trim_gives_back_the_pages_of_a_peak_freed_below_live_chunks() -> None:
    """A peak of 48 MiB of 16 KiB chunks (under the mmap threshold: the main heap), freed
    but for every 16th chunk (so no free page is at the heap's top, where free() would
    give it back itself): RSS stays up until a trim, which gives back > 30 MiB."""
    body = textwrap.dedent(
        """
        import ctypes, json, os
        from actors.oms.heap_trim import HeapTrim
        libc = ctypes.CDLL(None)
        libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        libc.free.restype, libc.free.argtypes = None, [ctypes.c_void_p]
        def rss():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        size = 16 * 1024
        chunks = [libc.malloc(size) for _ in range(3072)]
        for c in chunks:
            ctypes.memset(c, 1, size)
        peak = rss()
        for i, c in enumerate(chunks):
            if i % 16 != 15:
                libc.free(c)
        freed = rss()
        trim = HeapTrim()
        trim.run()
        print(json.dumps({"peak": peak, "freed": freed, "trimmed": rss(),
                          "released": trim.released}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", body], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.strip().splitlines()[-1])
    mib = 2**20
    assert r["freed"] > r["peak"] - 8 * mib  # free() alone kept the pages
    assert r["freed"] - r["trimmed"] > 30 * mib and r["released"] == 1


def test_without_glibc_run_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where there is no malloc_trim (not glibc), a run is a no-op, not an error."""

    def no_libc(_: object) -> object:
        raise OSError("no such library")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    trim = HeapTrim()
    trim.run()
    assert not trim.available and trim.trims == 0
