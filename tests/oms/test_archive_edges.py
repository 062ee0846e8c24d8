"""The OMS archive's writer thread and id filter at their edges (a review's proofs of the
archive fixes): a rebuild finishing while `_adopt` runs, a thread dying with a batch it
took, a restarted OMS's stall gauge."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from actors.oms import archived_ids
from actors.oms.archive_writer import ArchiveWriter, Row
from actors.oms.archived_ids import ArchivedIds

ROOT = Path(__file__).resolve().parents[2]


class _ThreadFinishesDuringAdopt(ArchivedIds):
    """The rebuild thread's `self._built = bits` lands between `_adopt`'s read of `_built`
    (None) and its `self._built = None` (a GIL switch at that point): simulated by the
    first read of `_failed` inside `_adopt`, which is exactly between the two."""

    def __init__(self) -> None:
        self._fail: str | None = None
        self._armed = False
        super().__init__()

    @property
    def _failed(self) -> str | None:  # type: ignore[override]
        if self._armed:
            self._armed = False
            self.__dict__["_built"] = bytearray(archived_ids.BITS >> 3)  # the thread: done
        return self._fail

    @_failed.setter
    def _failed(self, value: str | None) -> None:
        self._fail = value


def test_a_rebuild_finishing_during_adopt_is_not_thrown_away() -> None:
    """archived_ids.py:111-116: `_adopt` reads `_built` (None: not done yet), then sets
    `self._built = None` unconditionally. A rebuild thread that stores its result between
    the two has it overwritten: the filter is never ready, every key handed over is kept
    aside until MAX_EARLY, then `archived_ids_rebuild_failed` is logged (a false error)."""
    ids = _ThreadFinishesDuringAdopt()
    ids._armed = True  # noqa: SLF001
    assert not ids.ready  # this _adopt races the thread's store
    assert not ids._armed  # noqa: SLF001  # (the store happened inside _adopt)
    assert ids.ready, "the finished rebuild was discarded: the filter is never ready"


class _DiesAfterGet:
    """The writer's queue: the thread's first `get_nowait` after a `get` raises MemoryError
    (the thread dies holding a batch it took, before `_taken` names it)."""

    def __init__(self, real: object) -> None:
        self.real = real
        self.armed = True

    def put(self, item: object) -> None:
        self.real.put(item)  # type: ignore[attr-defined]

    def get(self, *a: object, **k: object) -> object:
        return self.real.get(*a, **k)  # type: ignore[attr-defined]

    def empty(self) -> bool:
        return bool(self.real.empty())  # type: ignore[attr-defined]

    def get_nowait(self) -> object:
        if self.armed:
            self.armed = False
            raise MemoryError
        return self.real.get_nowait()  # type: ignore[attr-defined]


def test_a_thread_dying_before_taken_is_set_loses_no_batch(tmp_path: Path) -> None:
    """archive_writer.py:165-175: `_taken` is set only after the batches were taken off the
    queue and gathered; a death in between (MemoryError in get_nowait/append) leaves the
    taken batch neither queued nor in `_taken`: `_recover` reports nothing, so it is never
    confirmed nor failed (in flight forever, its MAX_IN_FLIGHT room lost, its orders never
    let go); the docstring says "the batches it held reported as failed"."""
    writer = ArchiveWriter(tmp_path / "orders.sqlite")
    writer._todo = _DiesAfterGet(writer._todo)  # type: ignore[assignment]  # noqa: SLF001
    writer.submit(1, [Row("o1", "V", "S", 1, b"x", ("o1",))])
    thread = writer._thread  # noqa: SLF001
    assert thread is not None
    thread.join(10.0)
    assert not thread.is_alive()
    results = writer.results(timeout_s=2.0)
    writer.close(5.0)
    assert [r.batch for r in results] == [1], "batch 1 was taken and never reported"


def _run(mode: str, state: Path, metrics: Path) -> int:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests/oms/archive_gauge_child.py"), mode, str(state)],
        env=env,
        timeout=60,
        capture_output=True,
        check=False,
    )
    return proc.returncode


def _gauge(metrics: Path) -> float | None:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics))
    return registry.get_sample_value("tradepulse_oms_archive_oldest_unconfirmed_seconds")


def test_a_restarted_oms_resets_the_stall_gauge(tmp_path: Path) -> None:
    """evictions.py:241-244 sets the gauge only when its whole-second value changes from
    `_age_shown = 0`; the gauge is multiprocess_mode="mostrecent" and the supervisor removes
    the multiprocess files only at its own start. An OMS killed (kill -9, or the supervisor's
    restart) while a commit hung leaves its last age in its file; the restarted OMS, whose
    age stays 0, never writes the gauge: /metrics keeps the dead process's 200 s, and
    OrderArchiveStalled (> 60 for 2m) fires, and keeps firing, for an OMS that archives fine."""
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert _run("hang", tmp_path / "a", metrics) == -9
    assert _gauge(metrics) == 200.0  # the killed OMS's last value
    assert _run("fresh", tmp_path / "b", metrics) == 0
    assert _gauge(metrics) == 0.0, "the dead OMS's stall age is still exported"
