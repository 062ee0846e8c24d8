"""An order read back from the archive and changed (a late fill) is not written to the
archive again until a journal snapshot taken after it came back is durable (review
rv_recon2b, finding 1). Before, it was archived again and that write committed: a kill -9
before the next snapshot replayed the journalled fill on top of the archive's newer copy
(live cum 1, replayed cum 2, position 1). Here, a real journal and archive are killed at
each point that matters, and replay must give the live book."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.oms.journal import Journal
from actors.oms.order_book import OrderBook
from actors.oms.retention import open_book
from protocol.messages import ExecReport
from tests.oms.test_exec_quarantine import V, _fill, _Host, _live


class _Killed(Exception):
    """Stands for kill -9 at that point."""


class _Oms:
    """A book on a real journal (fsync off) and archive; every record is journalled and
    committed at the end of each step, as the OMS loop does."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.journal, rec = Journal.open(path, fsync=False)
        self.book = open_book(self.journal, rec.snapshot, path, keep=1)
        for r in rec.records:
            self.book.apply_record(r)
        self.host = _Host(path, self.book)

    def step(self, fn: Callable[[], None]) -> None:
        fn()
        for r in self.host.journal:
            self.journal.append(r)
        self.host.journal.clear()
        self.journal.commit()  # after_commit: handed to the archive's writer
        assert self.book.evictions is not None
        self.book.evictions.sync()  # its commit confirmed (each step's, as a busy OMS's)

    def cancel(self, coid: str) -> str:
        cl = ""

        def do() -> None:
            nonlocal cl
            cl = _live(self.book, coid)
            for rec in _records_of(self.book, coid):
                self.host.journal.append(rec)
            rep = ExecReport(venue=V, exec_id=f"X-{coid}", kind="cancelled", cl_ord_id=cl)
            out = self.host.exec_applier.apply(rep, 5)
            assert out is not None and out.applied

        self.step(do)
        return cl

    def fill(self, cl: str, exec_id: str, cum: str) -> None:
        def do() -> None:
            report = _fill(cl, exec_id, "1").model_copy(update={"cum_qty": Decimal(cum)})
            out = self.host.exec_applier.apply(report, 20)
            assert out is not None and out.applied

        self.step(do)

    def kill(self) -> None:
        assert self.book.retention is not None and self.book.evictions is not None
        self.book.evictions.writer.close()  # nothing in flight: each step waited
        self.book.retention.archive.close()
        self.journal.close()

    def state(self, coid: str) -> tuple[Decimal, Decimal]:
        order = self.book.get(coid)
        assert order is not None
        return order.cum_qty, self.book.position(V, "ABC").qty


def _records_of(book: OrderBook, coid: str) -> list[dict[str, Any]]:
    """The records `_live` applied to the book directly (submit, verdict, accepted): the
    order as a `new` record (replay recreates it as it is)."""
    order = book.get(coid)
    assert order is not None
    return [{"kind": "new", "order": order.to_dict()}]


def _archived_then_revived(path: Path) -> tuple[_Oms, str]:
    """o0 archived before the snapshot; after it, a late fill reads o0 back and o0 is let
    go again (o2 cancelled)."""
    oms = _Oms(path)
    cl0 = oms.cancel("o0")
    oms.cancel("o1")  # o0 let go: archived (committed), out of memory
    assert oms.book.held("o0") is None
    oms.journal.write_snapshot(oms.book.to_dict())  # o0 in the archive only
    oms.fill(cl0, "L1", "1")  # late fill: o0 read back, changed, journalled
    oms.cancel("o2")  # o0 let go again
    return oms, cl0


def _replayed(path: Path, coid: str) -> tuple[Decimal, Decimal]:
    again = _Oms(path)
    try:
        return again.state(coid)
    finally:
        again.kill()


def test_kill_before_the_next_snapshot_replays_the_late_fill_once(tmp_path: Path) -> None:
    oms, _ = _archived_then_revived(tmp_path)
    live = oms.state("o0")
    assert live == (Decimal(1), Decimal(1))
    held = oms.book.held("o0")
    oms.kill()
    assert _replayed(tmp_path, "o0") == live  # before the fix: (2, 1)
    assert held is not None  # held back: not archived again yet


def test_kill_during_the_next_snapshot_before_its_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    oms, _ = _archived_then_revived(tmp_path)
    live = oms.state("o0")

    def killed(*args: Any) -> None:
        raise _Killed

    monkeypatch.setattr(oms.journal, "_persist_snapshot", killed)
    with pytest.raises(_Killed):  # before_snapshot ran, then kill -9
        oms.journal.write_snapshot(oms.book.to_dict())
    assert oms.book.held("o0") is not None  # not archived by before_snapshot either
    oms.kill()
    assert _replayed(tmp_path, "o0") == live


@pytest.mark.parametrize("background", [False, True])
def test_after_the_next_snapshot_it_is_archived_and_replay_still_agrees(
    tmp_path: Path, background: bool
) -> None:
    oms, cl0 = _archived_then_revived(tmp_path)
    if background:
        assert oms.journal.write_snapshot_in_background(oms.book.to_dict) is not None
        oms.journal.wait_background()
    else:
        oms.journal.write_snapshot(oms.book.to_dict())
    oms.cancel("o3")  # the commit writes o0 to the archive now: out of memory
    assert oms.book.held("o0") is None
    assert oms.state("o0") == (Decimal(1), Decimal(1))
    oms.fill(cl0, "L2", "2")  # another late fill: read back again, held back again
    oms.cancel("o4")
    assert oms.book.held("o0") is not None
    live = oms.state("o0")
    assert live == (Decimal(2), Decimal(2))
    oms.kill()
    assert _replayed(tmp_path, "o0") == live


def test_a_failed_background_snapshot_keeps_it_held_back(tmp_path: Path) -> None:
    oms, _ = _archived_then_revived(tmp_path)

    def broken() -> dict[str, Any]:
        raise RuntimeError("snapshot child fails")

    assert oms.journal.write_snapshot_in_background(broken) is not None
    oms.journal.wait_background()
    oms.cancel("o3")
    assert oms.book.held("o0") is not None  # that snapshot is not durable: still held
    live = oms.state("o0")
    oms.kill()
    assert _replayed(tmp_path, "o0") == live


def test_an_order_replay_read_back_is_held_back_too_across_a_second_crash(
    tmp_path: Path,
) -> None:
    """The first replay reads o0 back for the late fill's record: o0 is let go again by
    the restarted OMS's next orders, and must not reach the archive before a snapshot."""
    oms, _ = _archived_then_revived(tmp_path)
    live = oms.state("o0")
    oms.kill()
    again = _Oms(tmp_path)  # replay: o0 read back from the archive, the fill applied
    assert again.state("o0") == live
    again.cancel("o5")
    again.cancel("o6")  # o0 let go: held back, not archived
    assert again.book.held("o0") is not None
    again.kill()
    assert _replayed(tmp_path, "o0") == live
