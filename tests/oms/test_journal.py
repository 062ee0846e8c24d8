"""The OMS journal: framing, group commit, torn tails, corruption, snapshots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from actors.oms.journal import (
    RECORD_MAGIC,
    SNAPSHOT_NAME,
    Journal,
    encode_record,
    inspect,
    segment_name,
)
from actors.runtime.frames import HEADER_SIZE, encode_frame
from actors.runtime.process import unreadable
from protocol.exceptions import JournalCorrupt


def _records(n: int) -> list[dict[str, Any]]:
    return [{"kind": "test", "i": i, "text": "x" * (i % 7), "px": f"{i}.25"} for i in range(n)]


def _write(directory: Path, records: list[dict[str, Any]], *, fsync: bool = False) -> Path:
    journal, _ = Journal.open(directory, fsync=fsync)
    for rec in records:
        journal.append(rec)
    journal.commit()
    journal.close()
    return directory / segment_name(1)


def test_round_trip_with_group_commit(tmp_path: Path) -> None:
    """Records appended across several commits come back in order on reopen; records
    appended but never committed are lost, as in a crash."""
    journal, recovery = Journal.open(tmp_path)
    assert recovery.records == [] and recovery.snapshot is None
    recs = _records(10)
    for rec in recs[:4]:
        journal.append(rec)
    assert journal.pending == 4
    assert journal.commit() == 4
    for rec in recs[4:]:
        journal.append(rec)
    journal.commit()
    journal.append({"kind": "uncommitted"})
    journal.close()
    journal2, recovery2 = Journal.open(tmp_path)
    assert recovery2.records == recs and recovery2.torn_tail is None
    journal2.close()


def test_commit_of_nothing_does_no_io(tmp_path: Path) -> None:
    """commit() with an empty buffer returns 0 and leaves the file alone."""
    journal, _ = Journal.open(tmp_path)
    assert journal.commit() == 0
    assert (tmp_path / segment_name(1)).stat().st_size == 0
    journal.close()


def test_unencodable_record_fails_at_append(tmp_path: Path) -> None:
    """A value msgpack cannot encode (e.g. a Decimal) fails in append, not in commit."""
    from decimal import Decimal

    journal, _ = Journal.open(tmp_path, fsync=False)
    with pytest.raises(TypeError):
        journal.append({"px": Decimal("1.5")})
    assert journal.pending == 0
    journal.close()


def test_cut_at_every_byte_recovers_exact_prefix(tmp_path: Path) -> None:
    """Truncating the journal at any byte offset replays exactly the whole records before
    the cut, reports the rest as a torn tail, truncates the file to the good prefix and
    keeps accepting appends after it."""
    recs = _records(8)
    source = _write(tmp_path / "src", recs)
    data = source.read_bytes()
    boundaries = [0]
    for rec in recs:
        boundaries.append(boundaries[-1] + len(encode_record(rec)))
    assert boundaries[-1] == len(data)
    for cut in range(len(data) + 1):
        d = tmp_path / f"cut{cut}"
        d.mkdir()
        (d / segment_name(1)).write_bytes(data[:cut])
        journal, recovery = Journal.open(d, fsync=False)
        whole = max(i for i, b in enumerate(boundaries) if b <= cut)
        assert recovery.records == recs[:whole], cut
        if cut == boundaries[whole]:
            assert recovery.torn_tail is None
        else:
            assert recovery.torn_tail is not None
            assert recovery.torn_tail.offset == boundaries[whole]
            assert recovery.torn_tail.dropped_bytes == cut - boundaries[whole]
        assert (d / segment_name(1)).stat().st_size == boundaries[whole]
        journal.append({"kind": "after"})
        journal.commit()
        journal.close()
        reopened, again = Journal.open(d, fsync=False)
        reopened.close()  # 327 cuts: an fd each left open filled a test worker's fd table
        assert again.records == recs[:whole] + [{"kind": "after"}]


def test_zero_filled_tail_is_a_torn_tail(tmp_path: Path) -> None:
    """Zeros after the last record (a file extended but not written) are dropped."""
    recs = _records(3)
    seg = _write(tmp_path, recs)
    with open(seg, "ab") as fh:
        fh.write(b"\0" * 100)
    _, recovery = Journal.open(tmp_path, fsync=False)
    assert recovery.records == recs
    assert recovery.torn_tail is not None and recovery.torn_tail.dropped_bytes == 100


@pytest.mark.parametrize("where", ["magic", "length", "crc", "payload"])
def test_flipped_byte_in_middle_record_is_corrupt(tmp_path: Path, where: str) -> None:
    """A damaged record followed by valid ones raises JournalCorrupt naming the file and
    the damaged record's offset, and leaves the file untouched."""
    recs = _records(6)
    seg = _write(tmp_path, recs)
    data = bytearray(seg.read_bytes())
    offset = sum(len(encode_record(r)) for r in recs[:3])
    delta = {"magic": 0, "length": 3, "crc": 7, "payload": HEADER_SIZE + 2}[where]
    data[offset + delta] ^= 0x40
    seg.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as info:
        Journal.open(tmp_path, fsync=False)
    assert info.value.offset == offset
    assert info.value.path == str(seg)
    assert seg.read_bytes() == bytes(data)


