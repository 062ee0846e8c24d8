"""Review rv_recon2b (a check that holds): kill -9 after the journal commit, with orders let
go written in the archive's open transaction (or a failed archive commit), loses none."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from actors.oms.journal import Journal
from actors.oms.retention import open_book
from protocol.messages import OrderStatus
from tests.oms.test_evictions import _cancelled
from tests.oms.test_exec_quarantine import _Host


def _run(
    tmp_path: Path,
    n: int,
    snapshot_after: int | None,
    fail_sync: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    journal, rec = Journal.open(tmp_path, fsync=False)
    book = open_book(journal, rec.snapshot, tmp_path, keep=1)
    host = _Host(tmp_path, book)
    real: list[Any] = []
    orig = book.apply_record

    def journalled(r: Any) -> None:
        real.append(dict(r))
        orig(r)

    book.apply_record = journalled  # type: ignore[method-assign]  # submit/verdict too
    assert book.retention is not None
    archive = book.retention.archive
    for i in range(n):
        _cancelled(host, f"o{i}")
        for r in real:
            journal.append(r)
        real.clear()
        host.journal.clear()
        journal.commit()  # after_commit: written, not committed
        if snapshot_after == i:
            if fail_sync:

                def full(*a: Any) -> None:
                    raise sqlite3.OperationalError("database or disk is full")

                monkeypatch.setattr(archive, "sync", full)
            journal.write_snapshot(book.to_dict())
            monkeypatch.undo()
    # kill -9: nothing more committed, the archive's open transaction lost
    archive._db.close()  # noqa: SLF001 (no COMMIT: as a crash)
    journal.close()
    journal, rec = Journal.open(tmp_path, fsync=False)
    again = open_book(journal, rec.snapshot, tmp_path, keep=1)
    for r in rec.records:
        again.apply_record(r)
    for i in range(n):
        o = again.get(f"o{i}")
        assert o is not None and o.status is OrderStatus.CANCELLED, f"o{i} lost"
    journal.close()


@pytest.mark.parametrize("snapshot_after,fail_sync", [(None, False), (3, False), (3, True)])
def test_kill_after_the_journal_commit_loses_no_order(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    snapshot_after: int | None,
    fail_sync: bool,
) -> None:
    _run(tmp_path, 8, snapshot_after, fail_sync, monkeypatch)
