"""The fork server fills the holes of its object pools before it forks (issue 16)."""

from __future__ import annotations

import json

from tests.helpers import run_python

_PROBE = """
import gc, json
{body}
from actors.supervisor.pool_fill import free_blocks
print(json.dumps(sum(n for size, n in free_blocks().items() if size >= 48)))
"""


def test_free_blocks_of_partly_used_pools_are_filled() -> None:
    """Holes made in the 64-byte class (every other object of 20,000 freed) are counted
    and filled: an object allocated afterwards cannot land in a page of the old pools."""
    body = (
        "from actors.supervisor.pool_fill import fill_free_blocks, free_blocks\n"
        "objs = [bytes(64 - sys.getsizeof(b'')) for _ in range(20_000)]\n"
        "del objs[::2]\n"
        "holes = free_blocks()[64]\n"
        "fill_free_blocks()\n"
        "print(json.dumps([holes, free_blocks()[64]]))\n"
    )
    done = run_python(["-c", "import json, sys\n" + body], timeout_s=60.0)
    assert done.returncode == 0, done.stderr
    holes, left = json.loads(done.stdout.strip().splitlines()[-1])
    assert holes >= 9_000
    assert left < 600  # what counting them frees (the statistics' own text and lines)


def test_preload_fills_the_holes_its_imports_left() -> None:
    """The fork server fills them before it freezes its heap (`preload`)."""
    body = (
        "from actors.supervisor.forkserver import preload\n"
        "from actors.supervisor import pool_fill\n"
        "preload(['risk'])\n"
        "print(json.dumps(len(pool_fill._BALLAST)))\n"
    )
    done = run_python(["-c", "import json\n" + body], timeout_s=60.0)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) > 500


def test_counting_free_blocks_keeps_stderr() -> None:
    """The count reads the allocator's statistics through a temporary file; what the
    process writes to stderr afterwards still reaches stderr."""
    body = (
        "import sys\n"
        "from actors.supervisor.pool_fill import fill_free_blocks\n"
        "assert fill_free_blocks() > 0\n"
        "print('after', file=sys.stderr, flush=True)\n"
    )
    done = run_python(["-c", _PROBE.format(body=body)], timeout_s=60.0)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "after\n"
