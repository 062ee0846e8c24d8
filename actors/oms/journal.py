"""The OMS journal: durable append-only records, group commit, snapshots and compaction.

A journal is a directory::

    snapshot.bin            latest snapshot (optional), replaced atomically
    journal-00000007.log    segments; replay = snapshot + every segment >= the snapshot's
    journal-00000008.log    `next_segment`, in order (older segments are compacted away)

Every record and the snapshot are framed the same way::

    magic (2 bytes) | payload length (uint32 BE) | CRC32 of payload (uint32 BE) | payload

Records are msgpack-encoded dicts: str keys, values str/int/float/bool/None/bytes/list/dict
(the caller turns Decimals into str). Record magic is b"TJ", snapshot magic b"TS".

Use (the OMS actor)::

    journal, recovery = Journal.open(state_dir / "oms")
    book = OrderBook.from_dict(recovery.snapshot) if recovery.snapshot else OrderBook()
    for record in recovery.records:
        book.apply_record(record)
    while running:                      # one loop iteration
        journal.append(record) ...       # buffered, no I/O
        journal.commit()                 # one write + one fdatasync for the whole batch
        ...                              # only now ack clients / send to venues
        if snapshot_due(journal, cfg.oms.snapshot_every):  # actors.oms.snapshot_due
            journal.write_snapshot(book.to_dict())

Recovery rules (`Journal.open`):

- A bad frame (short header, length past EOF or absurd, CRC mismatch, zeros: a write cut
  short) in the newest segment with no valid frame after it is a torn tail: it is dropped,
  the file truncated to the good prefix, `recovery.torn_tail` says what was dropped and a
  `journal_torn_tail` warning is logged. Records of a torn tail were never acknowledged.
- A bad frame followed by a valid one or not starting as our writes do (magic or zeros),
  a bad frame in a sealed segment, a missing segment, a payload that is not a msgpack map
  or a bad snapshot raise `JournalCorrupt(path, offset, detail)`. Nothing is skipped.
- Caveat: a power loss can in principle persist pages of the last, never-fsynced batch out
  of order; that shows as a bad frame followed by a valid one and is refused as corrupt
  (fail closed: the operator decides). A `kill -9` only ever leaves a clean prefix.

A failed write or fsync in `commit` truncates the segment back to the last durable offset
and re-raises; the journal then refuses further use (the actor must restart and replay).
Space allocated past a segment's end (`actors.oms.journal_space`, the reserve for a full
disk) is not part of it: the size is the end, and a sealed segment is trimmed to it.

`inspect(path)` reads a journal directory, a segment or a snapshot read-only, for the
`journal inspect` CLI.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import structlog

from actors.runtime import hardening
from actors.runtime.background import yield_cpu
from actors.runtime.durable import fsync_dir, remove_stale_temps, write_all, write_atomic
from actors.runtime.frames import Torn, check_frame, encode_frame, read_frames
from protocol.exceptions import JournalCorrupt
from protocol.paths import read_regular

RECORD_MAGIC = b"TJ"
SNAPSHOT_MAGIC = b"TS"
SNAPSHOT_NAME = "snapshot.bin"
_SEGMENT_RE = re.compile(r"journal-(\d{8})\.log")
_log = structlog.get_logger("journal")


def segment_name(number: int) -> str:
    return f"journal-{number:08d}.log"


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One framed msgpack record (raises TypeError on a value msgpack cannot encode)."""
    return encode_frame(msgpack.packb(record, use_bin_type=True), RECORD_MAGIC)


@dataclass(frozen=True, slots=True)
class TornTail:
    path: str
    offset: int
    dropped_bytes: int
    detail: str


@dataclass(frozen=True, slots=True)
class Recovery:
    """What `Journal.open` found: replay `snapshot` (if any) then `records` in order."""

    snapshot: dict[str, Any] | None
    records: list[dict[str, Any]]
    torn_tail: TornTail | None
    segment: int


def _decode(path: str, offset: int, payload: bytes) -> dict[str, Any]:
    try:
        record = msgpack.unpackb(payload, raw=False)
    except (ValueError, TypeError) as exc:  # msgpack's errors are ValueError subclasses
        raise JournalCorrupt(path, offset, f"payload is not msgpack: {exc}") from exc
    if not isinstance(record, dict):
        raise JournalCorrupt(path, offset, f"payload is a {type(record).__name__}, not a map")
    return record


