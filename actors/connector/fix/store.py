"""Crash-safe store of one FIX session: the next sequence numbers and the sent messages.

A store is a directory holding ``session.log`` and ``lock`` (held with ``flock`` while
the store is open, so two processes never share a session: `StateDirLocked`).

``session.log`` is ``b"TPFIXS1\\n"`` followed by records, each a 13-byte header
``struct "<BIII"`` (kind, value, payload length, CRC-32 of the first 9 header bytes and
the payload) and its payload:

- kind 1 SENT: value is the MsgSeqNum, payload the encoded application message;
  next-out becomes at least value + 1;
- kind 2 NEXT_OUT: value is next-out (after an admin message, which is not kept);
- kind 3 NEXT_IN: value is next-in.

Writes are buffered in memory and reach the file in one ``os.write`` per `flush()`
(an ``O_APPEND`` file, so a flushed record survives ``kill -9`` through the page cache);
`sync()` flushes and fsyncs. The session calls `sync()` once per drain of its outbound
bytes, before handing them out: nothing reaches the wire before its sequence number and
bytes are on disk (group commit), and next-in is durable once the caller has handled
the messages it was delivered (see `FixSession.data_to_send`).

On open the records are replayed. A last record that is short or fails its CRC is a
torn write and is cut off; a bad record followed by a good one (found at any offset, not
only where its own length says) is `JournalCorrupt`.
When the file passes ``max_bytes`` it is rewritten (temp file, fsync, rename, fsync of
the directory) keeping next-in, next-out and the sent messages of the last
``keep_msgs`` sequence numbers; a resend request for older ones is answered with a
gap fill. Between compactions the newest ``keep_msgs`` (plus a small slack) sequence
numbers are kept too. In memory a kept message is only its record's place in the file
(fixed slots, `sent`: 16 B a number); a resend reads the bytes back from the file (one
``pread`` per span of up to `_READ_SPAN` bytes, each record's CRC checked: a record that
no longer reads back whole is not resent, the peer gets a gap fill). Messages saved since
the last flush are in memory until it. A long session's memory stays flat while its file
grows; its pages are the kernel's cache, not the process's.
A record's place is held as a 32-bit offset: the file is compacted at the latest past
`MAX_FILE_BYTES` (1 GiB; `max_bytes` may not be more), and a message whose record would
start past `_MAX_PLACE` (2 GiB: only if the kept messages alone are that large) is
refused with ``OSError(EFBIG)`` before anything is saved.
`reset()` rewrites it empty with both numbers at 1.

`read_numbers` reads the two numbers without the lock (a running session's store, as last
flushed); `FixStore.set_numbers` is the operator's override (`tradepulse fix seq`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import zlib
from array import array
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from actors.connector.fix.sent import SentMessages
from actors.runtime.durable import remove_stale_temps, write_all, write_atomic
from actors.runtime.frames import refuse_short_header
from protocol.exceptions import JournalCorrupt, StateDirLocked

_MAGIC = b"TPFIXS1\n"
_HEADER = struct.Struct("<BIII")
_SENT, _NEXT_OUT, _NEXT_IN = 1, 2, 3
_PRUNE_SLACK = 1024  # sent messages kept past `keep_msgs` before trimming (amortised)
_READ_SPAN = 256 << 10  # bytes read back with one pread for a resend (several records)
MAX_FILE_BYTES = 1 << 30  # compacted at the latest past this, whatever the kept bytes
_MAX_PLACE = 2 << 30  # no record starts past this (a place's offset is 32 bits)
MAX_SEQ = 2**31 - 1  # the largest sequence number we set (a FIX int; stored as uint32)
STORE_NAME = "session.log"


def read_numbers(directory: str | os.PathLike[str]) -> tuple[int, int]:
    """(next-in, next-out) of the store in `directory` as its file has them, read without
    taking the lock; FileNotFoundError when there is no store, JournalCorrupt for a file
    that is not one. A torn or bad record ends the replay (the numbers before it count)."""
    path = Path(directory) / STORE_NAME
    data = path.read_bytes()
    if not data.startswith(_MAGIC):
        raise JournalCorrupt(str(path), 0, "not a FIX session store")
    next_in = next_out = 1
    pos = len(_MAGIC)
    while pos + _HEADER.size <= len(data):
        kind, value, length, crc = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + length
        payload = data[pos + _HEADER.size : end]
        if end > len(data) or zlib.crc32(payload, zlib.crc32(data[pos : pos + 9])) != crc:
            break
        if kind == _SENT:
            next_out = max(next_out, value + 1)
        elif kind == _NEXT_OUT:
            next_out = value
        elif kind == _NEXT_IN:
            next_in = value
        pos = end
    return next_in, next_out


def _loc(offset: int, length: int) -> int:
    """A kept message's place: its record's file offset and its payload's length (both
    under 2**32: `save_sent` refuses a record past `_MAX_PLACE`)."""
    return offset << 32 | length


def _record(kind: int, value: int, payload: bytes = b"") -> bytes:
    head = struct.pack("<BII", kind, value, len(payload))
    return _HEADER.pack(kind, value, len(payload), zlib.crc32(payload, zlib.crc32(head))) + payload


class FixStore:
    """Sequence numbers and sent application messages of one session (one directory)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: bool = True,
        keep_msgs: int = 10_000,
        max_bytes: int = 16 << 20,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._path = self.directory / STORE_NAME
        self._fsync = fsync
        if not 0 < max_bytes <= MAX_FILE_BYTES:
            raise ValueError(f"max_bytes {max_bytes} out of range 1..{MAX_FILE_BYTES}")
        self._keep_msgs = keep_msgs
        self._max_bytes = max_bytes
        self._lock_fd = self._lock()
        self._next_in = 1
        self._next_out = 1
        self.numbering = 0  # bumped when our numbers restart or go back (reset, override)
        self._reused: deque[tuple[int, int]] = deque(maxlen=16)  # (numbering, first reused)
        self._msgs = SentMessages(keep_msgs + _PRUNE_SLACK)
        self._pending: list[bytes] = []
        self._pending_len = 0  # bytes in _pending: a saved record lands at _size + this
        self._unflushed: dict[int, bytes] = {}  # messages saved since the last flush
        self._in_saved = 1
        self._out_saved = 1
        self._unsynced = False
        self._out_unsynced = False
        remove_stale_temps(self._path)
        if self._path.exists():
            self._load()
            self._msgs.drop_below(self._msgs.newest - keep_msgs + 1)
        else:
            self._rewrite()
        self._fd = os.open(self._path, os.O_RDWR | os.O_APPEND)  # pread for resends
        self._size = os.fstat(self._fd).st_size
        self._compact_at = self._compact_bound()

    # -- state ---------------------------------------------------------------------------

    @property
    def next_in(self) -> int:
        return self._next_in

    @property
    def next_out(self) -> int:
        return self._next_out

    def set_next_in(self, seq: int) -> None:
        """Next expected inbound MsgSeqNum; written at the next `flush()`. ValueError past
        `MAX_SEQ` + 1 (a record could not hold it: the flush would raise, outside any
        handler of inbound data)."""
        if not 1 <= seq <= MAX_SEQ + 1:
            raise ValueError(f"next-in {seq} out of range 1..{MAX_SEQ + 1}")
        self._next_in = seq

    def set_next_out(self, seq: int) -> None:
        """Next outbound MsgSeqNum after an admin message; written at the next `flush()`."""
        self._next_out = seq

    def save_sent(self, seq: int, raw: bytes) -> None:
        """Keep application message `seq` for resends; next-out becomes seq + 1.
        OSError(EFBIG), nothing saved, if its record would start past `_MAX_PLACE`."""
        record = _record(_SENT, seq, raw)
        if self._size + self._pending_len > _MAX_PLACE:
            raise OSError(errno.EFBIG, f"FIX store {self._path} past {_MAX_PLACE} bytes")
        # the newest keep_msgs + _PRUNE_SLACK numbers (`sent`): where the record will be
        # (`_loc` and `_buffer` inline: the order path's every D)
        self._msgs.put(seq, (self._size + self._pending_len) << 32 | len(raw))
        self._unflushed[seq] = raw
        self._next_out = seq + 1
        self._out_saved = seq + 1
        self._pending.append(record)
        self._pending_len += len(record)
        self._out_unsynced = True

    def _buffer(self, record: bytes) -> None:
        """Buffer `record` for the next flush (it lands at _size + _pending_len)."""
        self._pending.append(record)
        self._pending_len += len(record)

    def sent_messages(self, begin: int, end: int) -> list[tuple[int, bytes]]:
        """Kept application messages with begin <= seq <= end, in sequence order (read
        back from the file; one that does not read back whole is left out)."""
        seqs, locs = self._msgs.places(begin, end)
        return [(seq, bytes(rec[_HEADER.size :])) for seq, rec in self._records(seqs, locs)]

    # -- durability ----------------------------------------------------------------------

    def flush(self) -> None:
        """Write buffered records with one os.write (no fsync). A write that fails (ENOSPC,
        EIO) is cut back off the file and re-raised with the records still buffered, at the
        same places: the next flush writes them again, and later messages' places hold."""
        if self._next_out != self._out_saved:
            self._buffer(_record(_NEXT_OUT, self._next_out))
            self._out_saved = self._next_out
            self._out_unsynced = True
        if self._next_in != self._in_saved:
            self._buffer(_record(_NEXT_IN, self._next_in))
            self._in_saved = self._next_in
        if not self._pending:
            return
        data = b"".join(self._pending)
        try:
            write_all(self._fd, data)
        except OSError:
            os.ftruncate(self._fd, self._size)  # a partial write: no torn record before good
            raise
        self._pending.clear()
        self._size += len(data)
        self._pending_len = 0
        self._unflushed.clear()
        self._unsynced = True
        if self._size > self._compact_at:
            self._compact()

    def sync(self) -> None:
        """`flush()`, then fsync if an outbound record (a sent message or next-out) was
        written since the last sync. Next-in alone is not worth an fsync: losing it (power
        loss only; kill -9 keeps the page cache) makes the peer resend what we already
        handled, which the application dedupes by ExecID."""
        self.flush()
        if self._unsynced and self._out_unsynced and self._fsync:
            os.fsync(self._fd)
        self._unsynced = self._out_unsynced = False

    def reset(self) -> None:
        """Both sequence numbers back to 1, every kept message dropped; durable on return."""
        self._msgs.clear()
        self._next_in = self._next_out = 1
        self._renumber(1)
        self._replace_file()

    def set_numbers(self, next_in: int | None = None, next_out: int | None = None) -> None:
        """The operator's override of the next numbers (None: keep); durable on return.
        Lowering next-out drops the kept messages from the new next-out on: those numbers
        go to new messages, so a ResendRequest must never bring the old ones back."""
        for value in (next_in, next_out):
            if value is not None and not 1 <= value <= MAX_SEQ:
                raise ValueError(f"sequence number {value} out of range 1..{MAX_SEQ}")
        if next_in is not None:
            self._next_in = next_in
        if next_out is not None:
            self._msgs.drop_from(next_out)
            if next_out < self._next_out:  # numbers already used go to new messages
                self._renumber(next_out)
            self._next_out = next_out
        self._replace_file()

    def _renumber(self, first: int) -> None:
        self.numbering += 1
        self._reused.append((self.numbering, first))

    def reused_since(self, numbering: int) -> int:
        """The lowest of our numbers given again to new messages by the numberings after
        `numbering` (two lowered next-outs in a row: the lower one; 1 once that is no longer
        known, so a reader forgets all)."""
        firsts = [first for n, first in self._reused if n > numbering]
        if len(firsts) < self.numbering - numbering:
            return 1
        return min(firsts, default=MAX_SEQ + 1)

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            os.close(self._lock_fd)
            self._fd = self._lock_fd = -1

    def __enter__(self) -> FixStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals -----------------------------------------------------------------------

    def _lock(self) -> int:
        fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateDirLocked(f"FIX store {self.directory} is open elsewhere") from None
        return fd

    def _load(self) -> None:
        data = self._path.read_bytes()
        refuse_short_header(str(self._path), data, _MAGIC, "FIX session store")
        if not data.startswith(_MAGIC):
            raise JournalCorrupt(str(self._path), 0, "not a FIX session store")
        pos = len(_MAGIC)
        while pos < len(data):
            end = self._apply(data, pos)
            if end is None:  # a good record anywhere after it: a damaged length hides none
                if any(self._apply(data, at, dry_run=True) for at in range(pos + 1, len(data))):
                    raise JournalCorrupt(str(self._path), pos, "bad record before good ones")
                with open(self._path, "r+b") as f:  # torn tail: cut it off
                    f.truncate(pos)
                    os.fsync(f.fileno())
                break
            pos = end
        self._in_saved, self._out_saved = self._next_in, self._next_out

    def _apply(self, data: bytes, pos: int, *, dry_run: bool = False) -> int | None:
        """Replay the record at `pos`; its end offset, or None when it is not whole."""
        if pos + _HEADER.size > len(data):
            return None
        kind, value, length, crc = _HEADER.unpack_from(data, pos)
        end: int = pos + _HEADER.size + length
        if end > len(data) or kind not in (_SENT, _NEXT_OUT, _NEXT_IN):
            return None
        payload = data[pos + _HEADER.size : end]
        if zlib.crc32(payload, zlib.crc32(data[pos : pos + 9])) != crc:
            return None
        if dry_run:
            return end
        if kind == _SENT:
            self._msgs.put(value, _loc(pos, length))
            self._next_out = max(self._next_out, value + 1)
        elif kind == _NEXT_OUT:
            self._next_out = value
        else:
            self._next_in = value
        return end

    def _compact(self) -> None:
        self._msgs.drop_below(self._next_out - self._keep_msgs)
        self._replace_file()

    def _replace_file(self) -> None:
        """Rewrite the file with the numbers and the kept messages, copied record by record
        from the old file (no message held as an object meanwhile)."""
        seqs, locs = self._msgs.places(1, MAX_SEQ)  # arrays: no object per message
        data = bytearray(_MAGIC)
        data += _record(_NEXT_IN, self._next_in) + _record(_NEXT_OUT, self._next_out)
        moved, places = array("q"), array("Q")
        for seq, rec in self._records(seqs, locs):
            places.append(_loc(len(data), len(rec) - _HEADER.size))  # its new place
            data += rec
            moved.append(seq)
        # the new file first: if it cannot be written, the old one and every place in it
        # stay as they were (the store goes on appending to it; the caller sees the error)
        self._rewrite(bytes(data))
        old, self._fd = self._fd, -1  # replaced: never written again (a failed open below
        os.close(old)  # leaves the store refusing writes, not appending to an unlinked file)
        self._fd = os.open(self._path, os.O_RDWR | os.O_APPEND)
        for seq, loc in zip(moved, places, strict=True):
            self._msgs.put(seq, loc)
        if len(moved) != len(seqs):  # not read back whole: a gap fill from now on
            for seq in set(seqs).difference(moved):
                self._msgs.forget(seq)
        self._pending.clear()  # what they held is in `data`
        self._pending_len = 0
        self._unflushed.clear()
        self._size = os.fstat(self._fd).st_size
        self._compact_at = self._compact_bound()

    def _compact_bound(self) -> int:
        """Compact past max_bytes and twice the kept bytes, but past MAX_FILE_BYTES at most."""
        return min(max(self._max_bytes, 2 * self._size), MAX_FILE_BYTES)

    def _rewrite(self, data: bytes | None = None) -> None:
        """Write the whole state (`data`, or the numbers alone) to a temp file and rename
        it over session.log, durably."""
        if data is None:
            data = _MAGIC + _record(_NEXT_IN, self._next_in) + _record(_NEXT_OUT, self._next_out)
        write_atomic(self._path, data)
        self._in_saved, self._out_saved = self._next_in, self._next_out
        self._unsynced = False

    def _records(
        self, seqs: array[int], locs: array[int]
    ) -> Iterator[tuple[int, bytes | memoryview]]:
        """The whole SENT records of messages `seqs` at places `locs` (in order): those
        saved since the last flush built again, the rest read from the file, several per
        pread (a record that is not there whole or fails its CRC is left out)."""
        i, count = 0, len(seqs)
        while i < count:
            raw = self._unflushed.get(seqs[i])
            if raw is not None:
                yield seqs[i], _record(_SENT, seqs[i], raw)
                i += 1
                continue
            start = stop = locs[i] >> 32
            j = i
            while j < count and seqs[j] not in self._unflushed:
                off, n = locs[j] >> 32, locs[j] & 0xFFFFFFFF
                if j > i and (off < stop or off + _HEADER.size + n - start > _READ_SPAN):
                    break
                stop = off + _HEADER.size + n
                j += 1
            span = memoryview(os.pread(self._fd, stop - start, start) if self._fd >= 0 else b"")
            for k in range(i, j):
                at, n = (locs[k] >> 32) - start, locs[k] & 0xFFFFFFFF
                rec = span[at : at + _HEADER.size + n]
                if len(rec) == _HEADER.size + n and _whole(rec, seqs[k]):
                    yield seqs[k], rec
            i = j


def _whole(rec: memoryview, seq: int) -> bool:
    """`rec` is message `seq`'s SENT record, its CRC holding."""
    kind, value, n, crc = _HEADER.unpack_from(rec)
    if (kind, value, n) != (_SENT, seq, len(rec) - _HEADER.size):
        return False
    return bool(zlib.crc32(rec[_HEADER.size :], zlib.crc32(rec[:9])) == crc)
