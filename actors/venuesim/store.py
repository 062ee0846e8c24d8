"""Crash-safe persistence of the simulated venue: one append-only log of transactions.

The venue is the outside world, so it must survive its own `kill -9`. Every operation's
records (see `actors.venuesim.ledger`) go into one frame, written with one `write()`
before the operation's events are handed back: page cache survives `kill -9`, and
`sync()` (fsync) is the caller's to batch for power-loss durability.

Frame: `<u32 length><u32 crc32(payload)><payload>`, payload = msgpack list of records.
A frame is all or nothing: a torn tail (short write, or a zero-filled tail after power
loss) is dropped on replay and truncated when the log is opened for writing; a frame
that fails its CRC with more data after it, one whose length runs past the end with an
intact frame after it, and a length no write of ours leaves (0 before data, over
`_MAX_FRAME`) are corruption and raise `JournalCorrupt` (docs/runbook.md "Corrupt state
files": the venue stays down).

Quiet liquidity steps are not written at once: `note_tick()` keeps only the latest and it
goes out in front of the next frame (or at `sync()` / `close()`). Losing quiet steps is
invisible (nobody traded on them) and harmless: the walk is keyed by step number, so a
restarted venue repeats the same steps from the last persisted one.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from actors.venuesim.ledger import Ledger
from actors.venuesim.model import ExecEvent
from actors.venuesim.orders import Record, dec_str
from protocol.exceptions import JournalCorrupt, StateDirLocked
from protocol.paths import read_regular

LOG_NAME = "venue.log"
LOCK_NAME = "venue.lock"
FORMAT_VERSION = 1
_HEAD = struct.Struct("<II")
_MAX_FRAME = 64 << 20

Txn = list[Record]


@dataclass(frozen=True, slots=True)
class LogScan:
    txns: list[Txn]
    valid_bytes: int  # length of the intact prefix
    torn_bytes: int  # bytes after it (a torn tail)


def read_log(path: Path) -> LogScan:
    """Every intact transaction of the log at `path` (missing file: none). A log that is
    not a regular file is an OSError: a FIFO hung `inspect`, /dev/zero filled memory."""
    try:
        data = read_regular(path)  # its OSError names the file (a FIFO in a dir of several)
    except FileNotFoundError:
        return LogScan([], 0, 0)
    txns: list[Txn] = []
    off, size = 0, len(data)
    while size - off >= _HEAD.size:
        length, crc = _HEAD.unpack_from(data, off)
        end = off + _HEAD.size + length
        if length == 0 or length > _MAX_FRAME:  # no write of ours: garbage, not a short one
            if not any(data[off:]):
                break  # zero-filled tail
            raise JournalCorrupt(str(path), off, f"bad frame length {length}")
        if end > size:
            if (later := _valid_frame_after(data, off + 1)) is not None:  # a damaged length
                raise JournalCorrupt(
                    str(path), off, f"frame of {length} bytes runs past the end of the log;"
                    f" a valid frame follows at {later}"
                )  # fmt: skip
            break  # the frame runs past the end: a short write
        payload = data[off + _HEAD.size : end]
        try:
            if zlib.crc32(payload) != crc:
                raise ValueError("crc mismatch")
            txn = msgpack.unpackb(payload, raw=False)
            if not isinstance(txn, list):
                raise ValueError("frame is not a list of records")
        except (ValueError, msgpack.UnpackException) as exc:
            if end == size:
                break  # the last frame is damaged: a torn tail
            raise JournalCorrupt(str(path), off, str(exc)) from None
        txns.append(txn)
        off = end
    return LogScan(txns, off, size - off)


def _valid_frame_after(data: bytes, start: int) -> int | None:
    """Offset of the first intact frame at or after `start` (a length that fits, its CRC,
    a msgpack list), if any: a frame whose length was damaged must not pass for a torn
    tail and take every frame behind it with it (the venue's whole book, for the first)."""
    for off in range(start, len(data) - _HEAD.size + 1):
        length, crc = _HEAD.unpack_from(data, off)
        end = off + _HEAD.size + length
        if not 0 < length <= _MAX_FRAME or end > len(data):
            continue
        payload = data[off + _HEAD.size : end]
        if zlib.crc32(payload) != crc:
            continue
        try:
            if isinstance(msgpack.unpackb(payload, raw=False), list):
                return off
        except (ValueError, msgpack.UnpackException):
            continue
    return None


class SimStore:
    """The venue's log, opened for writing by one process at a time (flock)."""

    def __init__(self, path: Path, fd: int, lock_fd: int, scan: LogScan, book_id: str) -> None:
        self.path = path
        self.book_id = book_id
        self.torn_bytes = scan.torn_bytes  # dropped from the tail at open
        self._fd = fd
        self._lock_fd = lock_fd
        self._replay: list[Txn] | None = scan.txns
        self._pending_tick: Record | None = None

    @classmethod
    def open(cls, state_dir: Path, *, book_id: str | None = None) -> SimStore:
        """Open (or create) the log in `state_dir`. `book_id` prefixes every order and exec
        id; it is chosen (random unless given) when the log is created and kept forever, so
        ids never repeat even if the state dir is wiped. Raises `StateDirLocked` if another
        process has it open."""
        state_dir.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise StateDirLocked(f"simulated venue state {state_dir} is in use") from None
        try:
            return cls._open_locked(state_dir, lock_fd, book_id)
        except BaseException:
            os.close(lock_fd)
            raise

    @classmethod
    def _open_locked(cls, state_dir: Path, lock_fd: int, book_id: str | None) -> SimStore:
        path = state_dir / LOG_NAME
        scan = read_log(path)
        if scan.txns:
            book_id = _header(path, scan.txns[0])["book"]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if scan.torn_bytes:
            os.ftruncate(fd, scan.valid_bytes)
            os.fsync(fd)
        if scan.txns:
            return cls(path, fd, lock_fd, scan, str(book_id))
        book_id = book_id or secrets.token_hex(4)
        hdr: Txn = [{"t": "hdr", "v": FORMAT_VERSION, "book": book_id}]
        store = cls(path, fd, lock_fd, LogScan([hdr], 0, 0), book_id)
        store.append(hdr)
        store.sync()
        dir_fd = os.open(state_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return store

    def replay(self) -> list[Txn]:
        """The transactions found at open, header first (handed out once)."""
        txns, self._replay = self._replay or [], None
        return txns

    def append(self, txn: Txn) -> None:
        """Write one transaction (after a pending quiet tick) as one frame."""
        if self._pending_tick is not None:
            txn = [self._pending_tick, *txn]
            self._pending_tick = None
        if txn:
            self._write(txn)

    def note_tick(self, rec: Record) -> None:
        """Remember a quiet liquidity step; only the latest is written, lazily."""
        self._pending_tick = rec

    def sync(self) -> None:
        """Flush a pending tick and fsync: everything appended so far survives power loss."""
        self.append([])
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd < 0:
            return
        self.sync()
        os.close(self._fd)
        os.close(self._lock_fd)
        self._fd = self._lock_fd = -1

    def _write(self, txn: Txn) -> None:
        payload = msgpack.packb(txn, use_bin_type=True)
        frame = memoryview(_HEAD.pack(len(payload), zlib.crc32(payload)) + payload)
        while frame:
            frame = frame[os.write(self._fd, frame) :]


def _header(path: Path, txn: Txn) -> Record:
    hdr = txn[0] if txn else {}
    if hdr.get("t") != "hdr" or hdr.get("v") != FORMAT_VERSION:
        raise JournalCorrupt(str(path), 0, f"not a venue log header: {hdr!r}")
    return hdr


def inspect(state_dir: Path) -> dict[str, Any]:
    """The venue's persisted state, read-only (safe while the venue runs or after it died):
    every order it ever received with its ClOrdID chain, status, fills and exec ids, the
    rejects that created no order, and positions per symbol. Decimals are strings. A state
    dir without a log reads as an empty venue."""
    scan = read_log(Path(state_dir) / LOG_NAME)
    ledger = Ledger({}, None)
    ledger.apply_all(scan.txns)
    out = _dump(ledger)
    out["log"] = {"frames": len(scan.txns), "torn_bytes": scan.torn_bytes}
    return out


def replay_events(state_dir: Path, after_exec_seq: int = 0) -> list[ExecEvent]:
    """Every execution report the venue produced with an exec sequence number above
    `after_exec_seq`, rebuilt exactly (same fields, same ExecIDs) from the log, read-only.
    A restarted FIX shell re-sends those its own message store never got: the engine
    persists before it returns, so reports can be persisted here but never sent."""
    scan = read_log(Path(state_dir) / LOG_NAME)
    ledger = Ledger({}, None)
    events: list[ExecEvent] = []
    for txn in scan.txns:
        for rec in txn:
            o = ledger.apply(rec)
            if rec.get("x", 0) > after_exec_seq:
                event = ledger.event(rec, o)
                if event is not None:
                    events.append(event)
    return events


def exec_seq(exec_id: str) -> int:
    """The sequence number in one of this venue's ExecIDs (`<book>-E<seq>`); 0 for "0"."""
    _, _, seq = exec_id.rpartition("-E")
    return int(seq) if seq.isdigit() else 0


def _dump(ledger: Ledger) -> dict[str, Any]:
    """Everything the venue ever received and did, JSON-serialisable (Decimals as strings)."""
    orders = []
    for o in ledger.orders.values():
        orders.append(
            {
                "order_id": o.order_id,
                "cl_ord_id": o.cl_ord_id,
                "cl_ord_ids": list(o.chain),
                "symbol": o.symbol,
                "side": o.side and o.side.value,
                "ord_type": o.ord_type and o.ord_type.value,
                "tif": o.tif and o.tif.value,
                "order_qty": str(o.order_qty),
                "price": dec_str(o.price),
                "status": o.status.order_status.value,
                "ord_status": o.status.value,
                "cum_qty": str(o.cum_qty),
                "leaves_qty": str(o.leaves_qty),
                "avg_px": str(o.avg_px),
                "text": o.text,
                "ord_rej_reason": o.rej_reason and int(o.rej_reason),
                "received_ns": o.received_ns,
                "fills": [
                    {"exec_id": ledger.exec_id(x), "qty": str(q), "px": str(p), "ts_ns": ts}
                    for x, q, p, ts in o.fills
                ],
                "execs": [{"exec_id": ledger.exec_id(x), "exec_type": t} for x, t in o.execs],
            }
        )
    return {
        "book_id": ledger.book_id,
        "last_exec_id": ledger.exec_id(ledger.last_exec) if ledger.last_exec else "",
        "last_exec_seq": ledger.last_exec,
        "step": ledger.step,
        "reference_prices": {s: str(p) for s, p in sorted(ledger.references.items())},
        "orders": orders,
        "rejects": [
            {
                "cl_ord_id": r["cl"],
                "exec_id": ledger.exec_id(r["x"]),
                "ord_rej_reason": r["why"],
                "text": r["text"],
                "ts_ns": r["ts"],
                "poss_dup": bool(r.get("pd")),  # a copy we asked for again, not a new send
            }
            for r in ledger.rejects
        ],
        "positions": {
            s: {
                "net_qty": str(p.net_qty),
                "avg_px": str(p.avg_px),
                "bought_qty": str(p.bought_qty),
                "sold_qty": str(p.sold_qty),
            }
            for s, p in ledger.positions().items()
        },
    }