def test_flipped_byte_in_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    """A CRC-failing last record is dropped like a torn write."""
    recs = _records(4)
    seg = _write(tmp_path, recs)
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0xFF
    seg.write_bytes(bytes(data))
    _, recovery = Journal.open(tmp_path, fsync=False)
    assert recovery.records == recs[:3]
    assert recovery.torn_tail is not None and recovery.torn_tail.detail == "CRC mismatch"


def test_snapshot_and_compaction_round_trip(tmp_path: Path) -> None:
    """write_snapshot commits the buffer, persists the state, starts a new segment and
    deletes the covered ones; replay = snapshot + only the records after it."""
    journal, _ = Journal.open(tmp_path, fsync=False)
    for rec in _records(5):
        journal.append(rec)
    journal.commit()
    journal.append({"kind": "buffered"})
    journal.write_snapshot({"orders": ["a", "b"], "n": 6})
    assert journal.segment == 2 and journal.records_since_snapshot == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([SNAPSHOT_NAME, segment_name(2)])
    journal.append({"kind": "later", "i": 1})
    journal.commit()
    journal.close()
    journal2, recovery = Journal.open(tmp_path, fsync=False)
    assert recovery.snapshot == {"orders": ["a", "b"], "n": 6}
    assert recovery.records == [{"kind": "later", "i": 1}]
    journal2.write_snapshot({"n": 7})
    journal2.close()
    _, recovery3 = Journal.open(tmp_path, fsync=False)
    assert recovery3.snapshot == {"n": 7} and recovery3.records == []


def test_crash_between_new_segment_and_snapshot(tmp_path: Path) -> None:
    """A crash after the new segment exists but before the snapshot is replaced replays
    the old snapshot plus every segment, including the empty new one."""
    recs = _records(3)
    _write(tmp_path, recs)
    (tmp_path / segment_name(2)).touch()
    journal, recovery = Journal.open(tmp_path, fsync=False)
    assert recovery.records == recs and journal.segment == 2
    journal.close()


def test_crash_before_old_segments_deleted(tmp_path: Path) -> None:
    """Segments older than the snapshot's next_segment are ignored and removed on open."""
    journal, _ = Journal.open(tmp_path, fsync=False)
    journal.append({"kind": "old"})
    journal.write_snapshot({"n": 1})
    journal.close()
    (tmp_path / segment_name(1)).write_bytes(encode_record({"kind": "stale"}))
    _, recovery = Journal.open(tmp_path, fsync=False)
    assert recovery.records == [] and not (tmp_path / segment_name(1)).exists()


