"""The OMS journal's space reserve and the "journal low" state (a full disk).

The journal keeps `reserve_bytes` allocated past the end of its current segment
(`fallocate(FALLOC_FL_KEEP_SIZE)`: the file's size does not change, so replay and the
torn-tail rules are untouched). Appends into allocated blocks do not fail with ENOSPC
(checked on tmpfs and ext4), so what is in flight when the disk fills - executions,
cancels, verdicts of orders already submitted - is journalled out of the reserve.

`check()` runs after every commit: plain arithmetic, and one `fallocate` only when less
than half the reserve is left (top-ups in chunks: no syscall per order). `probe()` runs on
a timer (every `PROBE_S`): one `fstatvfs`, plus a top-up attempt while low.

The journal is *low* when a top-up fails with ENOSPC / EDQUOT (or any other error but
"not supported"), or when its filesystem has less than one more reserve free (the next
top-up would fail). While low the OMS refuses new submits and replaces that add risk with
`JOURNAL_UNAVAILABLE` and `problem` as the text; everything else goes on. It is no longer
low once a top-up succeeds and two reserves' worth are free (hysteresis: a disk hovering at
the threshold does not flap): intake reopens by itself.
Each transition is logged once (`journal_space_low` / `journal_space_restored`).

A filesystem without fallocate (EOPNOTSUPP) runs without a reserve, as before this existed
(`journal_reserve_unsupported`, logged once). If a commit still fails (the reserve used up,
EIO) the OMS exits as before; its journal keeps whatever reserve is left past the end of
the segment (a restart reuses it) and a restart that cannot top up starts low.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from collections.abc import Callable
from typing import Any, Protocol

from actors.runtime import metrics

FALLOC_FL_KEEP_SIZE = 1
PROBE_S = 1.0
_UNSUPPORTED = frozenset({errno.EOPNOTSUPP, errno.ENOSYS})

Allocate = Callable[[int, int, int], None]
FreeBytes = Callable[[int], int]


def allocate_keep_size(fd: int, offset: int, length: int) -> None:
    """Allocate `[offset, offset + length)` of `fd` without changing its size (OSError)."""
    if _fallocate()(fd, FALLOC_FL_KEEP_SIZE, offset, length) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def free_bytes(fd: int) -> int:
    """Bytes an unprivileged writer may still allocate on the filesystem of `fd`."""
    st = os.fstatvfs(fd)
    return st.f_bavail * st.f_frsize


def allocated_past_end(fd: int) -> int:
    """Bytes allocated past the end of `fd` (a reserve an earlier incarnation left)."""
    st = os.fstat(fd)
    block = st.st_blksize or 4096
    used = -(-st.st_size // block) * block
    return max(0, st.st_blocks * 512 - used)


@functools.cache
def _fallocate() -> Any:
    """libc's fallocate, looked up once (a `CDLL` per call costs every call's lookup)."""
    fallocate = ctypes.CDLL(None, use_errno=True).fallocate
    fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong]
    fallocate.restype = ctypes.c_int
    return fallocate


class JournalFile(Protocol):
    """What the reserve needs of `actors.oms.journal.Journal`."""

    @property
    def directory(self) -> Any: ...

    @property
    def segment(self) -> int: ...

    @property
    def offset(self) -> int: ...

    def fileno(self) -> int: ...


class JournalSpace:
    def __init__(
        self,
        journal: JournalFile,
        reserve_bytes: int,
        log: Any,
        *,
        allocate: Allocate = allocate_keep_size,
        free: FreeBytes = free_bytes,
    ) -> None:
        self._journal = journal
        self.reserve_bytes = reserve_bytes
        self._log = log
        self._allocate = allocate
        self._free = free
        self._segment = journal.segment
        self._end = journal.offset + _leftover(journal.fileno())  # allocated up to here
        self._supported = True
        self.problem: str | None = None  # the refusal text while low
        self.probe()  # at start: top up, or start low (never exit for it)

    @property
    def low(self) -> bool:
        return self.problem is not None

    @property
    def remaining(self) -> int:
        """Reserved bytes left past the journal's end (0 in a segment not topped up yet)."""
        if self._journal.segment != self._segment:
            return 0
        return max(0, self._end - self._journal.offset)

    def check(self) -> None:
        """After a commit (or a segment switch): top up when under half the reserve."""
        if self._supported and not self.low and self.remaining < self.reserve_bytes // 2:
            self._top_up()

    def probe(self) -> None:
        """On a timer: while low, try to top up; otherwise look at the free space."""
        if self._supported:
            full = not self.low and self.remaining >= self.reserve_bytes
            if full or self._top_up():
                self._check_free()
        metrics.JOURNAL_RESERVE_BYTES.set(self.remaining)

    def _top_up(self) -> bool:
        """Allocate a whole reserve past the end; False (and low) if that failed."""
        journal = self._journal
        try:
            self._allocate(journal.fileno(), journal.offset, self.reserve_bytes)
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                self._supported = False
                self._log.warning(
                    "journal_reserve_unsupported", path=str(journal.directory), error=str(exc)
                )
            else:
                self._set_low(exc.errno, exc.strerror or str(exc))
            return False
        self._segment, self._end = journal.segment, journal.offset + self.reserve_bytes
        return True

    def _check_free(self) -> None:
        try:
            free = self._free(self._journal.fileno())
        except OSError as exc:
            self._set_low(exc.errno, exc.strerror or str(exc))
            return
        if free < self.reserve_bytes:
            self._set_low(errno.ENOSPC, f"{free} bytes free, under one reserve")
        elif self.low and free >= 2 * self.reserve_bytes:  # hysteresis: no flapping
            self.problem = None
            metrics.JOURNAL_LOW.set(0)
            self._log.warning(
                "journal_space_restored",
                path=str(self._journal.directory),
                reserve_bytes=self.remaining,
                free_bytes=free,
            )

    def _set_low(self, code: int | None, detail: str) -> None:
        name = errno.errorcode.get(code or 0, str(code))
        problem = (
            f"OMS journal {self._journal.directory} cannot reserve space ({name}: {detail}):"
            " new orders refused until space returns"
        )
        if not self.low:
            metrics.JOURNAL_LOW.set(1)
            self._log.error(
                "journal_space_low",
                path=str(self._journal.directory),
                errno=name,
                detail=detail,
                reserve_bytes=self.remaining,
            )
        self.problem = problem


def _leftover(fd: int) -> int:
    try:
        return allocated_past_end(fd)
    except OSError:
        return 0