def _scan(path: str, data: bytes) -> tuple[list[dict[str, Any]], Torn | None]:
    """The records of one segment and its torn tail, if any (see `actors.runtime.frames`)."""
    records: list[dict[str, Any]] = []
    for item in read_frames(path, data, RECORD_MAGIC):
        if isinstance(item, Torn):
            return records, item
        records.append(_decode(path, item.offset, item.payload))
    return records, None


def _read_snapshot(path: Path) -> dict[str, Any]:
    data = read_regular(path)
    checked = check_frame(data, 0, SNAPSHOT_MAGIC)
    if isinstance(checked, str):
        raise JournalCorrupt(str(path), 0, f"snapshot: {checked}")
    if checked.end != len(data):
        raise JournalCorrupt(str(path), checked.end, "snapshot: trailing bytes")
    snap = _decode(str(path), 0, checked.payload)
    if not isinstance(snap.get("next_segment"), int) or not isinstance(snap.get("state"), dict):
        raise JournalCorrupt(str(path), 0, "snapshot: missing next_segment/state")
    return snap


def _list_segments(directory: Path) -> dict[int, Path]:
    found: dict[int, Path] = {}
    for entry in directory.iterdir():
        m = _SEGMENT_RE.fullmatch(entry.name)
        if m:
            found[int(m.group(1))] = entry
    return found


def _die_with_parent() -> None:
    """A background snapshot child must not outlive the actor (Linux PR_SET_PDEATHSIG)."""
    hardening.set_parent_death_signal()  # libc's prctl, looked up once at import


def _live_segments(directory: Path, start: int | None) -> tuple[int, list[Path]]:
    """(first live segment, live segment paths in order); checks there are no gaps."""
    segments = _list_segments(directory)
    if start is None:
        start = min(segments, default=1)
        if start != 1:
            raise JournalCorrupt(str(directory), 0, f"segments start at {start}, no snapshot")
    live = sorted(n for n in segments if n >= start)
    if live and live != list(range(start, live[-1] + 1)):
        raise JournalCorrupt(str(directory), 0, f"missing segment between {start}..{live[-1]}")
    return start, [segments[n] for n in live]