def test_missing_segment_is_corrupt(tmp_path: Path) -> None:
    """A gap in segment numbers (or segments without the snapshot that compacted them)
    is refused rather than replaying a partial history."""
    _write(tmp_path, _records(2))
    (tmp_path / segment_name(3)).touch()
    with pytest.raises(JournalCorrupt, match="missing segment"):
        Journal.open(tmp_path, fsync=False)
    (tmp_path / segment_name(1)).unlink()
    with pytest.raises(JournalCorrupt, match="no snapshot"):
        Journal.open(tmp_path, fsync=False)


def test_bad_record_in_sealed_segment_is_corrupt(tmp_path: Path) -> None:
    """Only the newest segment may have a torn tail: a bad end of an older one is corrupt."""
    seg = _write(tmp_path, _records(3))
    with open(seg, "ab") as fh:
        fh.write(b"TJ\x00")
    (tmp_path / segment_name(2)).write_bytes(encode_record({"kind": "x"}))
    with pytest.raises(JournalCorrupt, match="sealed"):
        Journal.open(tmp_path, fsync=False)


def test_corrupt_snapshot_is_refused(tmp_path: Path) -> None:
    """A snapshot that fails its CRC raises JournalCorrupt naming the snapshot file."""
    journal, _ = Journal.open(tmp_path, fsync=False)
    journal.write_snapshot({"n": 1})
    journal.close()
    snap = tmp_path / SNAPSHOT_NAME
    data = bytearray(snap.read_bytes())
    data[-1] ^= 1
    snap.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as info:
        Journal.open(tmp_path, fsync=False)
    assert info.value.path == str(snap)


def test_non_map_payload_is_corrupt(tmp_path: Path) -> None:
    """A well-framed payload that is not a msgpack map is refused, not skipped."""
    import msgpack

    (tmp_path / segment_name(1)).write_bytes(encode_frame(msgpack.packb([1, 2]), RECORD_MAGIC))
    with pytest.raises(JournalCorrupt, match="not a map"):
        Journal.open(tmp_path, fsync=False)


def test_inspect_reads_without_modifying(tmp_path: Path) -> None:
    """inspect yields the snapshot, each record with its offset, and a torn tail entry,
    and never truncates; on a corrupt middle it raises after yielding the good prefix."""
    journal, _ = Journal.open(tmp_path, fsync=False)
    journal.append({"kind": "a"})
    journal.write_snapshot({"n": 1})
    for rec in _records(3):
        journal.append(rec)
    journal.commit()
    journal.close()
    seg = tmp_path / segment_name(2)
    with open(seg, "ab") as fh:
        fh.write(b"TJ\x00\x00")
    size = seg.stat().st_size
    entries = list(inspect(tmp_path))
    assert [e["kind"] for e in entries] == ["snapshot", "record", "record", "record", "torn_tail"]
    assert entries[0]["data"] == {"next_segment": 2, "n": 1}
    assert entries[2]["offset"] == len(encode_record(_records(3)[0]))
    assert seg.stat().st_size == size
    assert [e["kind"] for e in inspect(seg)][-1] == "torn_tail"
    assert list(inspect(tmp_path / SNAPSHOT_NAME))[0]["kind"] == "snapshot"
    data = bytearray(seg.read_bytes())
    data[HEADER_SIZE] ^= 1
    seg.write_bytes(bytes(data))
    seen: list[str] = []
    with pytest.raises(JournalCorrupt):
        for entry in inspect(tmp_path):
            seen.append(entry["kind"])
    assert seen == ["snapshot"]


def test_failed_commit_makes_journal_unusable(tmp_path: Path) -> None:
    """After a write error the segment is truncated to the durable offset and every
    further call raises, so nothing is acknowledged that is not on disk."""
    journal, _ = Journal.open(tmp_path, fsync=False)
    journal.append({"kind": "ok"})
    journal.commit()
    good = journal.offset
    journal.append({"kind": "lost"})
    real_fd = journal._fd
    os.close(real_fd)
    journal._fd = os.open(os.devnull, os.O_RDONLY)  # writes now fail with EBADF
    with pytest.raises(OSError):
        journal.commit()
    with pytest.raises(OSError, match="unusable"):
        journal.append({"kind": "more"})
    journal.close()
    assert (tmp_path / segment_name(1)).stat().st_size == good


