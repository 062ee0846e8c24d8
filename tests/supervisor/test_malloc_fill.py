"""The fork server takes the free chunks of its C heap before it forks (issue 16, idle)."""

from __future__ import annotations

import json
from typing import Any

from tests.helpers import run_python

# 4,000 blocks of 1,000 bytes through glibc's malloc (a bytes object over 512 bytes), every
# other one freed: ~2 MB of holes between live blocks, as an import leaves them
_HOLES = """
import json, sys
from actors.supervisor import malloc_fill
size = 1000 - sys.getsizeof(b"")
blocks = [bytes(size) for _ in range(4000)]
freed = {id(b) for b in blocks[::2]}
del blocks[::2]
"""


def _probe(body: str) -> list[Any]:
    """Run `body` in a fresh interpreter; the JSON list its last line printed."""
    done = run_python(["-c", body], timeout_s=60.0)
    assert done.returncode == 0, done.stderr
    result: list[Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_holes_are_taken_and_new_blocks_come_from_the_top() -> None:
    """After the fill the free chunks below the heap's top are gone, and blocks of the
    freed size allocated afterwards land at none of the freed addresses (at most the 7
    glibc keeps in its per-thread cache of that size)."""
    body = _HOLES + (
        "holes = malloc_fill.hole_bytes()\n"
        "taken = malloc_fill.fill_holes()\n"
        "left = malloc_fill.hole_bytes()\n"
        "new = [bytes(size) for _ in range(2000)]\n"
        "reused = sum(id(b) in freed for b in new)\n"
        "print(json.dumps([holes, taken, left, reused]))\n"
    )
    holes, taken, left, reused = _probe(body)
    assert holes >= 1_500_000
    assert taken >= holes * 0.9
    assert left < 64 * 1024
    assert reused <= 7


def test_a_second_fill_gives_the_first_ballast_back() -> None:
    """The ballast is bounded by the holes of now: filling again frees the old ballast
    first and takes the same holes again, not twice as many."""
    body = _HOLES + (
        "malloc_fill.fill_holes()\n"
        "first = len(malloc_fill._BALLAST)\n"
        "malloc_fill.fill_holes()\n"
        "print(json.dumps([first, len(malloc_fill._BALLAST), malloc_fill.hole_bytes()]))\n"
    )
    first, second, left = _probe(body)
    assert first > 1000
    assert second <= first * 1.1
    assert left < 64 * 1024


def test_preload_fills_the_c_heap_too() -> None:
    """The fork server's preload takes the C heap's holes (`_freeze_heap`): those its
    imports leave and any made before, here `_HOLES`' ~2 MB. How many the imports alone
    leave depends on the tree's bytecode cache: after a bench and a full test run they
    left none to fill in 5 runs of 5 (the test asserted on those alone), after the cache
    was deleted and written again they left some."""
    body = _HOLES + (
        "from actors.supervisor.forkserver import preload\n"
        "from actors.supervisor import malloc_fill\n"
        "preload(['risk'])\n"
        "print(json.dumps([len(malloc_fill._BALLAST), malloc_fill.hole_bytes()]))\n"
    )
    chunks, left = _probe(body)
    assert chunks > 0
    assert left < 64 * 1024
