"""FIX store resends read back from the file (actors/connector/fix/store.py): memory holds a
kept message's place, not its bytes; what was saved since the last flush is served from
memory; a record that no longer reads back whole is left out (the peer gets a gap fill)."""

from __future__ import annotations

import errno
import os
import tracemalloc
from pathlib import Path

import pytest

from actors.connector.fix import store as store_mod
from actors.connector.fix.store import STORE_NAME, FixStore


def msg(seq: int, pad: int = 180) -> bytes:
    return b"8=FIX.4.4\x0135=D\x0111=order-%d\x0158=" % seq + b"x" * pad + b"\x0110=000\x01"


def test_memory_holds_places_not_message_bytes(tmp_path: Path) -> None:
    """20,000 messages of ~220 B through a store keeping 10,000 leave < 512 KiB traced
    (the 11,024 slots' two arrays, ~176 KiB; it held every kept payload before: ~2.7 MiB),
    and every kept one still reads back exactly."""
    tracemalloc.start()
    try:
        store = FixStore(tmp_path, fsync=False, keep_msgs=10_000)
        for seq in range(1, 20_001):
            store.save_sent(seq, msg(seq))
            store.flush()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert held < 512 * 1024, held
    got = store.sent_messages(1, 40_000)
    assert len(got) >= 10_000 and got[-1] == (20_000, msg(20_000))
    assert all(raw == msg(seq) for seq, raw in got)
    store.close()


def test_unflushed_messages_are_served_from_memory(tmp_path: Path) -> None:
    """A resend asked before the turn's flush (the messages are not in the file yet) gets
    them, in order with the flushed ones, and the flush writes nothing twice."""
    with FixStore(tmp_path, fsync=False) as store:
        store.save_sent(1, msg(1))
        store.flush()
        store.save_sent(2, msg(2))
        store.set_next_out(4)  # an admin message took 3
        store.save_sent(4, msg(4))
        assert store.sent_messages(1, 9) == [(1, msg(1)), (2, msg(2)), (4, msg(4))]
        store.flush()
        assert store.sent_messages(2, 4) == [(2, msg(2)), (4, msg(4))]
    with FixStore(tmp_path) as store:
        assert store.sent_messages(1, 9) == [(1, msg(1)), (2, msg(2)), (4, msg(4))]


def test_a_record_changed_on_disk_is_left_out_not_resent_wrong(tmp_path: Path) -> None:
    """A kept message whose bytes changed in the file after it was written (its CRC fails)
    is not resent: the others are, and a compaction forgets it."""
    with FixStore(tmp_path, fsync=False, keep_msgs=100, max_bytes=1 << 20) as store:
        for seq in range(1, 6):
            store.save_sent(seq, msg(seq))
        store.flush()
        path = tmp_path / STORE_NAME
        data = bytearray(path.read_bytes())
        data[data.index(b"order-3")] ^= 0x20
        path.write_bytes(bytes(data))
        assert [s for s, _ in store.sent_messages(1, 9)] == [1, 2, 4, 5]
        store.set_numbers(next_in=7)  # rewrites the file from what reads back
        assert store.sent_messages(1, 9) == [(s, msg(s)) for s in (1, 2, 4, 5)]
    with FixStore(tmp_path) as store:
        assert (store.next_in, store.next_out) == (7, 6)
        assert [s for s, _ in store.sent_messages(1, 9)] == [1, 2, 4, 5]


