"""Reading a FIX message log (see fix msglog) for people: `tradepulse fix log`.

It reads the files only (never the control plane), so it works whether the system runs or
not. `entries` yields what the files hold, oldest first; `follow` then keeps reading the
current file and moves on to the new one when the writer rotates. `describe` renders one
entry on one line, with field and enum names from the FIX 4.4 dictionary::

    2026-12-03T17:00:00.123Z  OUT  D NewOrderSingle  MsgSeqNum=7 ClOrdID=c-1 Symbol=AAPL
        Side=1(BUY) OrderQty=10 OrdType=2(LIMIT) Price=100.5 TimeInForce=0(DAY) ...

(one line in the output). BeginString, BodyLength, MsgType, SenderCompID, TargetCompID,
SendingTime and CheckSum are left out; `raw=True` prints the message as it was on the
wire instead, with ``|`` for SOH. A garbled frame (ignored by the session) is shown raw,
marked ``GARBLED(<reason>)``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from actors.connector.fix.dictionary import ENUMS, MSG_TYPES, TAGS
from actors.connector.fix.msglog import (
    BAD_HEADER,
    GARBLED_PREFIX,
    LOG_NAME,
    Entry,
    log_files,
    parse_line,
    utc_iso,
)
from actors.runtime.rotated import open_consistent
from actors.runtime.when import parse_when_s

_HIDDEN = frozenset({b"8", b"9", b"10", b"35", b"49", b"56", b"52"})


def parse_since(text: str, now_s: float | None = None) -> str:
    """The earliest timestamp to show, as the log writes it, from an operator's time
    argument (`actors.runtime.when`: ISO 8601 or an age like ``10m``); ValueError."""
    return utc_iso(parse_when_s(text, now_s))


def entries(directory: Path, since: str = "") -> Iterator[Entry]:
    """Every entry the log's files hold (oldest file first) stamped at or after `since`;
    every file is opened before the first is read, so a rotation meanwhile hides none."""
    handles = open_consistent(lambda: log_files(directory))
    try:
        for fh in handles:
            yield from _parse(fh.read().split(b"\n")[:-1], since)
    finally:
        for fh in handles:
            fh.close()


def follow(
    directory: Path,
    since: str = "",
    *,
    stop: Callable[[], bool] = lambda: False,
    poll_s: float = 0.2,
) -> Iterator[Entry]:
    """`entries`, then every entry written after, across rotations, until `stop()`."""
    current = directory / LOG_NAME
    fd, inode = -1, None
    handles = open_consistent(lambda: log_files(directory))  # none hidden by a rotation
    try:
        if handles and handles[-1].name == str(current):
            fd = os.dup(handles[-1].fileno())  # read on below, as it grows
            inode = os.fstat(fd).st_ino
            handles.pop().close()
        for fh in handles:
            yield from _parse(fh.read().split(b"\n")[:-1], since)
        if fd < 0:
            fd, inode = _open(current)
        tail, fd = _tail(current, fd, inode, since, stop, poll_s), -1  # it closes the fd
        yield from tail
    finally:
        for fh in handles:
            fh.close()
        if fd >= 0:  # closed before the tail began
            os.close(fd)


def _tail(
    current: Path,
    fd: int,
    inode: int | None,
    since: str,
    stop: Callable[[], bool],
    poll_s: float,
) -> Iterator[Entry]:
    """The entries of `fd` (the current file, or -1 before it exists) and of the files
    after it; the fd it holds is closed at the end."""
    pending = b""
    try:
        while True:
            data = _read_fd(fd) if fd >= 0 else b""
            if data:
                lines = (pending + data).split(b"\n")
                pending = lines.pop()
                yield from _parse(lines, since)
                continue
            if stop():
                return
            rotated = _inode(current)
            if rotated != inode and rotated is not None:  # the writer moved on: take the rest
                if fd >= 0:
                    rest = pending + _read_fd(fd)
                    yield from _parse(rest.split(b"\n"), since)
                    os.close(fd)
                fd, inode = _open(current)
                pending = b""
                continue
            time.sleep(poll_s)  # a tail polls: nothing signals a plain file's growth
    finally:
        if fd >= 0:
            os.close(fd)


def describe(entry: Entry, *, raw: bool = False) -> str:
    """One entry on one line (see the module docstring)."""
    ts = entry.ts[:23] + "Z" if len(entry.ts) >= 23 else entry.ts
    head = f"{ts}  {entry.direction:<3}"
    wire = entry.raw.decode("latin-1").replace("\x01", "|")
    if entry.garbled:
        return f"{head}  GARBLED({entry.mark[len(GARBLED_PREFIX) :]})  {wire}"
    mark = "  BAD_HEADER" if entry.mark == BAD_HEADER else ""
    if raw:
        return f"{head}{mark}  {wire}"
    pairs = [p.partition(b"=") for p in entry.raw.split(b"\x01") if p]
    msg_type = next((v.decode("latin-1") for t, _, v in pairs if t == b"35"), "?")
    name = MSG_TYPES.get(msg_type, "")
    fields = " ".join(_field(t, v) for t, _, v in pairs if t not in _HIDDEN)
    return f"{head}{mark}  {msg_type} {name}  {fields}".rstrip()


def _field(tag: bytes, value: bytes) -> str:
    text = value.decode("latin-1")
    if not tag.isdigit():
        return f"{tag.decode('latin-1')}={text}"
    number = int(tag)
    name = TAGS.get(number, str(number))
    label = ENUMS.get(number, {}).get(text)
    return f"{name}={text}({label})" if label else f"{name}={text}"


def _parse(lines: list[bytes], since: str) -> Iterator[Entry]:
    for line in lines:
        entry = parse_line(line)
        if entry is not None and entry.ts >= since:
            yield entry


def _open(path: Path) -> tuple[int, int | None]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return -1, None
    return fd, os.fstat(fd).st_ino


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _read_fd(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)