class Journal:
    """An open journal; create it with `Journal.open`. Not thread-safe."""

    def __init__(self, directory: Path, segment: int, offset: int, *, fsync: bool) -> None:
        self.directory = directory
        self.segment = segment
        self._fsync = fsync
        self._offset = offset
        self._fd = os.open(directory / segment_name(segment), os.O_WRONLY | os.O_APPEND)
        self._buffer = bytearray()
        self._pending = 0
        self._failed: OSError | None = None
        self._snap_pid: int | None = None
        self.records_since_snapshot, self.bytes_since_snapshot, self._uncovered = 0, offset, (0, 0)
        self.before_snapshot: Callable[[], None] = lambda: None  # e.g. sync the order archive
        self.after_commit: Callable[[], None] = lambda: None  # e.g. archive evicted orders
        self.after_snapshot: Callable[[], None] = lambda: None  # the last one is durable

    @classmethod
    def open(cls, directory: str | Path, *, fsync: bool = True) -> tuple[Journal, Recovery]:
        """Recover the journal in `directory` (created if missing) and open it for appends."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(path / SNAPSHOT_NAME)
        snap_path = path / SNAPSHOT_NAME
        snap = _read_snapshot(snap_path) if snap_path.exists() else None
        start, live = _live_segments(path, snap["next_segment"] if snap else None)
        for n, old in _list_segments(path).items():
            if n < start:
                old.unlink()  # covered by the snapshot: compaction interrupted by a crash
        records: list[dict[str, Any]] = []
        torn: TornTail | None = None
        offset = replayed = 0
        for i, seg in enumerate(live):
            data = read_regular(seg)
            seg_records, bad = _scan(str(seg), data)
            records.extend(seg_records)
            offset = len(data)
            replayed += len(data) if bad is None else bad.offset  # what a replay reads
            if bad is not None:
                if i != len(live) - 1:
                    raise JournalCorrupt(str(seg), bad.offset, f"sealed: {bad.detail}")
                torn = TornTail(str(seg), bad.offset, len(data) - bad.offset, bad.detail)
                _log.warning(
                    "journal_torn_tail",
                    path=torn.path,
                    offset=torn.offset,
                    dropped_bytes=torn.dropped_bytes,
                    detail=torn.detail,
                )
                with open(seg, "r+b") as fh:
                    fh.truncate(bad.offset)
                    os.fsync(fh.fileno())
                offset = bad.offset
        segment = start + len(live) - 1 if live else start
        if not live:
            _create_segment(path, segment, fsync=fsync)
        journal = cls(path, segment, offset, fsync=fsync)
        journal.records_since_snapshot, journal.bytes_since_snapshot = len(records), replayed
        state = snap["state"] if snap else None
        return journal, Recovery(state, records, torn, segment)

    @property
    def pending(self) -> int:
        """Records appended but not yet committed."""
        return self._pending

    @property
    def offset(self) -> int:
        """Durable end of the current segment."""
        return self._offset

    def fileno(self) -> int:
        """The current segment's fd (`actors.oms.journal_space` reserves space past its end)."""
        return self._fd

    def append(self, record: Mapping[str, Any]) -> None:
        """Buffer one record (encoded now, so a bad value fails here); no I/O."""
        self._check_usable()
        self._buffer += encode_record(record)
        self._pending += 1

    def commit(self, *, hook: bool = True) -> int:
        """Write and fsync everything buffered, once; returns how many records became
        durable. Acknowledge clients only after this returns. `hook=False`: the caller
        runs `after_commit` itself, later (the OMS: once the turn's sends are out)."""
        self._check_usable()
        if not self._pending:
            return 0
        data = bytes(self._buffer)
        try:
            write_all(self._fd, data)
            if self._fsync:
                os.fdatasync(self._fd)
        except OSError as exc:
            self._failed = exc
            try:
                os.ftruncate(self._fd, self._offset)
            except OSError:
                pass  # replay will drop the torn tail
            raise
        count = self._pending
        self._offset += len(data)
        self.bytes_since_snapshot += len(data)
        self.records_since_snapshot += count
        self._buffer.clear()
        self._pending = 0
        if hook:
            self.run_after_commit()
        return count

    def run_after_commit(self) -> None:
        """The `after_commit` hook; it never raises (what it guards is durable already)."""
        try:
            self.after_commit()
        except Exception:  # noqa: BLE001  # durable: a failing hook must not say otherwise
            _log.exception("journal_after_commit_failed")

    def write_snapshot(self, state: Mapping[str, Any]) -> Path:
        """Commit what is buffered, then persist `state` (which must reflect every record
        appended so far) atomically and compact: a new segment starts and the covered ones
        are deleted. Crash-safe at every step."""
        if self._snap_pid is not None:  # a slow (nice 10) child: this snapshot covers it
            os.kill(self._snap_pid, 9)  # SIGKILL (an exited one is unharmed: it exits 0)
            os.waitpid(self._snap_pid, 0)  # superseded, not failed: this one covers it
            self._snap_pid = None
        path = self._persist_snapshot(state, self._start_segment())
        self.after_snapshot()
        return path

    def write_snapshot_in_background(
        self, make_state: Callable[[], Mapping[str, Any]]
    ) -> int | None:
        """Like `write_snapshot`, but a forked child builds and writes the snapshot, so the
        caller's loop is not blocked by a large book (copy-on-write: the child sees the
        state as of the fork). Returns the child's pid, or None if one is still running.
        Call `poll_background()` each loop turn to reap it."""
        if self._snap_pid is not None:
            return None
        new_segment = self._start_segment()
        pid = os.fork()
        if pid == 0:  # the child: no sockets, no logging, never returns
            code = 1
            try:
                _die_with_parent()
                yield_cpu()  # O(book) work: on what the actors leave idle
                self._persist_snapshot(make_state(), new_segment)
                code = 0
            finally:
                os._exit(code)
        self._snap_pid = pid
        return pid

    def poll_background(self) -> int | None:
        """Reap a finished background snapshot; its exit code, or None if none finished."""
        if self._snap_pid is None:
            return None
        pid, status = os.waitpid(self._snap_pid, os.WNOHANG)
        if pid == 0:
            return None
        self._snap_pid = None
        return self._reaped(os.waitstatus_to_exitcode(status))

    def wait_background(self) -> None:
        if self._snap_pid is not None:
            _, status = os.waitpid(self._snap_pid, 0)
            self._snap_pid = None
            self._reaped(os.waitstatus_to_exitcode(status))

    def _reaped(self, code: int) -> int:
        if code == 0:
            self.after_snapshot()
        else:  # what it was to cover is still to be replayed: counted again
            _log.warning("journal_snapshot_failed", exit_code=code)
            self.records_since_snapshot += self._uncovered[0]
            self.bytes_since_snapshot += self._uncovered[1]
        return code

    def _start_segment(self) -> int:
        """Commit, then switch appends to a new segment (which the next snapshot covers from)."""
        self.before_snapshot()
        self.commit()
        new_segment = self.segment + 1
        _create_segment(self.directory, new_segment, fsync=self._fsync)
        os.ftruncate(self._fd, self._offset)  # frees the space reserved past its end, if any
        os.close(self._fd)
        self._fd = os.open(self.directory / segment_name(new_segment), os.O_WRONLY | os.O_APPEND)
        self.segment, self._offset = new_segment, 0
        self._uncovered = (self.records_since_snapshot, self.bytes_since_snapshot)
        self.records_since_snapshot = self.bytes_since_snapshot = 0
        return new_segment

    def _persist_snapshot(self, state: Mapping[str, Any], new_segment: int) -> Path:
        payload = msgpack.packb(
            {"format": 1, "next_segment": new_segment, "state": state}, use_bin_type=True
        )
        final = self.directory / SNAPSHOT_NAME
        write_atomic(final, encode_frame(payload, SNAPSHOT_MAGIC), durable=self._fsync)
        for n, old in _list_segments(self.directory).items():
            if n < new_segment:
                old.unlink()
        return final

    def close(self) -> None:
        """Close without committing (buffered records are dropped, as in a crash)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise OSError(
                self._failed.errno, f"journal unusable after a failed commit: {self._failed}"
            )
        if self._fd < 0:
            raise OSError("journal is closed")


def _create_segment(directory: Path, number: int, *, fsync: bool) -> None:
    fd = os.open(directory / segment_name(number), os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    if fsync:
        fsync_dir(directory)


def inspect(path: str | Path) -> Iterator[dict[str, Any]]:
    """Read-only walk of a journal directory, one segment file or a snapshot file.

    Yields dicts `{"file", "offset", "length", "kind", "data"}` with kind "snapshot"
    (data = the snapshot state plus `next_segment`), "record" (data = the record) or
    "torn_tail" (data = {"detail", "dropped_bytes"}). Raises JournalCorrupt where replay
    would, after yielding everything before that point. Never modifies a file.
    """
    target = Path(path)
    if target.is_dir():
        snap_path = target / SNAPSHOT_NAME
        start: int | None = None
        if snap_path.exists():
            snap = _read_snapshot(snap_path)
            start = snap["next_segment"]
            yield _snapshot_row(snap_path, snap)
        _, live = _live_segments(target, start)
        for i, seg in enumerate(live):
            yield from _inspect_segment(seg, last=i == len(live) - 1)
    elif target.name == SNAPSHOT_NAME:
        yield _snapshot_row(target, _read_snapshot(target))
    else:
        yield from _inspect_segment(target, last=True)


def _snapshot_row(path: Path, snap: dict[str, Any]) -> dict[str, Any]:
    data = {"next_segment": snap["next_segment"], **snap["state"]}
    return {"file": str(path), "offset": 0, "length": path.stat().st_size, "kind": "snapshot",
            "data": data}  # fmt: skip


def _inspect_segment(seg: Path, *, last: bool) -> Iterator[dict[str, Any]]:
    data = seg.read_bytes()
    for item in read_frames(str(seg), data, RECORD_MAGIC):
        if isinstance(item, Torn):
            if not last:
                raise JournalCorrupt(str(seg), item.offset, item.detail)
            yield {
                "file": str(seg),
                "offset": item.offset,
                "length": len(data) - item.offset,
                "kind": "torn_tail",
                "data": {"detail": item.detail, "dropped_bytes": len(data) - item.offset},
            }
            return
        yield {
            "file": str(seg),
            "offset": item.offset,
            "length": item.end - item.offset,
            "kind": "record",
            "data": _decode(str(seg), item.offset, item.payload),
        }
