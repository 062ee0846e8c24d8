"""A consistent read-only walk of a live OMS journal directory (`journal inspect` on a
running system).

`actors.oms.journal.inspect` reads the snapshot, then lists the segments after it: if the
OMS writes a snapshot in between, the segments the old snapshot needs are deleted and the
walk reports a healthy journal corrupt. Here every file the walk needs is opened first
(the snapshot and its live segments), then the snapshot is checked to be the same file
still: if it changed, the files are let go and the walk is tried again (`ATTEMPTS` in all,
then `JournalChanged`). Once open, a file stays readable through its descriptor even if the
OMS deletes it, so the walk streams from there whatever the OMS does.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any, Final

from actors.oms.journal import (
    SNAPSHOT_NAME,
    _inspect_segment,
    _live_segments,
    _read_snapshot,
)
from protocol.exceptions import JournalCorrupt, TradePulseError
from protocol.paths import open_regular

ATTEMPTS: Final = 5


class JournalChanged(TradePulseError):
    """The OMS wrote a snapshot during every attempt to open the journal."""


def _open(path: Path) -> int:
    """`path` opened for reading if it is a regular file; else an OSError naming it (a FIFO
    in the journal's place hung `journal inspect` for good, a directory was reported as
    '/proc/self/fd/N: Is a directory')."""
    try:
        fh = open_regular(path)
    except OSError as exc:
        if exc.filename:
            raise
        raise OSError(errno.EINVAL, str(exc), str(path)) from None
    with fh:
        return os.dup(fh.fileno())


def _fd_path(fd: int) -> Path:
    return Path(f"/proc/self/fd/{fd}")


def _same(fd: int | None, path: Path) -> bool:
    """Whether `path` is still the file open as `fd` (None: no file then, none now)."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return fd is None
    if fd is None:
        return False
    then = os.fstat(fd)
    return (then.st_dev, then.st_ino) == (now.st_dev, now.st_ino)


def _pin(directory: Path, fds: list[int]) -> tuple[dict[str, Any] | None, list[Path]] | None:
    """(the snapshot, the live segments) with every file open (descriptors in `fds`), or
    None if a snapshot was written meanwhile."""
    snap_path = directory / SNAPSHOT_NAME
    snap_fd: int | None = None
    with suppress(FileNotFoundError):
        snap_fd = _open(snap_path)
        fds.append(snap_fd)
    try:
        snap = None if snap_fd is None else _named(snap_fd, snap_path)
        _, live = _live_segments(directory, None if snap is None else snap["next_segment"])
        for seg in live:
            fds.append(_open(seg))
    except (FileNotFoundError, JournalCorrupt):
        if not _same(snap_fd, snap_path):
            return None
        raise
    return (snap, live) if _same(snap_fd, snap_path) else None


def walk(directory: Path, attempts: int = ATTEMPTS) -> Iterator[dict[str, Any]]:
    """`actors.oms.journal.inspect` of a journal directory, consistent while the OMS runs."""
    for _ in range(attempts):
        fds: list[int] = []
        try:
            pinned = _pin(directory, fds)
            if pinned is not None:
                yield from _walk_pinned(directory, pinned, fds)
                return
        finally:
            for fd in fds:
                os.close(fd)
    raise JournalChanged(
        f"{directory}: the journal changed while read (a snapshot was written): run again"
    )


def _walk_pinned(
    directory: Path, pinned: tuple[dict[str, Any] | None, list[Path]], fds: list[int]
) -> Iterator[dict[str, Any]]:
    snap, live = pinned
    seg_fds = fds[1:] if snap is not None else fds
    if snap is not None:
        snap_path = directory / SNAPSHOT_NAME
        yield {
            "file": str(snap_path),
            "offset": 0,
            "length": os.fstat(fds[0]).st_size,
            "kind": "snapshot",
            "data": {"next_segment": snap["next_segment"], **snap["state"]},
        }
    for i, (seg, fd) in enumerate(zip(live, seg_fds, strict=True)):
        try:
            for item in _inspect_segment(_fd_path(fd), last=i == len(live) - 1):
                yield item | {"file": str(seg)}
        except JournalCorrupt as exc:
            raise _renamed(exc, seg) from None


def _named(fd: int, real: Path) -> dict[str, Any]:
    """The snapshot open as `fd`; a JournalCorrupt names its real path."""
    try:
        return _read_snapshot(_fd_path(fd))
    except JournalCorrupt as exc:
        raise _renamed(exc, real) from None


def _renamed(exc: JournalCorrupt, real: Path) -> JournalCorrupt:
    detail = str(exc).split(f"corrupt at offset {exc.offset}: ", 1)[-1]
    return JournalCorrupt(str(real), exc.offset, detail)
