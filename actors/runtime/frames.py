"""The CRC-checked frame of every append-only log (OMS journal, connector exec outbox).

Frame: 2-byte magic, payload length (u32, big endian), CRC-32 of the payload (u32), payload.
A log is a run of frames; after a crash only its tail can be damaged (a write cut short).
`read_frames` tells the two failures apart:

- a bad frame with no valid frame anywhere after it is a torn tail: it is reported (`Torn`)
  and the writer truncates the log there;
- a bad frame followed by a valid one is a corrupt middle: `JournalCorrupt`, nothing is
  truncated, an operator decides (a silent cut would drop the good records behind it);
- so is a bad frame that no write of ours can leave: every write starts at a frame with
  its magic, so a write cut short (`kill -9`, a power loss) leaves the start of a frame, or
  zeros where the file grew before its data landed. Anything else (another file's bytes, a
  frame of another log) is not a torn tail: cutting it would drop a whole file's records.

The search for a later valid frame scans for the magic at every offset, so a damaged
length field cannot hide the records behind it.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from protocol.exceptions import JournalCorrupt

_HEADER = struct.Struct(">2sII")
HEADER_SIZE = _HEADER.size
MAX_FRAME_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    offset: int
    end: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Torn:
    """The log's damaged tail, from `offset` to the end of the data."""

    offset: int
    detail: str


def refuse_short_header(path: str, data: bytes, header: bytes, what: str) -> None:
    """`JournalCorrupt` for a state file shorter than its `header` (empty included): every
    such file is created whole (`write_atomic`: temp file, fsync, rename) and never cut
    below its header, so one that is shorter was damaged, and what it held (executions the
    venue counts as delivered, sequence numbers) is gone. Never taken as a new file."""
    if len(data) < len(header):
        raise JournalCorrupt(
            path, 0, f"{what} of {len(data)} bytes, shorter than its header: damaged"
        )


def encode_frame(payload: bytes, magic: bytes) -> bytes:
    """Frame `payload`: magic, length, CRC32, payload."""
    return _HEADER.pack(magic, len(payload), zlib.crc32(payload)) + payload


def check_frame(data: bytes, pos: int, magic: bytes) -> Frame | str:
    """The frame at `pos`, or a string saying why there is none."""
    if len(data) - pos < HEADER_SIZE:
        return f"incomplete header ({len(data) - pos} of {HEADER_SIZE} bytes)"
    got_magic, length, crc = _HEADER.unpack_from(data, pos)
    if got_magic != magic:
        return f"bad magic {got_magic!r}"
    if length > MAX_FRAME_BYTES:
        return f"absurd length {length}"
    end = pos + HEADER_SIZE + length
    if end > len(data):
        return f"incomplete record ({len(data) - pos - HEADER_SIZE} of {length} payload bytes)"
    payload = data[pos + HEADER_SIZE : end]
    if zlib.crc32(payload) != crc:
        return "CRC mismatch"
    return Frame(pos, end, payload)


def valid_frame_after(data: bytes, start: int, magic: bytes) -> int | None:
    """Offset of the first valid frame at or after `start`, if any."""
    idx = data.find(magic, start)
    while idx != -1:
        if not isinstance(check_frame(data, idx, magic), str):
            return idx
        idx = data.find(magic, idx + 1)
    return None


def _maybe_torn(data: bytes, pos: int, magic: bytes) -> bool:
    """Could the bytes at `pos` be a write of ours cut short: the start of our magic, or
    zeros (a file extended before its data was written)?"""
    head = data[pos : pos + len(magic)]
    return magic.startswith(head) or not head.strip(b"\0")


def read_frames(path: str, data: bytes, magic: bytes, start: int = 0) -> Iterator[Frame | Torn]:
    """Every valid frame from `start`, then a `Torn` if the data ends in a damaged tail.
    Raises `JournalCorrupt` at a bad frame that has a valid frame after it (the frames
    before it have been yielded by then)."""
    pos = start
    while pos < len(data):
        checked = check_frame(data, pos, magic)
        if isinstance(checked, str):
            later = valid_frame_after(data, pos + 1, magic)
            if later is not None:
                raise JournalCorrupt(path, pos, f"{checked}; valid record follows at {later}")
            if not _maybe_torn(data, pos, magic):
                raise JournalCorrupt(path, pos, f"{checked}; not a write cut short")
            yield Torn(pos, checked)
            return
        yield checked
        pos = checked.end


def valid_frames(
    path: str | os.PathLike[str], data: bytes, magic: bytes, start: int = 0
) -> Iterator[Frame]:
    """`read_frames` of a log's `data`, its torn tail (a write cut short) cut off the file
    at `path` (truncated there, fsynced) once the frames before it are read."""
    for item in read_frames(os.fspath(path), data, magic, start):
        if isinstance(item, Torn):
            with open(path, "r+b") as f:
                f.truncate(item.offset)
                os.fsync(f.fileno())
            return
        yield item
