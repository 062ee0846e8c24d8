"""`[supervisor] memory_merge`: the fork server opts the actors it forks into KSM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from actors.supervisor.memory_merge import memory_merge
from protocol.config import parse_config
from tests.helpers import REPO_ROOT, make_config, to_toml

_PROBE = """
import json, os, sys
from actors.runtime.actor import ActorArgs
from actors.supervisor import forkserver
from actors.supervisor.memory_merge import memory_merge
args = ActorArgs(actor_id="probe", kind="probe", epoch=1, config_path=sys.argv[1])
forkserver.ConfigCache(on_load=forkserver._on_config).get(args)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.write(w, json.dumps(memory_merge()).encode())
    os._exit(0)
os.close(w)
child = json.loads(os.read(r, 64))
os.waitpid(pid, 0)
print(json.dumps([memory_merge(), child]))
"""


def _merge_states(tmp_path: Path, merge: bool) -> list[bool | None]:
    path = tmp_path / "config.toml"
    path.write_text(to_toml(make_config(overrides={"supervisor": {"memory_merge": merge}})))
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    states: list[bool | None] = json.loads(done.stdout.strip().splitlines()[-1])
    return states


def test_off_by_default() -> None:
    """An operator opts in: merging costs the host's scanner and opens side channels."""
    assert parse_config(make_config()).supervisor.memory_merge is False


def test_the_fork_server_opts_its_actors_in_as_the_config_says(tmp_path: Path) -> None:
    """With `memory_merge = true` the fork server and what it forks afterwards are opted
    in (the flag is inherited across fork); with false, neither is."""
    if memory_merge() is None:
        pytest.skip("kernel without PR_GET_MEMORY_MERGE (Linux < 6.4)")
    assert _merge_states(tmp_path, merge=True) == [True, True]
    assert _merge_states(tmp_path, merge=False) == [False, False]