def test_long_ranges_are_read_in_spans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A resend of the whole window reads several records per pread (spans of at most
    `_READ_SPAN` bytes), interleaved next-in records included, and returns each exactly."""
    monkeypatch.setattr(store_mod, "_READ_SPAN", 4096)
    reads: list[int] = []
    real = os.pread

    def counted(fd: int, n: int, off: int) -> bytes:
        reads.append(n)
        return real(fd, n, off)

    with FixStore(tmp_path, fsync=False, keep_msgs=1000) as store:
        for seq in range(1, 501):
            store.save_sent(seq, msg(seq, pad=seq % 50))
            store.set_next_in(seq)
            store.flush()
        monkeypatch.setattr(os, "pread", counted)
        got = store.sent_messages(1, 500)
    assert got == [(s, msg(s, pad=s % 50)) for s in range(1, 501)]
    assert max(reads) <= 4096 and 10 <= len(reads) <= 40, reads


def test_a_compaction_makes_no_object_per_kept_message(tmp_path: Path) -> None:
    """Compacting a store of 11,000 kept messages peaks at about the new file's bytes
    twice (built with a bytearray's slack, then copied to write) plus a read span and the
    places, which travel in two arrays; the records are copied from the old file's spans
    (a list of (number, place) tuples took ~1.1 MB of small objects at each compaction,
    the venue's RSS stepped up ~1 MiB at its first one)."""
    store = FixStore(tmp_path, fsync=False, keep_msgs=10_000, max_bytes=1 << 30)
    for seq in range(1, 11_001):
        store.save_sent(seq, msg(seq))
    store.flush()
    size = (tmp_path / STORE_NAME).stat().st_size
    tracemalloc.start()
    try:
        store.set_numbers(next_in=5)  # rewrites the file from what reads back
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2.125 * size + 768 * 1024, (peak, size)  # ~5.8 MB; 6.9 with the tuples
    assert [s for s, _ in store.sent_messages(1, 11_000)] == list(range(1, 11_001))
    store.close()


@pytest.mark.parametrize("written", [0, 20])
def test_a_failed_write_leaves_every_later_place_right(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: int
) -> None:
    """A flush whose write fails (ENOSPC after `written` bytes reached the file) is cut back
    off and re-raised with its records still buffered: a later message and the ones the
    failed flush held are resent exactly, from the file after the next flush and after a
    reopen (the places were off by the lost bytes: gap fills; a torn part before good
    records was JournalCorrupt at the next open)."""
    real = store_mod.write_all

    def full(fd: int, data: bytes) -> None:
        real(fd, data[:written])
        raise OSError(28, "No space left on device")

    with FixStore(tmp_path, fsync=False) as store:
        store.save_sent(1, msg(1))
        store.flush()
        store.save_sent(2, msg(2))
        store.set_next_out(4)  # an admin message took 3: a NEXT_OUT record in the flush
        monkeypatch.setattr(store_mod, "write_all", full)
        with pytest.raises(OSError):
            store.flush()
        monkeypatch.setattr(store_mod, "write_all", real)
        store.save_sent(4, msg(4))
        store.flush()
        assert store.sent_messages(1, 9) == [(1, msg(1)), (2, msg(2)), (4, msg(4))]
    with FixStore(tmp_path) as store:
        assert store.next_out == 5
        assert store.sent_messages(1, 9) == [(1, msg(1)), (2, msg(2)), (4, msg(4))]


def test_a_place_past_the_bound_is_refused_before_anything_is_saved(tmp_path: Path) -> None:
    """A record that would start past `_MAX_PLACE` (2 GiB, places are 32-bit offsets) is
    refused with OSError(EFBIG), nothing kept, the store usable after (it raised
    OverflowError at 4 GiB out of the session's send path, after the next number was
    taken); max_bytes past MAX_FILE_BYTES is refused at open."""
    with pytest.raises(ValueError, match="max_bytes"):
        FixStore(tmp_path / "big", max_bytes=store_mod.MAX_FILE_BYTES + 1)
    with FixStore(tmp_path, fsync=False) as store:
        size = store._size
        store._size = 1 << 32  # as if the file had grown to 4 GiB
        with pytest.raises(OSError) as err:
            store.save_sent(1, msg(1))
        assert err.value.errno == errno.EFBIG
        store._size = size
        assert (store.next_out, store.sent_messages(1, 9)) == (1, [])
        store.save_sent(1, msg(1))
        store.flush()
        assert store.sent_messages(1, 9) == [(1, msg(1))]


def test_a_file_past_max_file_bytes_is_compacted_whatever_its_kept_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reopened with a file of 100 messages (compaction due at twice its size), a store is
    compacted once its file passes MAX_FILE_BYTES (the bound that keeps places far below
    4 GiB), keeping its newest messages exactly."""
    with FixStore(tmp_path, fsync=False, keep_msgs=1000, max_bytes=1 << 20) as store:
        for seq in range(1, 101):
            store.save_sent(seq, msg(seq))
        store.flush()
    size = (tmp_path / STORE_NAME).stat().st_size
    monkeypatch.setattr(store_mod, "MAX_FILE_BYTES", size + size // 2)
    with FixStore(tmp_path, fsync=False, keep_msgs=50, max_bytes=size // 2) as store:
        for seq in range(101, 161):
            store.save_sent(seq, msg(seq))
            store.flush()
            assert (tmp_path / STORE_NAME).stat().st_size <= size + size // 2
        assert store.sent_messages(111, 160) == [(s, msg(s)) for s in range(111, 161)]


def test_a_failed_compaction_leaves_the_store_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compaction whose new file cannot be written (ENOSPC) raises and leaves the old
    file, its descriptor and every kept message's place as they were: the store goes on
    appending, resends read back exactly, and a reopen sees every message (it closed the
    file first and moved the places to the unwritten file's offsets: every later flush
    failed on the closed descriptor, or wrote into whatever file reused its number)."""
    real = store_mod.write_atomic

    def full(path: Path, data: bytes, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with FixStore(tmp_path, fsync=False, keep_msgs=1000, max_bytes=1 << 20) as store:
        for seq in range(1, 11):
            store.save_sent(seq, msg(seq))
        store.flush()
        monkeypatch.setattr(store_mod, "write_atomic", full)
        with pytest.raises(OSError):
            store._compact()
        monkeypatch.setattr(store_mod, "write_atomic", real)
        assert store.sent_messages(1, 99) == [(s, msg(s)) for s in range(1, 11)]
        store.save_sent(11, msg(11))
        store.flush()
        assert store.sent_messages(1, 99) == [(s, msg(s)) for s in range(1, 12)]
    with FixStore(tmp_path) as store:
        assert store.next_out == 12
        assert store.sent_messages(1, 99) == [(s, msg(s)) for s in range(1, 12)]
