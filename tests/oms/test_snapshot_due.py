"""When the OMS journal snapshots (`actors.oms.snapshot_due`): after `snapshot_every`
records, and not before those records weigh as much as the last snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.oms.journal import Journal
from actors.oms.snapshot_due import MAX_STRETCH, snapshot_due


def _append(journal: Journal, n: int, pad: int) -> None:
    for i in range(n):
        journal.append({"kind": "r", "n": i, "pad": "x" * pad})
    journal.commit()


def test_a_small_book_snapshots_every_snapshot_every_records(tmp_path: Path) -> None:
    """With no snapshot yet, or one smaller than the records since, `snapshot_every`
    records make a snapshot due, and one record fewer does not."""
    journal, _ = Journal.open(tmp_path)
    _append(journal, 99, pad=10)
    assert not snapshot_due(journal, 100)
    _append(journal, 1, pad=10)
    assert snapshot_due(journal, 100)  # no snapshot yet
    journal.write_snapshot({"orders": ["o"] * 10})  # small
    _append(journal, 99, pad=10)
    assert not snapshot_due(journal, 100)
    _append(journal, 1, pad=10)
    assert snapshot_due(journal, 100)
    journal.close()


def test_a_large_book_snapshots_once_the_records_weigh_as_much_as_it(tmp_path: Path) -> None:
    """A snapshot of a large book (O(book) to write) is not due again after `snapshot_every`
    records that weigh less than it: only once the journal has grown by its size, so its
    cost per record does not grow with the book (at 50,000 open orders one was taken every
    ~16,000 orders, ~0.6 s of CPU each)."""
    journal, _ = Journal.open(tmp_path)
    journal.write_snapshot({"orders": ["order-" + "y" * 100] * 1000})  # ~105 KB
    size = (tmp_path / "snapshot.bin").stat().st_size
    _append(journal, 100, pad=10)
    assert journal.records_since_snapshot >= 100 and journal.bytes_since_snapshot < size
    assert not snapshot_due(journal, 100)
    while journal.bytes_since_snapshot < size:
        assert not snapshot_due(journal, 100)
        _append(journal, 10, pad=600)
    assert journal.records_since_snapshot < MAX_STRETCH * 100  # the weight decided
    assert snapshot_due(journal, 100)
    journal.close()


def test_a_snapshot_is_due_by_max_stretch_times_snapshot_every_whatever_its_size(
    tmp_path: Path,
) -> None:
    """A snapshot far heavier than the records since (orders read back from the archive
    are in it: each snapshot made the next later, found by review) is due at
    `MAX_STRETCH` x `snapshot_every` records at the latest."""
    journal, _ = Journal.open(tmp_path)
    journal.write_snapshot({"orders": ["order-" + "y" * 100] * 5000})  # ~525 KB
    _append(journal, MAX_STRETCH * 100 - 1, pad=10)
    assert not snapshot_due(journal, 100)
    _append(journal, 1, pad=10)
    assert snapshot_due(journal, 100)
    journal.close()


class _Cfg:
    snapshot_every = 100

    @property
    def oms(self) -> _Cfg:
        return self


class _Views:
    def __init__(self, orders: int) -> None:
        self.orders = orders

    def state(self) -> dict[str, Any]:
        return {"orders": ["order-" + "y" * 100] * self.orders}


def test_the_oms_turn_snapshots_a_large_book_only_once_the_records_weigh_as_much(
    tmp_path: Path,
) -> None:
    """`OmsActor.after_iteration` (on the stub OMS of test_sends_first, with a real journal)
    starts no background snapshot after `snapshot_every` records while they weigh less
    than the last snapshot of a large book, and starts one once they weigh as much."""
    from tests.oms.test_sends_first import _Oms

    oms = _Oms()
    journal, _ = Journal.open(tmp_path)
    oms.journal = journal  # type: ignore[assignment]
    oms.cfg = _Cfg()  # type: ignore[assignment]
    oms.views = _Views(1000)  # type: ignore[attr-defined]
    journal.write_snapshot(oms.views.state())  # type: ignore[attr-defined]
    size = (tmp_path / "snapshot.bin").stat().st_size
    segment = journal.segment

    def turn(records: int, pad: int) -> None:
        for i in range(records):
            journal.append({"kind": "r", "n": i, "pad": "x" * pad})
        oms.after_iteration(force=True)

    turn(150, pad=10)
    assert journal.records_since_snapshot >= 100 and journal.segment == segment
    while journal.bytes_since_snapshot + 10 * 615 < size:
        turn(10, pad=600)
        assert journal.segment == segment  # not yet: no snapshot started
    assert journal.records_since_snapshot < MAX_STRETCH * 100  # the weight decides here
    turn(20, pad=600)
    assert journal.segment == segment + 1  # a snapshot started (a new segment)
    journal.wait_background()
    journal.close()
    assert Journal.open(tmp_path)[1].snapshot == oms.views.state()  # type: ignore[attr-defined]
