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
before (by the day each fill was last received), older days are dropped at the first fill
of a new day and when the file is compacted; and at most `KEEP_IDS` ids in all, the oldest
received dropped first, after each batch (an id held when a batch came is a duplicate to
its end). A duplicate can only come from a FIX resend of what we had not yet acknowledged,
which is seconds to minutes old, never two days, and never more messages than a venue
keeps for resends (ours keep 10,000). The ids are in fixed arrays from the first fill
(`actors.runtime.idring.IdRing`, each tagged with its day: ~0.65 MiB, flat; the per-day
sets, deque and id strings they replace grew to ~1.5 MiB), compared exactly (a hash
collision never drops a new fill). A reopen gives each id the day of its last receipt in
the file (a venue may reuse an ExecID on a later day once the first is forgotten). A fill
whose day the clock puts before the kept days (a clock stepped back) counts as received
on the newest kept day: its id is kept, never dropped at once.

File ``fill_ledger.log`` in the FIX store directory (a cold start archives it with the
session): ``b"TPLEDG1\\n"``, then frames (magic ``TL``, `actors.runtime.frames`) whose msgpack
payload is ``["s", {"pos": {symbol: qty}, "ids": {day: [exec_id, ...]}, "unseeded": bool}]``
(a snapshot: the first record after a compaction) or ``["f", day, [[exec_id, symbol, qty],
...]]`` (fills, qty signed: buy +, sell -; no rows at the first fill batch of a day that
brought duplicates only: the day is kept, as live). A torn tail is cut; a bad frame before a valid
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
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack

from actors.runtime.durable import remove_stale_temps, write_all, write_atomic
from actors.runtime.frames import encode_frame, refuse_short_header, valid_frames
from actors.runtime.idring import IdRing
from protocol.exceptions import JournalCorrupt
from protocol.messages import ExecReport, PositionView, Side

LEDGER_NAME = "fill_ledger.log"
# the reports that move it: a fill, and a bust (150=H) of one by the LastQty it carries (the
# busted trade's, as venues send it; a bust without one, and a correction, 150=G, whose old
# quantity the ledger does not keep, leave it as it is: see docs/architecture.md)
_SIGNS = {"fill": 1, "trade_cancel": -1}
_MAGIC = b"TPLEDG1\n"
_FRAME_MAGIC = b"TL"
KEEP_DAYS = 2  # dedup ids of today and yesterday (UTC)
KEEP_IDS = 10_000  # and at most this many, newest first (~120 B each)


def _record(payload: object) -> bytes:
    return encode_frame(msgpack.packb(payload, use_bin_type=True), _FRAME_MAGIC)


def _day(now_s: float) -> str:
    return dt.datetime.fromtimestamp(now_s, dt.UTC).strftime("%Y%m%d")


