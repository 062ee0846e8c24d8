"""FIX session store: durable sequence numbers and sent messages, torn tails, compaction."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from actors.connector.fix import store as fix_store
from actors.connector.fix.store import FixStore
from protocol.exceptions import JournalCorrupt, StateDirLocked


def msg(seq: int) -> bytes:
    return b"8=FIX.4.4\x019=5\x0135=D\x01" + b"11=order-%d\x01" % seq + b"10=000\x01"


def test_numbers_and_messages_survive_close_and_reopen(tmp_path: Path) -> None:
    """Sent messages, next-out after an admin message and next-in come back on reopen."""
    with FixStore(tmp_path) as store:
        store.save_sent(1, msg(1))
        store.save_sent(2, msg(2))
        store.set_next_out(4)  # an admin message took 3
        store.set_next_in(9)
    with FixStore(tmp_path) as store:
        assert (store.next_out, store.next_in) == (4, 9)
        assert store.sent_messages(1, 10) == [(1, msg(1)), (2, msg(2))]
        assert store.sent_messages(2, 2) == [(2, msg(2))]
        assert store.sent_messages(3, 1_000_000) == []


def test_flushed_records_survive_kill_9_and_unflushed_ones_do_not(tmp_path: Path) -> None:
    """A child process flushes (no fsync, no close), buffers one more message and is
    SIGKILLed: the page cache keeps what was flushed, the buffered message is gone."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        store = FixStore(tmp_path, fsync=False)
        store.save_sent(1, msg(1))
        store.set_next_in(5)
        store.flush()
        store.save_sent(2, msg(2))
        os.kill(os.getpid(), signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    with FixStore(tmp_path) as store:
        assert (store.next_out, store.next_in) == (2, 5)
        assert store.sent_messages(1, 5) == [(1, msg(1))]


@pytest.mark.parametrize(
    "tail",
    [
        b"\x01",  # a header cut short
        fix_store._record(1, 3, msg(3))[:-4],  # a payload cut short
        fix_store._record(1, 3, msg(3))[:-1] + b"X",  # a last record failing its CRC
    ],
)
def test_torn_tail_is_cut_off_and_appends_continue(tmp_path: Path, tail: bytes) -> None:
    """A partly written last record is dropped on open; later records land after it."""
    with FixStore(tmp_path) as store:
        store.save_sent(1, msg(1))
    with open(tmp_path / "session.log", "ab") as f:
        f.write(tail)
    with FixStore(tmp_path) as store:
        assert store.next_out == 2
        store.save_sent(2, msg(2))
    with FixStore(tmp_path) as store:
        assert store.sent_messages(1, 9) == [(1, msg(1)), (2, msg(2))]


def test_corrupt_record_followed_by_good_ones_is_an_error(tmp_path: Path) -> None:
    """A bad record in the middle is never skipped silently: JournalCorrupt."""
    with FixStore(tmp_path) as store:
        store.save_sent(1, msg(1))
        store.flush()
        store.save_sent(2, msg(2))
    path = tmp_path / "session.log"
    data = bytearray(path.read_bytes())
    data[data.index(b"order-1")] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt):
        FixStore(tmp_path)


@pytest.mark.parametrize("field", ["kind", "length"])
def test_a_damaged_header_in_the_middle_is_an_error_not_a_torn_tail(
    tmp_path: Path, field: str
) -> None:
    """Seen on the demo (a flipped byte in the length of a NEXT_IN record in the middle of
    fix/simA/session.log): the next record was looked for only where the damaged length
    pointed, so the rest of the file was cut as a torn tail; next-out fell from 8 to 5
    and the venue refused every logon (MsgSeqNum too low). The records behind it are
    found wherever they start: JournalCorrupt, nothing cut."""
    with FixStore(tmp_path) as store:
        for seq in (1, 2, 3):
            store.save_sent(seq, msg(seq))
            store.flush()
    path = tmp_path / "session.log"
    data = bytearray(path.read_bytes())
    starts, pos = [], len(fix_store._MAGIC)
    while pos < len(data):
        starts.append(pos)
        pos += fix_store._HEADER.size + fix_store._HEADER.unpack_from(data, pos)[2]
    second = starts[len(starts) // 2]  # records on both sides
    data[second + {"kind": 0, "length": 7}[field]] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as info:
        FixStore(tmp_path).close()
    assert info.value.offset == second
    assert path.read_bytes() == bytes(data)


def test_foreign_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "session.log").write_bytes(b"hello world, not a store")
    with pytest.raises(JournalCorrupt):
        FixStore(tmp_path)


