"""The FIX message log of one session: every message in and out, as it was on the wire.

A diagnostic record, not state (the FIX store is the state): written by the connector for
its side of a venue (``fix/<venue>/messages/``) and by the simulator for the venue's side
(``venues/<venue>/fix/messages/``), both through `FixSession` (inbound frames as they are
cut from the stream, garbled ones included, and every outbound message as it is encoded).

File format: one line per message, fields separated by one space::

    2026-12-03T17:00:00.123456Z OUT - 8=FIX.4.4^A9=...^A35=D^A...^A10=123^A
    2026-12-03T17:00:00.125001Z IN garbled:bad_checksum 8=FIX.4.4^A...

(``^A`` is the SOH byte, kept as is). The timestamp is the UTC time the session read or
wrote the message; the mark is ``-``, ``garbled:<reason>`` (ignored by the session) or
``bad_header``. Inside the message ``\\`` is written ``\\\\``, LF ``\\n`` and CR ``\\r``, so
a line is always one message. RawData(96), Username(553), Password(554) and
NewPassword(925) values are replaced by ``***`` before anything reaches the disk.

Writes are buffered and reach the file in one ``os.write`` per `flush()` (once per loop
turn: the session's ``data_to_send()``, or after the turn's bytes are on the wire when the
caller asks for it with ``flush_log=False``); there is no fsync. A record holds the
message and its time until then: its line (time text, escapes, redaction) is made at
`flush()`, off the path of the message it records. When the current
file ``messages.log`` would pass ``max_file_bytes`` it is renamed ``messages.log.1`` (the
older ones shift up) and ``keep_files`` files are kept in all. A write that fails (disk
full) is logged once per failure streak and dropped: the log never stops the session.
"""

from __future__ import annotations

import functools
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from actors.connector.fix.events import Logger
from actors.runtime.durable import write_all
from protocol.config import MessageLogCfg

LOG_NAME = "messages.log"
IN, OUT = "IN", "OUT"
NORMAL = "-"
BAD_HEADER = "bad_header"
GARBLED_PREFIX = "garbled:"
REDACTED = b"***"
# RawData(96) (a logon's signature or token), Username(553), Password(554), NewPassword(925)
REDACTED_TAGS = frozenset({"96", "553", "554", "925"})
# (the byte as an int, the byte, its escape): `int in raw` is a memchr, while a bytes
# needle makes bytes.__contains__ raise and clear a TypeError first (it tries an int)
_ESCAPES = tuple(
    (old[0], old, new) for old, new in ((b"\\", b"\\\\"), (b"\n", b"\\n"), (b"\r", b"\\r"))
)
_UNESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_UNESCAPED = {b"n": b"\n", b"r": b"\r"}
_FLUSH_AT_BYTES = 1 << 20  # a turn that logs more than this writes early
_LINE_OVERHEAD = 40  # a line's bytes besides the message: time, direction, mark (~)


def redact(raw: bytes, tags: frozenset[str] = REDACTED_TAGS) -> bytes:
    """`raw` with the values of the fields `tags` (RawData, Username, Password and
    NewPassword by default) replaced by ``***``."""
    for needle in _needles(tags):  # a loop, not any(generator): ~2x less per message
        if raw.find(needle) != -1:  # not `needle in raw`: see _ESCAPES
            return _redact_pattern(tags).sub(lambda m: m.group(1) + b"=" + REDACTED, raw)
    return raw


@functools.cache
def _needles(tags: frozenset[str]) -> tuple[bytes, ...]:
    return tuple(b"\x01" + tag.encode() + b"=" for tag in sorted(tags))


@functools.cache
def _redact_pattern(tags: frozenset[str]) -> re.Pattern[bytes]:
    alternatives = b"|".join(sorted(tag.encode() for tag in tags))
    return re.compile(rb"(?<=\x01)(" + alternatives + rb")=[^\x01]*")


# compiled at import, in the fork server: a connector's first Logon (and a venue sim's) then
# compiles no regex of its own (~130-200 KiB of private memory each; issue 16, idle PSS)
_redact_pattern(REDACTED_TAGS)


def log_files(directory: Path) -> list[Path]:
    """The log's files that exist, oldest first (``messages.log.N`` ... ``messages.log``)."""
    rotated = []
    for path in directory.glob(LOG_NAME + ".*"):
        suffix = path.name[len(LOG_NAME) + 1 :]
        if suffix.isdigit():
            rotated.append((int(suffix), path))
    files = [p for _, p in sorted(rotated, reverse=True)]
    current = directory / LOG_NAME
    return [*files, current] if current.exists() else files


class Entry(NamedTuple):
    """One logged message."""

    ts: str  # ISO 8601 UTC, microseconds, "Z"
    direction: str  # IN or OUT
    mark: str  # NORMAL, BAD_HEADER or GARBLED_PREFIX + reason
    raw: bytes  # the message as on the wire (credentials redacted)

    @property
    def garbled(self) -> bool:
        return self.mark.startswith(GARBLED_PREFIX)


def parse_line(line: bytes) -> Entry | None:
    """The entry of one log line (without its LF); None when it is not one."""
    parts = line.split(b" ", 3)
    if len(parts) != 4 or parts[1] not in (b"IN", b"OUT"):
        return None
    raw = parts[3]
    if b"\\" in raw:
        raw = re.sub(
            rb"\\(.)", lambda m: {b"n": b"\n", b"r": b"\r"}.get(m.group(1), m.group(1)), raw
        )
    return Entry(parts[0].decode("latin-1"), parts[1].decode(), parts[2].decode("latin-1"), raw)


