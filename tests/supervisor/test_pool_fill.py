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


def _free_after(body: str) -> int:
    done = run_python(["-c", _PROBE.format(body=body)], timeout_s=60.0)
    assert done.returncode == 0, done.stderr
    free: int = json.loads(done.stdout.strip().splitlines()[-1])
    return free


def test_preload_leaves_few_free_blocks_for_an_actor_to_unshare() -> None:
    """After the preload, the partly used pools of the classes a bytes object can take
    have a fraction of the free blocks the same imports leave behind unfilled (the rest:
    what counting them frees), so an actor's new objects go to pools of its own."""
    imports = "import actors.oms.actor, actors.connector.actor, actors.venuesim.actor\n"
    unfilled = _free_after(imports + "gc.collect()")
    filled = _free_after(
        "from actors.supervisor.forkserver import preload\n"
        "preload(['oms', 'connector', 'venuesim'])"
    )
    assert unfilled > 2_000
    assert filled < unfilled / 3


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