def test_compaction_bounds_the_file_and_keeps_the_recent_messages(tmp_path: Path) -> None:
    """Past max_bytes the file is rewritten with the last keep_msgs messages; the numbers
    are unchanged, and a reopened store sees exactly the same."""
    with FixStore(tmp_path, keep_msgs=10, max_bytes=2_000) as store:
        for seq in range(1, 501):
            store.save_sent(seq, msg(seq))
            store.set_next_in(seq)
            store.flush()
        assert (tmp_path / "session.log").stat().st_size <= 2 * 2_000
        kept = [s for s, _ in store.sent_messages(1, 500)]
        assert kept[0] >= 491 - 10 and kept[-1] == 500 and len(kept) <= 60
    with FixStore(tmp_path) as store:
        assert (store.next_out, store.next_in) == (501, 500)
        assert [s for s, _ in store.sent_messages(1, 500)] == kept
    assert not list(tmp_path.glob("*.tmp"))


def test_memory_keeps_only_the_recent_messages_between_compactions(tmp_path: Path) -> None:
    """Far below max_bytes (no compaction), the messages held for resends stay about
    keep_msgs (plus the trim slack), the newest ones; a reopened store likewise holds at
    most keep_msgs of what its file has."""
    slack = fix_store._PRUNE_SLACK
    with FixStore(tmp_path, keep_msgs=100) as store:
        for seq in range(1, 5001):
            store.save_sent(seq, msg(seq))
        store.flush()
        kept = [s for s, _ in store.sent_messages(1, 5000)]
        assert 100 <= len(kept) <= 100 + slack and kept[-1] == 5000
    with FixStore(tmp_path, keep_msgs=100) as store:
        assert [s for s, _ in store.sent_messages(1, 5000)] == list(range(4901, 5001))


def test_reset_clears_messages_and_sets_both_numbers_to_one(tmp_path: Path) -> None:
    with FixStore(tmp_path) as store:
        store.save_sent(1, msg(1))
        store.set_next_in(7)
        store.reset()
        assert (store.next_out, store.next_in) == (1, 1)
    with FixStore(tmp_path) as store:
        assert (store.next_out, store.next_in) == (1, 1)
        assert store.sent_messages(1, 9) == []


def test_second_open_of_the_same_store_is_refused(tmp_path: Path) -> None:
    """Two sessions never share a store: the second open raises StateDirLocked."""
    store = FixStore(tmp_path)
    with pytest.raises(StateDirLocked):
        FixStore(tmp_path)
    store.close()
    FixStore(tmp_path).close()


def test_sync_fsyncs_once_per_batch_and_only_when_something_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit: many buffered records cost one write and one fsync; an idle sync
    costs nothing."""
    calls: list[str] = []
    real_write = os.write
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync"))

    def counting_write(fd: int, data: bytes | memoryview) -> int:
        calls.append("write")
        return real_write(fd, data)

    with FixStore(tmp_path) as store:
        calls.clear()
        monkeypatch.setattr(os, "write", counting_write)
        for seq in range(1, 101):
            store.save_sent(seq, msg(seq))
        store.set_next_in(3)
        store.sync()
        assert calls == ["write", "fsync"]
        store.sync()
        assert calls == ["write", "fsync"]
