"""The connector's exec outbox: executions from the venue that the OMS has not acked yet.

Crash-safe, so a `kill -9` of the connector loses no execution: the adapter tells the
venue it has consumed an execution (FIX: persists next-in past it) only after `add()` +
`sync()` returned (see actors/connector/adapter.py, the durability barrier). After a restart
the pending executions are loaded and sent to the OMS again, in venue order.

File ``outbox.log`` (in the FIX store directory, so a cold start archives it with the
session): ``b"TPOUTB3\\n"`` then frames (`actors.runtime.frames`, magic ``TX``, the journal's
framing) whose msgpack payload is ``["x", <ExecReport as JSON-able dict>]`` (received) or
``["a", [exec_id, ...]]`` (acked by the OMS). Ack records are written without fsync: a
lost one only means the OMS sees that execution again, and it dedupes by exec id.

Format 2 (the build before ``ExecReport.ord_status`` carried our status instead of the
FIX OrdStatus code) is read, its codes mapped, and the file rewritten as format 3 at once,
so an upgrade needs no drain; format 1 is refused by name.

Replay cuts a torn tail; a bad frame followed by a valid one, or a valid frame that is
not an outbox record, is `JournalCorrupt` (nothing is cut: executions behind it would be
lost, since the venue was already told they were consumed).
The file is truncated when nothing is pending and it passed `compact_bytes`, or at a
clean `close()` (so a clean stop with `pending_execs` 0 leaves only the header: nothing
an older build must parse, e.g. an "unsent" record when rolling back), and rewritten
(temp file, fsync, rename) with only the pending records past `max_bytes`.
Exec ids acked recently (the newest `remember_acked`, in fixed arrays from the first ack:
`actors.runtime.idring.IdRing`, exact ids so a new execution is never taken for an acked
one) are remembered so a FIX resend (PossDup) of an execution the OMS already has is not
forwarded again.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import msgpack
from pydantic import ValidationError

from actors.connector.fix.mapping import ORD_STATUS_FROM_FIX
from actors.runtime.durable import remove_stale_temps, write_all, write_atomic
from actors.runtime.frames import Frame, encode_frame, refuse_short_header, valid_frames
from actors.runtime.idring import IdRing
from protocol.exceptions import JournalCorrupt
from protocol.messages import ExecReport
from protocol.paths import OUTBOX_NAME
from protocol.wire_out import Unsupported, json_dumper

_MAGIC = b"TPOUTB3\n"
_MAGIC_V2 = b"TPOUTB2\n"  # ord_status as a FIX OrdStatus (39) code
_FRAME_MAGIC = b"TX"


try:  # ExecReport's `model_dump(mode="json")` generated from its fields (~1.6 us, not ~3.3)
    _REPORT_JSON: Callable[[ExecReport], dict[str, object]] | None = json_dumper(ExecReport)
except Unsupported:  # a field the generator does not know: pydantic's way
    _REPORT_JSON = None
# one packer for every record (msgpack.packb builds one a call); empty again after an error
_PACK = msgpack.Packer(use_bin_type=True).pack


def report_json(report: ExecReport) -> dict[str, object]:
    """`report.model_dump(mode="json")` (one per execution), written by the function
    `protocol.wire_out` derives from ExecReport's fields, so a field added to it is in
    the record with no list here to keep (the fee fields were not, in the list this
    replaced, which sent every record through pydantic)."""
    if _REPORT_JSON is None:
        return report.model_dump(mode="json")
    return _REPORT_JSON(report)


def _record(payload: object) -> bytes:
    return encode_frame(_PACK(payload), _FRAME_MAGIC)


class ExecOutbox:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: bool = True,
        remember_acked: int = 20_000,
        compact_bytes: int = 256 << 10,
        max_bytes: int = 16 << 20,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / OUTBOX_NAME
        self._fsync = fsync
        self._truncate_past = max(compact_bytes, len(_MAGIC))  # nothing pending: cut past it
        self._max_bytes = max_bytes
        self.pending: OrderedDict[str, ExecReport] = OrderedDict()
        self._recent = IdRing(remember_acked)  # acked ids, the oldest forgotten first
        self._buf: list[bytes | ExecReport] = []  # a report's record is built at flush
        self._unsynced = False
        remove_stale_temps(self.path)
        if self.path.exists():
            self._load()
        else:
            write_atomic(self.path, _MAGIC)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._size = os.fstat(self._fd).st_size

    # -- api -----------------------------------------------------------------------------

    def add(self, reports: Iterable[ExecReport]) -> list[ExecReport]:
        """Keep the reports not already pending or recently acked; returns those (new)."""
        new: list[ExecReport] = []
        for report in reports:
            if report.exec_id in self.pending or report.exec_id in self._recent:
                continue
            self.pending[report.exec_id] = report
            self._buf.append(report)  # encoded by flush(): after the forward to the OMS
            new.append(report)
        return new

    def ack(self, exec_ids: Iterable[str]) -> list[str]:
        """Forget the acked executions; returns the ids that were pending."""
        done = [i for i in exec_ids if self.pending.pop(i, None) is not None]
        for exec_id in done:
            self._recent.add(exec_id)
        if done:
            self._buf.append(_record(["a", done]))
        return done

    def flush(self) -> None:
        """Write buffered records (one os.write, no fsync); compact when due."""
        if self._buf:
            data = b"".join(
                b if isinstance(b, bytes) else _record(["x", report_json(b)]) for b in self._buf
            )
            self._buf.clear()
            write_all(self._fd, data)
            self._size += len(data)
            self._unsynced = True
        if not self.pending and self._size > self._truncate_past:
            self._truncate()
        elif self._size > self._max_bytes:
            self._rewrite()

    def sync(self) -> None:
        """`flush()`, then fsync if anything was written since the last sync."""
        self.flush()
        if self._unsynced and self._fsync:
            os.fsync(self._fd)
        self._unsynced = False

    def close(self) -> None:
        """`sync()` and close; with nothing pending, the file is cut to its header first."""
        if self._fd >= 0:
            self.flush()
            if not self.pending and self._size > len(_MAGIC):
                self._truncate()
            self.sync()
            os.close(self._fd)
            self._fd = -1

    # -- internals -------------------------------------------------------------------------

    def _load(self) -> None:
        path = str(self.path)
        data = self.path.read_bytes()
        refuse_short_header(path, data, _MAGIC, "exec outbox")
        if data.startswith(_MAGIC_V2):
            self._load_frames(path, data, len(_MAGIC_V2), from_v2=True)
            self._write_pending()
            return
        if not data.startswith(_MAGIC):
            if data.startswith(_MAGIC[:6]):
                raise JournalCorrupt(
                    path,
                    0,
                    f"exec outbox format {data[6:7]!r} of an older "
                    "build: drain it with that build, or cold start",
                )
            raise JournalCorrupt(path, 0, "not an exec outbox")
        self._load_frames(path, data, len(_MAGIC), from_v2=False)

    def _load_frames(self, path: str, data: bytes, start: int, *, from_v2: bool) -> None:
        for item in valid_frames(self.path, data, _FRAME_MAGIC, start):
            self._apply(path, item, from_v2=from_v2)

    def _apply(self, path: str, frame: Frame, *, from_v2: bool = False) -> None:
        try:
            kind, body = msgpack.unpackb(frame.payload, raw=False)
            if kind == "x":
                if from_v2:
                    body = {**body, "ord_status": _status_from_v2(body.get("ord_status"))}
                report = ExecReport.model_validate(body)
                if report.exec_id not in self._recent:
                    self.pending[report.exec_id] = report
                return
            if kind == "a":
                for exec_id in body:
                    if self.pending.pop(exec_id, None) is not None:
                        self._recent.add(exec_id)
                return
            problem = f"unknown record kind {kind!r}"
        except (ValueError, TypeError, ValidationError) as exc:  # msgpack: ValueError
            problem = f"not an outbox record: {exc}"
        raise JournalCorrupt(path, frame.offset, problem)

    def _write_pending(self) -> None:
        """Replace the file (crash-safe) with the current format holding only the pending."""
        records = [_record(["x", report_json(r)]) for r in self.pending.values()]
        write_atomic(self.path, b"".join([_MAGIC, *records]))

    def _truncate(self) -> None:
        """Nothing is pending: the file is its header. Crash-safe as a lost ack record is
        (a crash before the cut leaves acked records, replayed as acked); only the acked
        ids it remembered are forgotten, and the OMS dedupes a resent one by exec id."""
        os.ftruncate(self._fd, len(_MAGIC))
        self._size = len(_MAGIC)
        self._unsynced = True

    def _rewrite(self) -> None:
        os.close(self._fd)
        self._write_pending()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._size = os.fstat(self._fd).st_size
        self._unsynced = False


def _status_from_v2(code: object) -> str | None:
    """A format-2 record's FIX OrdStatus code as our status (None: the venue said none)."""
    status = ORD_STATUS_FROM_FIX.get(str(code or "").strip().upper())
    return None if status is None else status.value
