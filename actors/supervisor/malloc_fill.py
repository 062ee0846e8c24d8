"""Filling the free chunks of the fork server's C heap before it forks (issue 16, idle).

What `pool_fill` does for CPython's object pools, for glibc's malloc: an object over 512
bytes (a dict's table, a list's array, a big code or type object) and every C library's
own allocation come from glibc's heap, which serves a request from the best-fitting free
chunk before it cuts one from the top. The fork server's imports leave ~1 MiB of such
free chunks scattered between its live data (~550 of them); in a forked actor those pages
are shared with the fork server, so each block an actor mallocs into a hole copies a page
that holds mostly the fork server's data. The fork server takes the holes itself (ballast
chunks, kept for its life), so an actor's mallocs come from the top of the heap, packed in
pages of its own. The ballast is never written: a hole's untouched pages stay as they are.

glibc only (`mallinfo2`, glibc >= 2.33): elsewhere nothing is filled. One thread only, as
the fork server is: `mallinfo2` sums every malloc arena (a thread's own arena, its free
chunks and its top too) and `keepcost` is the main heap's top alone, so with another
thread running the count is not the main heap's and nothing is filled or counted.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

MAX_CHUNK = 64 * 1024  # under glibc's mmap threshold (128 KiB): a bigger one is its own mmap
MIN_CHUNK = 32
MAX_CHUNKS = 20_000  # a bound on the work, whatever the heap looks like
_BALLAST: list[int] = []  # addresses of the chunks taken, freed at the next fill


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _libc() -> Any:
    """glibc's malloc, free, sbrk and mallinfo2; None where this is not glibc >= 2.33 or
    where another thread runs (its arena would be counted as the main heap's)."""
    if threading.active_count() > 1:
        return None
    try:
        libc = ctypes.CDLL(None)
        mallinfo2 = libc.mallinfo2
    except (OSError, AttributeError):
        return None
    mallinfo2.restype = _MallInfo2
    mallinfo2.argtypes = []
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.restype = None
    libc.free.argtypes = [ctypes.c_void_p]
    libc.sbrk.restype = ctypes.c_void_p
    libc.sbrk.argtypes = [ctypes.c_ssize_t]
    return libc


def hole_bytes() -> int:
    """Bytes in the main heap's free chunks below its top (0 where not available: not glibc
    >= 2.33, or more than one thread running)."""
    libc = _libc()
    if libc is None:
        return 0
    info = libc.mallinfo2()
    return int(info.fordblks - info.keepcost)


def fill_holes() -> int:
    """Take the free chunks below the top of the heap, the biggest requests first (64 KiB
    down to 32 bytes, halving when a request is cut from the top chunk: glibc serves a
    request from a free chunk below it when one fits). The ballast of an earlier fill is
    given back first, so only the holes of now are held; at most the free bytes counted
    at the start are taken. Returns the bytes taken: 0, and nothing is taken, where not
    glibc >= 2.33 or with more than one thread running."""
    libc = _libc()
    if libc is None:
        return 0
    _release(libc)
    taken, size = 0, MAX_CHUNK
    budget, top = _holes_and_top(libc)
    while size >= MIN_CHUNK and taken + size <= budget and len(_BALLAST) < MAX_CHUNKS:
        address = libc.malloc(size)
        if not address:
            break
        if address + size > top:  # cut from the top chunk: no hole of this size is left
            libc.free(address)
            size //= 2
            top = _holes_and_top(libc)[1]
        else:
            _BALLAST.append(address)
            taken += size
    return taken


def _release(libc: Any) -> None:
    for address in _BALLAST:
        libc.free(address)
    _BALLAST.clear()


def _holes_and_top(libc: Any) -> tuple[int, int]:
    """The free bytes below the top chunk, and where the top chunk starts (the heap's end,
    `sbrk(0)`, less the top's size)."""
    info = libc.mallinfo2()
    return int(info.fordblks - info.keepcost), int(libc.sbrk(0)) - int(info.keepcost)
