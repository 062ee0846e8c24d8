"""Giving the C heap's free pages back to the kernel now and then (glibc `malloc_trim`).

What an actor still held after its first 10,000 orders (issue 16, "RSS flat"): tracemalloc
in the real OMS counted its Python objects flat from 10,000 to 50,000 orders (+13 KB), and
a connector's small-object pools were flat from 10,000 to 100,000, while their RSS grew
1-5 MiB a run (a connector's glibc heap 14.1 -> 15.8 MB with its live bytes flat). The
growth is memory the allocators keep, not state: glibc's malloc (every object over 512
bytes, SQLite's page cache, ZeroMQ's messages in its I/O thread's own arena) returns a
freed chunk to the kernel only when it is at the top of the main heap, so a backlog that
came and went (messages queued while the machine was busy, a reply, a reconciliation pass)
leaves its pages resident for the process's life. `malloc_trim(0)` gives back every whole
free page of every arena (madvise), leaving the chunks where they are.

Who trims: the OMS every `TRIM_EVERY_S` while its journal moves and before every journal
snapshot (`actors.oms.retention.open_book`); the connectors, venue simulators and risk
every `TRIM_EVERY_S` while their loop has work (`Actor.trims_heap`, the mark: the loop's
turns that had something to read). `HeapTrim.if_moved` skips a trim when the mark has
not moved (an idle actor does not trim again and again). A trim that found little to give
costs ~0.2 ms, the first one after a peak a few ms (measured in the OMS under the memory
bench: 0.16-0.25 ms, 9 ms at the first): ~0.02 % of a core. glibc walks every free chunk
at every trim, so a big fragmented heap (a backlog of a GiB that came and went) makes each
one slow (30-60 ms in a review's probe): a periodic trim slower than `SLOW_S` doubles the
wait before the next one, up to `MAX_EVERY_S`, and a fast one brings it back to
`TRIM_EVERY_S`. Counted by actor in `tradepulse_heap_trims_total{actor}` and
`tradepulse_heap_trim_seconds_total{actor}`. glibc only: elsewhere `run` does nothing.
CPython's own pools of small objects are not the C heap's and stay as they are.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from typing import Final

from actors.runtime import metrics

TRIM_EVERY_S: Final = 1.0
SLOW_S: Final = 0.002  # a periodic trim slower than this backs the next ones off
MAX_EVERY_S: Final = 64.0


def _glibc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None where there is none (not glibc)."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.restype = ctypes.c_int
    trim.argtypes = [ctypes.c_size_t]
    return trim


_GLIBC_TRIM = _glibc_trim()  # at import, the fork server's: see `hardening._PRCTL`


class HeapTrim:
    """Trims the C heap when `run`; counts the trims and the time they took."""

    def __init__(
        self,
        trim: Callable[[int], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        *,
        actor: str,
    ) -> None:
        self._trim = trim if trim is not None else _GLIBC_TRIM
        self._trims = metrics.HEAP_TRIMS.labels(actor=actor)
        self._trim_seconds = metrics.HEAP_TRIM_SECONDS.labels(actor=actor)
        self._clock = clock
        self.every_s = TRIM_EVERY_S  # the wait between periodic trims (backed off when slow)
        self._next_s = 0.0
        self.trims = 0
        self.released = 0  # trims that gave memory back (malloc_trim returned 1)
        self.seconds = 0.0
        self.longest_s = 0.0
        self._mark: object = None

    @property
    def available(self) -> bool:
        return self._trim is not None

    def run(self) -> float:
        """Trim now; the seconds it took."""
        if self._trim is None:
            return 0.0
        t0 = self._clock()
        gave = self._trim(0)
        took = self._clock() - t0
        self.trims += 1
        self.released += 1 if gave else 0
        self.seconds += took
        self.longest_s = max(self.longest_s, took)
        self._trims.inc()
        self._trim_seconds.inc(took)
        return took

    def if_moved(self, mark: object) -> None:
        """`run`, unless `mark` (what has changed since: the journal's position) is the
        same as at the last call, or the wait a slow trim set has not passed."""
        now_s = self._clock()
        if mark == self._mark or now_s < self._next_s:
            return
        self._mark = mark
        took = self.run()
        self.every_s = TRIM_EVERY_S if took < SLOW_S else min(self.every_s * 2, MAX_EVERY_S)
        self._next_s = now_s + self.every_s
