"""The ccxt connector's durable record of the orders it may have sent: persist before send.

A REST exchange has no FIX store and no resend: once `create_order` left, only the exchange
knows whether it arrived. And a client order id is no guard by itself: Binance refuses a
`newClientOrderId` equal to an OPEN order's ("Duplicate order sent."), but takes it again
as a new order once the first is filled or cancelled. So before an order is sent its intent
is written here (fsynced, one write per loop turn for all of that turn's orders), and an
order whose intent is already here when the OMS sends it again (after a connector restart)
is first looked up at the exchange by its client order id: found, its state is reported;
only "no such order" lets it go out (`actors.connector.ccxt.adapter`).

An intent also keeps what the exchange does not: our total quantity and, for the new venue
order of a replace (cancel + new), what the replaced orders filled before it
(`cum_offset`), so its executions carry the order's true cumulative quantity, and the
format of its exec ids (`id_format`, `Intent.id_scope`), fixed when the intent is made:
an intent an older build wrote has none and keeps that build's ids for life. (An older
build refuses a log with the field, `JournalCorrupt`: docs/runbook.md, rolling back.)
An order with no live intent here (finished before a restart, or placed by hand) takes
the format of when the exchange created it (`IntentLog.id_format_of`): before this build
first opened the log (`scoped_since_ms`) an older build may have reported it, unscoped.

File ``intents.log`` in the venue's connector directory: ``b"TPINTENT1\\n"``, then frames
(magic ``TI``, `actors.runtime.frames`) with a msgpack payload ``["p", intent]`` (to be
sent), ``["v", cl_ord_id, venue_order_id]`` (the exchange's id, learned), ``["d",
[cl_ord_id, ...]]`` (final at the exchange: forgotten) or ``["s", [intent, ...],
[cl_ord_id, ...], scoped_since_ms]`` (a snapshot of the live ones and the finished ids,
the first record after a compaction; an older build's has no `scoped_since_ms`, and is
rewritten with it when this build first opens it). A torn tail is cut; a bad
frame before a valid one is `JournalCorrupt`. Bounded: rewritten with the live intents only
once it passes `compact_bytes`; the live ones are the orders open at the exchange (or not
yet known final), a few thousand at most.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgpack

from actors.runtime.durable import remove_stale_temps, write_atomic
from actors.runtime.frames import encode_frame, refuse_short_header, valid_frames
from protocol.exceptions import JournalCorrupt

_MAGIC = b"TPINTENT1\n"
_FRAME_MAGIC = b"TI"
COMPACT_BYTES = 4 << 20
KEEP_FINISHED = 20_000
# the exec id format of orders created by this build (`Intent.id_format`): 1 scopes an
# order's exec ids by its symbol; 0 (an intent written by an older build, which has no
# such field) keeps the unscoped ids that build gave the OMS
ID_FORMAT = 1


@dataclass(frozen=True, slots=True)
class Intent:
    """One order we are about to send (or have sent) to the exchange."""

    cl_ord_id: str
    symbol: str
    side: str
    qty: str  # our order's total quantity (Decimal text)
    cum_offset: str = "0"  # filled by the venue orders this one replaced
    cost_offset: str = "0"  # their filled quote amount (the whole order's average price)
    orig_cl_ord_id: str = ""  # a replace: the order it replaces
    venue_order_id: str = ""
    id_format: int = ID_FORMAT  # `id_scope`; an older build's record loads as 0

    @property
    def id_scope(self) -> str:
        """What prefixes this order's venue-numbered exec ids (`mapping.exec_id_new` ...):
        its symbol, since Binance numbers orders and trades per symbol; nothing for an
        order an older build created, whose executions the OMS may hold under those ids
        already (they are re-read after a restart, and would count twice under new ids)."""
        return f"{self.symbol}:" if self.id_format >= 1 else ""

    @property
    def order_qty(self) -> Decimal:
        return Decimal(self.qty)

    @property
    def offset(self) -> Decimal:
        return Decimal(self.cum_offset)

    @property
    def cost(self) -> Decimal:
        return Decimal(self.cost_offset)


def _intent(fields: dict[str, Any]) -> Intent:
    """An intent as written: without `id_format`, an older build's, whose ids are 0's."""
    return Intent(**{"id_format": 0, **fields})


def _record(payload: list[Any]) -> bytes:
    return encode_frame(msgpack.packb(payload, use_bin_type=True), _FRAME_MAGIC)


class IntentLog:
    """`live` maps cl_ord_id -> Intent. `add`/`learn`/`done` buffer; `sync` writes and
    fsyncs the buffer (call it before sending what was added)."""

    def __init__(
        self,
        directory: Path,
        *,
        compact_bytes: int = COMPACT_BYTES,
        keep_finished: int = KEEP_FINISHED,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "intents.log"
        remove_stale_temps(self.path)  # a compaction a kill -9 cut short left its temp
        self.compact_bytes = compact_bytes
        self.keep_finished = keep_finished
        self._snapshot_bytes = 0
        self.live: dict[str, Intent] = {}
        self.finished: OrderedDict[str, None] = OrderedDict()
        self._buf: list[bytes] = []
        self._done_buf: list[bytes] = []  # "d" records: written by `sync(done=True)` only
        # epoch ms from which an order with no intent here gets scoped exec ids: 0 on a log
        # this build started; when it first opened an older build's log, then (`_load`)
        self.scoped_since_ms = 0
        if not self.path.exists() or not self._load():
            self._write_snapshot()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._size = os.fstat(self._fd).st_size

    def add(self, intent: Intent) -> None:
        self.live[intent.cl_ord_id] = intent
        self._buf.append(_record(["p", asdict(intent)]))

    def learn(self, cl_ord_id: str, venue_order_id: str) -> None:
        intent = self.live.get(cl_ord_id)
        if intent is None or intent.venue_order_id == venue_order_id:
            return
        self.live[cl_ord_id] = replace(intent, venue_order_id=venue_order_id)
        self._buf.append(_record(["v", cl_ord_id, venue_order_id]))

    def id_format_of(self, created_ms: int) -> int:
        """The exec id format (`Intent.id_format`) of an order we have no intent of, made
        by the exchange at `created_ms` (epoch ms; 0: not known). Made before this build
        first opened the log: an older build may have reported it under unscoped ids, which
        the OMS holds (read again scoped, its fills counted twice), so 0; else scoped."""
        return 0 if 0 < created_ms < self.scoped_since_ms else ID_FORMAT

    def done(self, cl_ord_id: str) -> None:
        if self.live.pop(cl_ord_id, None) is not None:
            self._finish(cl_ord_id)
            self._done_buf.append(_record(["d", [cl_ord_id]]))

    def _finish(self, cl_ord_id: str) -> None:
        self.finished[cl_ord_id] = None
        while len(self.finished) > self.keep_finished:
            self.finished.popitem(last=False)

    @property
    def dirty(self) -> bool:
        return bool(self._buf or self._done_buf)

    def sync(self, *, done: bool = True) -> None:
        """Write what was buffered, durably (one write, one fdatasync). `done=False`: the
        intents only, the finished orders' records stay buffered (the connector writes them
        once the orders' last executions are durable)."""
        parts = self._buf + (self._done_buf if done else [])
        if not parts:
            return
        self._buf = []
        if done:
            self._done_buf = []
        data = b"".join(parts)
        os.write(self._fd, data)
        os.fdatasync(self._fd)
        self._size += len(data)
        # rewritten once the log is both past `compact_bytes` and twice its last snapshot
        if self._size > self.compact_bytes and self._size > 2 * self._snapshot_bytes:
            self._compact()

    def close(self) -> None:
        """Intents written; the finished orders' records only if the connector wrote their
        executions (else they stay live, and are looked up again at the next start)."""
        self.sync(done=False)
        os.close(self._fd)

    # ------------------------------------------------------------------ file

    def _compact(self) -> None:
        os.close(self._fd)
        self._write_snapshot()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._size = os.fstat(self._fd).st_size

    def _write_snapshot(self) -> None:
        live = [asdict(i) for i in self.live.values()]
        snap = _record(["s", live, list(self.finished), self.scoped_since_ms])
        write_atomic(self.path, _MAGIC + snap)
        self._snapshot_bytes = len(_MAGIC) + len(snap)

    def _load(self) -> bool:
        """Read the log; False if an older build wrote it (no `scoped_since_ms`): this
        build's scope starts now, and the caller writes that down (a snapshot)."""
        marked = False
        path, data = str(self.path), self.path.read_bytes()
        refuse_short_header(path, data, _MAGIC, "intent log")
        if not data.startswith(_MAGIC):
            raise JournalCorrupt(path, 0, "not an intent log")
        for item in valid_frames(self.path, data, _FRAME_MAGIC, len(_MAGIC)):
            try:
                kind, *body = msgpack.unpackb(item.payload, raw=False)
                if kind == "s":
                    self.live = {i["cl_ord_id"]: _intent(i) for i in body[0]}
                    self.finished = OrderedDict.fromkeys(body[1])
                    if marked := len(body) > 2:
                        self.scoped_since_ms = int(body[2])
                elif kind == "p":
                    intent = _intent(body[0])
                    self.live[intent.cl_ord_id] = intent
                elif kind == "v":
                    cl_ord_id, vid = body
                    if cl_ord_id in self.live:
                        self.live[cl_ord_id] = replace(self.live[cl_ord_id], venue_order_id=vid)
                elif kind == "d":
                    for cl_ord_id in body[0]:
                        self.live.pop(cl_ord_id, None)
                        self._finish(cl_ord_id)
                else:
                    raise ValueError(f"unknown record kind {kind!r}")
            except (ValueError, TypeError, KeyError) as exc:
                raise JournalCorrupt(path, item.offset, f"not an intent record: {exc}") from None
        if not marked:
            self.scoped_since_ms = time.time_ns() // 1_000_000
        return marked
