"""`actors.oms.journal_walk.walk`: `journal inspect` on a running OMS. A snapshot the OMS
writes while the walk reads (deleting the segments the old snapshot needed) neither makes a
healthy journal look corrupt nor loses a record the walk had opened; a snapshot written
while the walk opens its files makes it try again; one written at every try is
`JournalChanged`, named as such."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.oms import journal_walk
from actors.oms.journal import Journal
from actors.oms.journal_walk import JournalChanged, walk

REC = {"kind": "opening_position", "venue": "s", "symbol": "A", "qty": "1", "avg_px": "1",
       "ts_ns": 1}  # fmt: skip
EMPTY = {"format": 1, "orders": [], "positions": [], "unmatched": []}


def _journal(tmp_path: Path) -> tuple[Journal, Path]:
    directory = tmp_path / "oms"
    journal, _ = Journal.open(directory, fsync=False)
    journal.append(REC)
    journal.commit()
    journal.write_snapshot(EMPTY)
    journal.append(REC | {"ts_ns": 2})
    journal.commit()
    return journal, directory


def test_a_snapshot_written_mid_walk_does_not_make_the_journal_corrupt(tmp_path: Path) -> None:
    """The review's race: the walk has yielded the snapshot, the OMS snapshots again and
    deletes the old segments; the walk still yields the record after the old snapshot."""
    journal, directory = _journal(tmp_path)
    items = walk(directory)
    assert next(items)["kind"] == "snapshot"
    journal.write_snapshot(EMPTY)
    rest = list(items)
    assert [(i["kind"], i["data"]["ts_ns"]) for i in rest] == [("record", 2)]
    assert rest[0]["file"].startswith(str(directory))  # the real name, not the descriptor's
    journal.close()


def test_a_snapshot_written_while_opening_is_retried_then_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A snapshot between reading the snapshot and listing its segments: tried again (the
    second try sees the new snapshot); a snapshot at every try: JournalChanged."""
    journal, directory = _journal(tmp_path)
    real = journal_walk._live_segments
    calls = []

    def racing(d: Path, start: int | None) -> Any:
        calls.append(start)
        if len(calls) == 1 or always:
            journal.write_snapshot(EMPTY)
        return real(d, start)

    always = False
    monkeypatch.setattr(journal_walk, "_live_segments", racing)
    items = list(walk(directory))
    assert len(calls) == 2 and calls[1] != calls[0]
    assert [i["kind"] for i in items] == ["snapshot"]
    always = True
    with pytest.raises(JournalChanged, match="changed while read .*run again"):
        list(walk(directory, attempts=3))
    journal.close()
