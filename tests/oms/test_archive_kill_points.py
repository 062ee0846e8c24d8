"""Review rv_recon2b (a check that holds), with the archive's writes on a thread: kill -9
after the journal commit, with orders let go whose archive commit is in flight (held, as a
slow disk holds it), failing, or done, with or without a snapshot since, loses none."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from actors.oms.journal import Journal
from actors.oms.retention import open_book
from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.oms.test_evictions import _cancelled, _disk_full, held_commits
from tests.oms.test_exec_quarantine import _Host


def _run(tmp_path: Path, n: int, snapshot_after: int | None, commits: str) -> None:
    journal, rec = Journal.open(tmp_path, fsync=False)
    book = open_book(journal, rec.snapshot, tmp_path, keep=1)
    host = _Host(tmp_path, book)
    real: list[Any] = []
    orig = book.apply_record

    def journalled(r: Any) -> None:
        real.append(dict(r))
        orig(r)

    book.apply_record = journalled  # type: ignore[method-assign]  # submit/verdict too
    evictions = book.evictions
    assert book.retention is not None and evictions is not None
    if commits == "failing":
        evictions.writer.before_commit = _disk_full
    held = held_commits(evictions) if commits == "held" else contextlib.nullcontext()
    with held:
        for i in range(n):
            _cancelled(host, f"o{i}")
            for r in real:
                journal.append(r)
            real.clear()
            host.journal.clear()
            journal.commit()  # after_commit: handed to the writer
            if snapshot_after == i:
                if commits == "done":  # archived, out of memory: not in the snapshot
                    eventually(lambda: evictions.poll() or not evictions.in_flight)
                    assert book.held("o0") is None
                journal.write_snapshot(book.to_dict())
        # kill -9: the writer's transaction in flight is lost (held: it fails at the end)
    evictions.writer.close()
    book.retention.archive.close()
    journal.close()
    journal, rec = Journal.open(tmp_path, fsync=False)
    again = open_book(journal, rec.snapshot, tmp_path, keep=1)
    for r in rec.records:
        again.apply_record(r)
    for i in range(n):
        o = again.get(f"o{i}")
        assert o is not None and o.status is OrderStatus.CANCELLED, f"o{i} lost"
    journal.close()
    assert again.evictions is not None and again.retention is not None
    again.evictions.close()
    again.retention.archive.close()


@pytest.mark.parametrize(
    "snapshot_after,commits",
    [(None, "held"), (3, "held"), (3, "failing"), (None, "done"), (3, "done")],
)
def test_kill_after_the_journal_commit_loses_no_order(
    tmp_path: Path, snapshot_after: int | None, commits: str
) -> None:
    _run(tmp_path, 8, snapshot_after, commits)
