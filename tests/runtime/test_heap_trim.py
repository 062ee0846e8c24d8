"""Actors give the C heap's free pages back on a timer while their work moves: the OMS also
at every journal snapshot (`actors.runtime.heap_trim`, `actors.oms.retention.open_book`),
the connectors, venue simulators and risk while their loop has work (`Actor.trims_heap`)."""

from __future__ import annotations

import ctypes
import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from actors.oms.journal import Journal
from actors.oms.retention import open_book
from actors.runtime import heap_trim
from actors.runtime.heap_trim import MAX_EVERY_S, SLOW_S, TRIM_EVERY_S, HeapTrim, _glibc_trim
from tests.helpers import REPO_ROOT, SystemUnderTest, eventually, metric_value


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
        self.later: list[tuple[float, Callable[[], None]]] = []

    def call_every(self, interval_s: float, fn: Callable[[], None]) -> None:
        self.every.append((interval_s, fn))

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.later.append((delay_s, fn))


def test_run_trims_with_no_pad_and_counts_the_trims_and_their_time() -> None:
    """Every run is one malloc_trim(0); the ones that gave memory back are counted apart."""
    gives, none = _StubTrim(1), _StubTrim(0)
    trim, idle = HeapTrim(gives, actor="t"), HeapTrim(none, actor="t")
    trim.run()
    trim.run()
    idle.run()
    assert gives.calls == [0, 0] and none.calls == [0]
    assert (trim.trims, trim.released, idle.trims, idle.released) == (2, 2, 1, 0)
    assert trim.seconds >= trim.longest_s >= 0.0


def test_every_snapshot_tells_the_evictions_then_trims(tmp_path: Path) -> None:
    """`open_book` hooks the journal's snapshot: the evictions count it first (an order read
    back from the archive waits for a snapshot started after it), then the heap is trimmed;
    nothing is trimmed between snapshots."""
    stub = _StubTrim()
    journal, rec = Journal.open(tmp_path, fsync=False)
    book = open_book(journal, rec.snapshot, tmp_path, keep=3, trim=HeapTrim(stub, actor="oms"))
    evictions = book.evictions
    assert evictions is not None
    seen: list[str] = []
    started = evictions.snapshot_started
    evictions.snapshot_started = lambda: (
        seen.append(f"sync after {len(stub.calls)} trims"),
        started(),
    )  # type: ignore[method-assign]
    assert stub.calls == []
    journal.write_snapshot(book.to_dict())
    assert seen == ["sync after 0 trims"] and stub.calls == [0]
    journal.write_snapshot(book.to_dict())
    assert stub.calls == [0, 0]
    journal.close()


class _Clock:
    """A fake monotonic clock; a `_SlowTrim` advances it by the time its trims take."""

    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


class _SlowTrim(_StubTrim):
    def __init__(self, clock: _Clock, takes_s: list[float]) -> None:
        super().__init__()
        self.clock, self.takes_s = clock, takes_s

    def __call__(self, pad: int) -> int:
        self.clock.now_s += self.takes_s.pop(0)
        return super().__call__(pad)


def test_the_timer_trims_only_after_the_journal_moved(tmp_path: Path) -> None:
    """With the actor's timers, `open_book` trims every TRIM_EVERY_S, but only when a record
    was journalled since the last trim: an idle OMS does not trim again and again."""
    stub, timers, clock = _StubTrim(), _Timers(), _Clock()
    journal, rec = Journal.open(tmp_path, fsync=False)
    trim = HeapTrim(stub, clock=clock, actor="t")
    open_book(journal, rec.snapshot, tmp_path, keep=3, timers=timers, trim=trim)
    (interval_s, tick), _archive_flush = timers.every
    assert interval_s == TRIM_EVERY_S
    tick()
    clock.now_s += TRIM_EVERY_S
    tick()
    assert stub.calls == [0]  # the first tick, then nothing moved
    journal.append({"kind": "note", "ts_ns": 1})
    journal.commit()
    clock.now_s += TRIM_EVERY_S
    tick()
    clock.now_s += TRIM_EVERY_S
    tick()
    assert stub.calls == [0, 0]
    journal.close()