Record = tuple[float, str, str, bytes]  # (time, direction, mark, raw) of one message


def format_line(record: Record) -> bytes:
    """One log line: the time, the direction, the mark and the message (escaped, redacted)."""
    ts_s, direction, mark, raw = record
    for byte, old, new in _ESCAPES:
        if byte in raw:
            raw = raw.replace(old, new)
    whole = int(ts_s)  # `utc_iso`, inline: a line is made for every message
    micros = min(int((ts_s - whole) * 1_000_000), 999_999)
    return b"%s.%06dZ %s %s %s\n" % (
        _whole_seconds(whole).encode(),
        micros,
        direction.encode(),
        mark.encode("latin-1"),
        redact(raw),
    )


def format_lines(records: list[Record]) -> bytes:
    """`format_line` of each record, joined. The escapes and the redaction are looked for
    once in all the messages together (7 searches a turn, not 7 a message): a byte or
    a field found in one message is found in the whole (a field across two messages,
    only a false alarm), and then each line is made by `format_line`."""
    whole_text = b"".join([record[3] for record in records])
    for byte, _old, _new in _ESCAPES:
        if byte in whole_text:
            return b"".join(map(format_line, records))
    for needle in _needles(REDACTED_TAGS):
        if whole_text.find(needle) != -1:
            return b"".join(map(format_line, records))
    lines = []
    for ts_s, direction, mark, raw in records:  # nothing to escape or redact: as they are
        whole = int(ts_s)
        micros = min(int((ts_s - whole) * 1_000_000), 999_999)
        lines.append(
            b"%s.%06dZ %s %s %s\n"
            % (_whole_seconds_bytes(whole), micros, direction.encode(), mark.encode("latin-1"), raw)
        )
    return b"".join(lines)


@functools.lru_cache(maxsize=4)
def _whole_seconds_bytes(whole_s: int) -> bytes:
    return _whole_seconds(whole_s).encode()


def utc_iso(ts_s: float) -> str:
    """``2026-12-03T17:00:00.123456Z``."""
    whole = int(ts_s)
    micros = min(int((ts_s - whole) * 1_000_000), 999_999)
    return f"{_whole_seconds(whole)}.{micros:06d}Z"


@functools.lru_cache(maxsize=4)
def _whole_seconds(whole_s: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole_s))


class MessageLog:
    """A size-bounded, rotating, buffered log of one session's messages (see module doc)."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_file_bytes: int = 64 << 20,
        keep_files: int = 4,
        log: Logger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_file_bytes <= 0 or keep_files <= 0:
            raise ValueError("max_file_bytes and keep_files must be positive")
        self.directory = Path(directory)
        self._max_bytes = max_file_bytes
        self._keep = keep_files
        self._log = log
        self._clock = clock
        self._buf: list[Record] = []
        self._buffered = 0
        self._fd = -1
        self._size = 0
        self._failing = False

    @classmethod
    def for_venue(cls, directory: Path, cfg: MessageLogCfg, log: Logger) -> MessageLog:
        """The log of one venue's session, as `[venues.message_log]` configures it."""
        return cls(directory, max_file_bytes=cfg.max_file_bytes, keep_files=cfg.keep_files, log=log)

    def record(self, direction: str, raw: bytes, mark: str = NORMAL) -> None:
        """Buffer one message (`direction` IN or OUT) stamped now; its line is made at
        `flush()` (`format_line`)."""
        self._buf.append((self._clock(), direction, mark, raw))
        self._buffered += len(raw) + _LINE_OVERHEAD
        if self._buffered >= _FLUSH_AT_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered: one ``os.write`` (rotating first when the file is full)."""
        if not self._buf:
            return
        data = format_lines(self._buf)
        self._buf.clear()
        self._buffered = 0
        try:
            if self._fd < 0:
                self._open()
            elif self._size and self._size + len(data) > self._max_bytes:
                self._rotate()
            write_all(self._fd, data)
            self._size += len(data)
            self._failing = False
        except OSError as exc:
            if not self._failing and self._log is not None:
                self._log.warning("fix_message_log_failed", error=str(exc), dropped=len(data))
            self._failing = True

    def close(self) -> None:
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(
            self.directory / LOG_NAME, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        self._size = os.fstat(self._fd).st_size
        if self._size and os.pread(self._fd, 1, self._size - 1) != b"\n":
            write_all(self._fd, b"\n")  # a line a kill -9 cut short stays a line of its own
            self._size += 1

    def _rotate(self) -> None:
        os.close(self._fd)
        self._fd = -1
        current = self.directory / LOG_NAME
        oldest = self.directory / f"{LOG_NAME}.{self._keep - 1}"
        if self._keep == 1:
            current.unlink(missing_ok=True)
        else:
            oldest.unlink(missing_ok=True)
            for n in range(self._keep - 2, 0, -1):
                older = self.directory / f"{LOG_NAME}.{n}"
                if older.exists():
                    older.rename(self.directory / f"{LOG_NAME}.{n + 1}")
            current.rename(self.directory / f"{LOG_NAME}.1")
        self._open()
