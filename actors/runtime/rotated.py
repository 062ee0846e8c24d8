"""Opening a set of rotated files (`name.N` ... `name.1`, `name`) as one consistent set.

A writer rotates by renaming (`name` -> `name.1`, `name.1` -> `name.2`, ...). A reader that
lists the files and opens each by name later can miss one: a rotation between the listing
and the open puts another file under the name (the newest lines are then never read).
`open_consistent` opens every file of the listing at once and checks that each name still
holds the file it opened (same inode); if a rotation came in between, it lists again.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from protocol.paths import regular_opener

_ATTEMPTS = 5


def open_consistent(list_files: Callable[[], list[Path]]) -> list[BinaryIO]:
    """Open handles on the files `list_files()` names (oldest first), all open before the
    first is read: a rotation afterwards only renames them. The caller closes them;
    OSError if one cannot be opened (none is left open then)."""
    handles: list[BinaryIO] = []
    for _ in range(_ATTEMPTS):
        handles = _open_all(list_files())
        if all(_same(fh) for fh in handles) and _listed_all(list_files(), handles):
            break
        _close(handles)
        handles = []
    else:  # rotating faster than we open: take what the last listing gives
        handles = _open_all(list_files())
    seen: set[tuple[int, int]] = set()
    unique: list[BinaryIO] = []
    for fh in handles:  # a file renamed between two opens may be open twice
        st = os.fstat(fh.fileno())
        if (st.st_dev, st.st_ino) in seen:
            fh.close()
            continue
        seen.add((st.st_dev, st.st_ino))
        unique.append(fh)
    return unique


def _open_all(paths: list[Path]) -> list[BinaryIO]:
    """OSError (a directory under the name, no permission) with none left open."""
    handles: list[BinaryIO] = []
    try:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):  # rotated away since the listing
                # a FIFO (waited on for good) or a device is refused: an OSError naming it
                fh = open(path, "rb", opener=regular_opener)  # noqa: SIM115 - the caller closes it
                handles.append(fh)
    except BaseException:
        _close(handles)
        raise
    return handles


def _same(fh: BinaryIO) -> bool:
    """The name `fh` was opened by still names the file it has open."""
    try:
        st = os.stat(fh.name)
    except FileNotFoundError:
        return False
    own = os.fstat(fh.fileno())
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _listed_all(paths: list[Path], handles: list[BinaryIO]) -> bool:
    return [str(p) for p in paths] == [str(fh.name) for fh in handles]


def _close(handles: list[BinaryIO]) -> None:
    for fh in handles:
        fh.close()
