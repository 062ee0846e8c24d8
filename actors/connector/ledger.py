"""The connector's own fill ledger: net quantity per symbol from the fills in the
ExecutionReports this venue sent us, independent of the OMS (issue 11, finding 2). For a
venue that does not serve RequestForPositions (AN) it stands in for the venue's positions:
`GetPositions` is answered from it (`Positions.source = "ledger"`) and the position
heartbeat compares it with the OMS's view as it does venue positions.

Durable in the connector's durability barrier (`ConnectorActor.on_execs`): `add()` +
`sync()` (fsync) run before the exec outbox's sync, so before the adapter lets the venue's
sequence number advance past those executions. A `kill -9` at any point either left the
fills in the ledger, or the venue sends them again (FIX resend); a fill is applied once per
ExecID either way.

Bounded state: the ExecID dedup set keeps the ids of the current UTC day and the day
before (by the day each fill was received), older days are dropped at the first fill of a
new day and when the file is compacted; and at most `KEEP_IDS` ids in all, the oldest
received dropped first (memory stays flat on a busy day). A duplicate can only come from a
FIX resend of what we had not yet acknowledged, which is seconds to minutes old, never two
days, and never more messages than a venue keeps for resends (ours keep 10,000).

File ``fill_ledger.log`` in the FIX store directory (a cold start archives it with the
session): ``b"TPLEDG1\\n"``, then frames (magic ``TL``, `actors.runtime.frames`) whose msgpack
payload is ``["s", {"pos": {symbol: qty}, "ids": {day: [exec_id, ...]}, "unseeded": bool}]``
(a snapshot: the first record after a compaction) or ``["f", day, [[exec_id, symbol, qty],
...]]`` (fills, qty signed: buy +, sell -). A torn tail is cut; a bad frame before a valid
one is `JournalCorrupt`. Rewritten (snapshot only) past `compact_bytes`.

Unseeded: a ledger created where the FIX store already existed (an install that traded this
venue before the ledger existed, or switched to `serves_positions = false`) does not know
the positions taken before it. It says so (`unseeded`, kept until a cold start archives
it), and the heartbeat does not compare it (see docs/architecture.md).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack

from actors.runtime.durable import remove_stale_temps, write_all, write_atomic
from actors.runtime.frames import encode_frame, valid_frames
from protocol.exceptions import JournalCorrupt
from protocol.messages import ExecReport, PositionView, Side

LEDGER_NAME = "fill_ledger.log"
_MAGIC = b"TPLEDG1\n"
_FRAME_MAGIC = b"TL"
KEEP_DAYS = 2  # dedup ids of today and yesterday (UTC)
KEEP_IDS = 10_000  # and at most this many, newest first (~120 B each)


def _record(payload: object) -> bytes:
    return encode_frame(msgpack.packb(payload, use_bin_type=True), _FRAME_MAGIC)


def _day(now_s: float) -> str:
    return dt.datetime.fromtimestamp(now_s, dt.UTC).strftime("%Y%m%d")


class FillLedger:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        unseeded: bool = False,
        fsync: bool = True,
        compact_bytes: int = 1 << 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`unseeded`: mark a NEW ledger as not knowing earlier positions (an existing
        ledger keeps what its file says)."""
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / LEDGER_NAME
        self._fsync = fsync
        self._compact_bytes = compact_bytes
        self._clock = clock
        self.positions: dict[str, Decimal] = {}
        self._ids: dict[str, set[str]] = {}  # day -> exec ids received that day
        self._order: deque[str] = deque()  # the same ids, oldest received first
        self.unseeded = unseeded
        self._buf: list[bytes] = []
        self._unsynced = False
        remove_stale_temps(self.path)
        if self.path.exists():
            self._load()
        else:
            self._write_snapshot()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._size = os.fstat(self._fd).st_size
        # compact when the file is past compact_bytes AND twice its last snapshot: a
        # snapshot itself over compact_bytes (a day's many ExecIDs) is not rewritten at
        # every batch
        self._snapshot_size = self._size

    # -- api -----------------------------------------------------------------------------

    def add(self, reports: Iterable[ExecReport]) -> int:
        """Apply the fills among `reports` not seen before; returns how many were new."""
        day = ""  # read at the first fill: a batch without one (an order's New) needs none
        rows: list[list[str]] = []
        for r in reports:
            if r.kind != "fill" or r.last_qty == 0 or r.side is None:
                continue
            if not day:
                day = _day(self._clock())
                if day not in self._ids:
                    self._ids[day] = set()
                    self._prune()
            if self._seen(r.exec_id):
                continue
            qty = r.last_qty if r.side is Side.BUY else -r.last_qty
            self._ids[day].add(r.exec_id)
            self._order.append(r.exec_id)
            self._apply(r.symbol, qty)
            rows.append([r.exec_id, r.symbol, str(qty)])
        self._trim()
        if rows:
            self._buf.append(_record(["f", day, rows]))
        return len(rows)

    def sync(self) -> None:
        """Write what was added (one write) and fsync it; compact when due."""
        if self._buf:
            data = b"".join(self._buf)
            self._buf.clear()
            write_all(self._fd, data)
            self._size += len(data)
            self._unsynced = True
        if self._size > max(self._compact_bytes, 2 * self._snapshot_size):
            os.close(self._fd)
            self._write_snapshot()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            self._size = self._snapshot_size = os.fstat(self._fd).st_size
            self._unsynced = False
        if self._unsynced and self._fsync:
            os.fsync(self._fd)
        self._unsynced = False

    def view(self, venue: str) -> list[PositionView]:
        return [
            PositionView(venue=venue, symbol=s, qty=q) for s, q in sorted(self.positions.items())
        ]

    @property
    def dedup_ids(self) -> int:
        return sum(len(ids) for ids in self._ids.values())

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1

    # -- internals -------------------------------------------------------------------------

    def _seen(self, exec_id: str) -> bool:
        return any(exec_id in ids for ids in self._ids.values())

    def _apply(self, symbol: str, qty: Decimal) -> None:
        net = self.positions.get(symbol, Decimal(0)) + qty
        if net == 0:
            self.positions.pop(symbol, None)
        else:
            self.positions[symbol] = net

    def _prune(self) -> None:
        for day in sorted(self._ids)[:-KEEP_DAYS]:
            del self._ids[day]
        self._order = deque(i for i in self._order if self._seen(i))
        self._trim()

    def _trim(self) -> None:
        while len(self._order) > KEEP_IDS:
            old = self._order.popleft()
            for ids in self._ids.values():
                ids.discard(old)

    def _snapshot(self) -> dict[str, Any]:
        return {
            "pos": {s: str(q) for s, q in self.positions.items()},
            "ids": {d: sorted(ids) for d, ids in self._ids.items()},
            "unseeded": self.unseeded,
        }

    def _write_snapshot(self) -> None:
        self._prune()
        write_atomic(self.path, _MAGIC + _record(["s", self._snapshot()]), durable=self._fsync)

    def _load(self) -> None:
        path, data = str(self.path), self.path.read_bytes()
        if not data.startswith(_MAGIC):
            if _MAGIC.startswith(data):  # torn while being created: nothing was in it
                self._write_snapshot()
                return
            raise JournalCorrupt(path, 0, "not a fill ledger")
        for item in valid_frames(self.path, data, _FRAME_MAGIC, len(_MAGIC)):
            try:
                kind, *body = msgpack.unpackb(item.payload, raw=False)
                if kind == "s":
                    snap = body[0]
                    self.positions = {s: Decimal(q) for s, q in snap["pos"].items()}
                    self._ids = {d: set(ids) for d, ids in snap["ids"].items()}
                    self._order = deque(i for d in sorted(self._ids) for i in snap["ids"][d])
                    self.unseeded = bool(snap["unseeded"])
                elif kind == "f":
                    day, rows = body
                    for exec_id, symbol, qty in rows:
                        self._ids.setdefault(day, set()).add(exec_id)
                        self._order.append(exec_id)
                        self._apply(symbol, Decimal(qty))
                else:
                    raise ValueError(f"unknown record kind {kind!r}")
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
                raise JournalCorrupt(path, item.offset, f"not a ledger record: {exc}") from None
        self._prune()