def _tag(day: str) -> int:
    """A day (YYYYMMDD) as the int the id ring tags an id with (JournalCorrupt's
    ValueError for anything else, read from a file)."""
    if len(day) != 8 or not day.isdigit():
        raise ValueError(f"not a day: {day!r}")
    return int(day)


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
        self._days: set[str] = set()  # the days ids are kept for (a new day's even if none)
        self._ids = IdRing(KEEP_IDS, tagged=True)  # oldest received first, tag: its day
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
        """Apply the fills (and busts, `_SIGNS`) among `reports` not seen before; returns
        how many were new."""
        day, opened = "", False  # read at the first fill: a batch without one needs none
        rows: list[list[str]] = []
        for r in reports:
            sign = _SIGNS.get(r.kind)
            if sign is None or r.last_qty == 0 or r.side is None:
                continue
            if not day:
                (day, opened), ids, fresh = self._today(), self._ids, set[str]()
            if r.exec_id in fresh or r.exec_id in ids:
                continue
            fresh.add(r.exec_id)
            qty = sign * (r.last_qty if r.side is Side.BUY else -r.last_qty)
            self._apply(r.symbol, qty)
            rows.append([r.exec_id, r.symbol, str(qty)])
        if rows:
            # into the ring after the batch: an id held when it came is a duplicate to its end
            tag = _tag(day)
            for row in rows:
                ids.add(row[0], tag)
        if rows or opened:  # a day of duplicates only is written too: a reload keeps it
            self._buf.append(_record(["f", day, rows]))
        return len(rows)

    def sync(self) -> None:
        """Write what was added (one write) and fsync it; compact when due."""
        if self._buf:
            data = b"".join(self._buf)
            try:
                write_all(self._fd, data)
            except OSError:  # a full disk: the fills stay buffered, written by the next sync
                os.ftruncate(self._fd, self._size)  # (cleared here, a restart counted them again)
                raise
            self._buf.clear()
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
        return len(self._ids)

    def close(self) -> None:
        if self._fd >= 0:
            self.sync()
            os.close(self._fd)
            self._fd = -1

    # -- internals -------------------------------------------------------------------------

    def _today(self) -> tuple[str, bool]:
        """The day a fill received now counts for, and whether it is a new kept day (which
        prunes the days kept)."""
        day = _day(self._clock())
        if day not in self._days:
            if self._days and day not in sorted(self._days | {day})[-KEEP_DAYS:]:
                return max(self._days), False  # the clock stepped back before the kept days
            self._days.add(day)
            self._prune()
            return day, True
        return day, False

    def _apply(self, symbol: str, qty: Decimal) -> None:
        net = self.positions.get(symbol, Decimal(0)) + qty
        if net == 0:
            self.positions.pop(symbol, None)
        else:
            self.positions[symbol] = net

    def _prune(self) -> None:
        """Keep the ids of the newest KEEP_DAYS days only, in the order they came."""
        dropped = sorted(self._days)[:-KEEP_DAYS]
        if dropped:
            self._days.difference_update(dropped)
            self._refill(dict(self._ids.items()))

    def _refill(self, ids: dict[str, int]) -> None:
        """The ring holds the newest KEEP_IDS of `ids` (oldest first) whose day is kept."""
        kept = {_tag(d) for d in self._days}
        self._ids.clear()
        for exec_id, tag in ids.items():
            if tag in kept:
                self._ids.add(exec_id, tag)

    def _snapshot(self) -> dict[str, Any]:
        """Each kept day's ids in the order they came (a reload refills the ring in it, so
        the oldest are still evicted first; sorted, the newest could go first)."""
        by_day: dict[int, list[str]] = {_tag(d): [] for d in self._days}
        for exec_id, tag in self._ids.items():
            by_day[tag].append(exec_id)
        return {
            "pos": {s: str(q) for s, q in self.positions.items()},
            "ids": {d: by_day[_tag(d)] for d in sorted(self._days)},  # in receipt order
            "unseeded": self.unseeded,
        }

    def _write_snapshot(self) -> None:
        self._prune()
        write_atomic(self.path, _MAGIC + _record(["s", self._snapshot()]), durable=self._fsync)

    def _load(self) -> None:
        path, data = str(self.path), self.path.read_bytes()
        refuse_short_header(path, data, _MAGIC, "fill ledger")
        if not data.startswith(_MAGIC):
            raise JournalCorrupt(path, 0, "not a fill ledger")
        ids: dict[str, int] = {}  # exec id -> the day of its last receipt, in that order
        for item in valid_frames(self.path, data, _FRAME_MAGIC, len(_MAGIC)):
            try:
                kind, *body = msgpack.unpackb(item.payload, raw=False)
                if kind == "s":
                    snap = body[0]
                    self.positions = {s: Decimal(q) for s, q in snap["pos"].items()}
                    self._days, ids = set(snap["ids"]), {}
                    for day in sorted(self._days):
                        _received(ids, snap["ids"][day], _tag(day))
                    self.unseeded = bool(snap["unseeded"])
                elif kind == "f":
                    day, rows = body
                    self._days.add(day)
                    fills = [(exec_id, symbol, qty) for exec_id, symbol, qty in rows]
                    _received(ids, (exec_id for exec_id, _, _ in fills), _tag(day))
                    for _, symbol, qty in fills:
                        self._apply(symbol, Decimal(qty))
                else:
                    raise ValueError(f"unknown record kind {kind!r}")
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
                raise JournalCorrupt(path, item.offset, f"not a ledger record: {exc}") from None
        self._days = set(sorted(self._days)[-KEEP_DAYS:])
        self._refill(ids)


def _received(ids: dict[str, int], exec_ids: Iterable[str], tag: int) -> None:
    """`exec_ids` received on day `tag`: each one the newest, with that day."""
    for exec_id in exec_ids:
        if not isinstance(exec_id, str):
            raise TypeError(f"exec id {exec_id!r}")
        ids.pop(exec_id, None)
        ids[exec_id] = tag