def test_group_commit_makes_every_batch_durable(tmp_path: Path) -> None:
    """Batches of 100 records committed together all replay, in order (the throughput
    figure lives in `make bench`, section `pure`)."""
    journal, _ = Journal.open(tmp_path)
    for i in range(500):
        journal.append({"kind": "fill", "n": i})
        if i % 100 == 99:
            assert journal.commit() == 100
    journal.close()
    _, recovery = Journal.open(tmp_path)
    assert [r["n"] for r in recovery.records] == list(range(500))


def test_background_snapshot_compacts_while_appends_go_on(tmp_path: Path) -> None:
    """A snapshot written by a forked child covers what was committed before the fork;
    records appended meanwhile land in the new segment; replay = snapshot + those records,
    and the covered segments are gone."""
    from tests.helpers import eventually

    journal, _ = Journal.open(tmp_path)
    for i in range(50):
        journal.append({"kind": "r", "n": i})
    journal.commit()
    pid = journal.write_snapshot_in_background(lambda: {"upto": 49})
    assert pid is not None
    assert journal.write_snapshot_in_background(lambda: {"upto": -1}) is None  # one at a time
    for i in range(50, 60):
        journal.append({"kind": "r", "n": i})
    journal.commit()
    assert eventually(lambda: journal.poll_background() == 0 or None, 10.0) is not None
    journal.close()
    reopened, recovery = Journal.open(tmp_path)
    reopened.close()
    assert recovery.snapshot == {"upto": 49}
    assert [r["n"] for r in recovery.records] == list(range(50, 60))
    assert sorted(p.name for p in tmp_path.glob("journal-*.log")) == [
        segment_name(recovery.segment)
    ]


def test_background_snapshot_child_runs_at_the_lowest_cpu_priority(tmp_path: Path) -> None:
    """The forked child that builds and writes a snapshot (O(book): ~0.6 s of CPU at 50,000
    open orders) runs at nice 10, so it takes no CPU from the order path on a busy host; the
    actor itself keeps its priority, and the snapshot is written as before."""
    from tests.helpers import eventually

    journal, _ = Journal.open(tmp_path)
    journal.append({"kind": "r", "n": 0})
    journal.commit()
    parent_nice = os.nice(0)
    assert journal.write_snapshot_in_background(lambda: {"child_nice": os.nice(0)}) is not None
    assert eventually(lambda: journal.poll_background() == 0 or None, 10.0) is not None
    journal.close()
    reopened, recovery = Journal.open(tmp_path)
    reopened.close()
    assert recovery.snapshot == {"child_nice": max(parent_nice, 10)}
    assert os.nice(0) == parent_nice


@pytest.mark.timeout(20)
@pytest.mark.parametrize("name", [segment_name(1), SNAPSHOT_NAME])
def test_a_fifo_in_place_of_a_journal_file_is_unreadable_state_not_waited_on(
    tmp_path: Path, name: str
) -> None:
    """A FIFO in the journal dir (a segment's or the snapshot's name) blocked the OMS's
    start in open() for good, with no writer ever coming; now it is refused at once as an
    unreadable state file (exit 65: the same start meets it again)."""
    _write(tmp_path, _records(2))
    (tmp_path / name).unlink(missing_ok=True)
    os.mkfifo(tmp_path / name)
    with pytest.raises(OSError) as info:
        Journal.open(tmp_path)
    bad = unreadable(info.value, tmp_path)
    assert bad is not None and bad.path == str(tmp_path / name)
    assert str(bad).endswith("unreadable: not a regular file (a pipe, a FIFO or a device)")
