"""Crash-safe file replacement, shared by every actor that keeps state on disk.

`write_atomic` is the one way a whole state file is (re)written: the bytes go to a temp file
in the same directory (`.<name>.<pid>-<n><hex>.tmp`), are fsynced, renamed over the file, and the
directory is fsynced, so after a crash at any point the file is either the old or the new
version, never a mix. A crash mid-write leaves only a temp file, which no reader opens;
`remove_stale_temps` tidies them (at open, or after a good save).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import time
from pathlib import Path


def write_all(fd: int, data: bytes) -> None:
    """Write all of `data` to `fd` (os.write may write less than asked)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Make a rename, create or unlink in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, durable: bool = True) -> None:
    """Replace `path` with `data` all at once; `durable=False` skips both fsyncs (files
    that are rebuilt on every start anyway, and tests)."""
    path = Path(path)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


_TEMP_NUMBERS = itertools.count()
_TEMP_TRIES = 100  # as many names taken in a row: something else writes there


def _create_temp(path: Path) -> tuple[int, str]:
    """A new file beside `path` for its next version, `.<name>.<pid>-<n><hex>.tmp`, created
    exclusively (mode 0600, as `tempfile.mkstemp`'s): the pid keeps processes apart, and a
    name a crashed process of the same pid left is skipped. Not `tempfile.mkstemp`: its
    first call in a process makes and seeds a `random.Random` and runs tempfile's and the
    ABCs' code, ~100 KiB of the fork server's pages copied into every actor that saves a
    file at its start (issue 16, idle memory)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    for _ in range(_TEMP_TRIES):  # a few random bytes: names nothing else can foresee
        name = f".{path.name}.{os.getpid()}-{next(_TEMP_NUMBERS)}{os.urandom(4).hex()}.tmp"
        tmp = os.path.join(path.parent, name)
        try:
            return os.open(tmp, flags, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temp file name beside {path}")


def remove_stale_temps(path: str | os.PathLike[str], older_than_s: float = 0.0) -> None:
    """Delete temp files a crashed `write_atomic` of `path` left behind. With several
    writers of one file, pass an age: a young temp may belong to a writer still at work.
    Names are matched literally (a `[` in the name is no glob pattern); no glob, so no
    regex is compiled: in a forked actor that machinery (pathlib's glob, fnmatch, re's
    parser and compiler) unshared ~0.3 MiB of the fork server's pages (issue 16)."""
    path = Path(path)
    horizon = time.time() - older_than_s
    prefix, suffix = f".{path.name}.", ".tmp"
    try:
        with os.scandir(path.parent) as entries:
            stale = [
                e.path
                for e in entries
                if e.name.startswith(prefix)
                and e.name.endswith(suffix)
                and len(e.name) >= len(prefix) + len(suffix)
            ]
    except OSError:
        return
    for name in stale:
        with contextlib.suppress(OSError):
            if older_than_s <= 0 or os.stat(name).st_mtime < horizon:
                os.unlink(name)