def test_slow_periodic_trims_back_off_and_a_fast_one_resets_the_wait() -> None:
    """A big fragmented heap makes every trim slow (glibc walks each free chunk each time):
    after a trim slower than SLOW_S the next periodic one waits twice as long (up to
    MAX_EVERY_S); a fast one brings the wait back to TRIM_EVERY_S. Counted in metrics."""
    clock = _Clock()
    slow = SLOW_S * 10
    stub = _SlowTrim(clock, [slow, slow, slow, 0.0, 0.0])
    trim = HeapTrim(stub, clock=clock, actor="t")
    trims_before = metric_value(
        generate_latest().decode(), "tradepulse_heap_trims_total", actor="t"
    )
    done_at: list[float] = []
    for moved in range(200):  # the journal moves between every tick of a 1 s timer
        before = len(stub.calls)
        trim.if_moved(moved)
        if len(stub.calls) > before:
            done_at.append(clock.now_s)
        clock.now_s += TRIM_EVERY_S
        if len(stub.calls) == 5:
            break
    gaps = [round(b - a) for a, b in zip(done_at, done_at[1:], strict=False)]
    assert gaps == [2, 4, 8, 1]  # backed off 2, 4, 8 s after slow trims; 1 s after a fast one
    assert trim.every_s == TRIM_EVERY_S
    capped = HeapTrim(_SlowTrim(clock, [slow] * 10), clock=clock, actor="t")
    for moved in range(10):
        clock.now_s += MAX_EVERY_S
        capped.if_moved(moved)
    assert capped.trims == 10 and capped.every_s == MAX_EVERY_S
    trims_after = metric_value(generate_latest().decode(), "tradepulse_heap_trims_total", actor="t")
    assert (trims_after or 0.0) - (trims_before or 0.0) == 15


@pytest.mark.skipif(_glibc_trim() is None, reason="glibc's malloc_trim only")
def test_a_trim_gives_back_the_pages_of_a_peak_freed_below_live_chunks() -> None:
    """A peak of 48 MiB of 16 KiB chunks (under the mmap threshold: the main heap), freed
    but for every 16th chunk (so no free page is at the heap's top, where free() would
    give it back itself): RSS stays up until a trim, which gives back > 30 MiB."""
    body = textwrap.dedent(
        """
        import ctypes, json, os
        from actors.runtime.heap_trim import HeapTrim
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
        trim = HeapTrim(actor="t")
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
    """Where there is no malloc_trim (not glibc: none found at import), a run is a no-op,
    not an error."""

    def no_libc(_: object) -> object:
        raise OSError("no such library")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert _glibc_trim() is None
    monkeypatch.setattr(heap_trim, "_GLIBC_TRIM", _glibc_trim())
    trim = HeapTrim(actor="t")
    trim.run()
    assert not trim.available and trim.trims == 0


@pytest.mark.integration
@pytest.mark.skipif(_glibc_trim() is None, reason="glibc's malloc_trim only")
def test_the_running_actors_trim_on_their_timers(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """The real OMS wires the timer (`open_book` gets the actor's timers), and so do the
    connector, the venue simulator and risk (`Actor.trims_heap`): the first tick of each
    trims (nothing was trimmed yet), seen in `tradepulse_heap_trims_total{actor}`; the
    heartbeat actor (flat without it) does not trim."""
    sut = start_system(venues=("simA",))
    trimming = ("oms", "risk", "connector.simA", "venuesim.simA")

    def trims(actor: str) -> float:
        text = sut.metrics_text()
        return metric_value(text, "tradepulse_heap_trims_total", actor=actor) or 0.0

    assert eventually(lambda: all(trims(a) >= 1 for a in trimming), 20.0), {
        a: trims(a) for a in trimming
    }
    assert trims("heartbeat") == 0.0
