"""The fork server's memory work, after review: its pool ballast stays bounded however
often the config is parsed again; its preload survives a closed stderr and no temp dir;
`memory_merge = true` the kernel refuses is reported (one JSON line, `memory_merge_unavailable`);
the default leaves an opt-in the process inherited (systemd's MemoryKSM=yes) alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from actors.supervisor.memory_merge import memory_merge
from tests.helpers import REPO_ROOT, make_config, to_toml


def _run(code: str, *argv: str) -> list[object]:
    done = subprocess.run(
        [sys.executable, "-c", code, *argv],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: list[object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _config(tmp_path: Path, **overrides: object) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(to_toml(make_config(venues=["simA"], overrides=overrides)))
    return path


# 1. Every config the fork server parses (each edit followed by a spawn) adds ~2,000
#    ballast blocks (~200 KiB) for the process's whole life: `_on_config` fills the holes
#    the parse and the replaced config left, and the ballast is never released.
_GROWTH = """
import json, pathlib, sys
from actors.runtime.actor import ActorArgs
from actors.supervisor import forkserver, pool_fill
forkserver.preload(["risk"])
path = pathlib.Path(sys.argv[1]); base = path.read_text()
args = ActorArgs(actor_id="risk", kind="risk", epoch=1, config_path=str(path))
cache = forkserver.ConfigCache(on_load=forkserver._on_config)
cache.get(args)
before = len(pool_fill._BALLAST)
for i in range(30):                      # 30 edits, each followed by one actor (re)start
    path.write_text(base + f"\\n# edit {i}\\n")
    assert cache.get(args) is not None
print(json.dumps([before, len(pool_fill._BALLAST)]))
"""


def test_ballast_does_not_grow_with_every_config_parsed(tmp_path: Path) -> None:
    before, after = _run(_GROWTH, str(_config(tmp_path)))
    assert isinstance(before, int) and isinstance(after, int)
    assert after - before < 10_000, f"ballast {before} -> {after} after 30 config edits"


# 2. `pool_fill.free_blocks` assumes a usable stderr and a temp dir: with fd 2 closed
#    (sys.stderr None) or no writable temp dir, the fork server dies in `preload` instead
#    of "nothing is filled" (its docstring); before the branch it started.
_NO_STDERR = """
import json, os, sys
os.close(2); sys.stderr = None           # what Python sets up when started with 2>&-
from actors.supervisor.forkserver import preload
try:
    preload(["risk"]); result = "ok"
except BaseException as exc:
    result = repr(exc)
print(json.dumps([result]))
"""

_NO_TEMPDIR = """
import json, tempfile
def no_tempdir(*a, **k):
    raise FileNotFoundError(2, "No usable temporary directory found")
tempfile.TemporaryFile = no_tempdir
from actors.supervisor.forkserver import preload
try:
    preload(["risk"]); result = "ok"
except BaseException as exc:
    result = repr(exc)
print(json.dumps([result]))
"""


def test_preload_survives_a_closed_stderr() -> None:
    assert _run(_NO_STDERR) == ["ok"]


def test_preload_survives_no_temp_dir() -> None:
    assert _run(_NO_TEMPDIR) == ["ok"]


# 3. `memory_merge = true` where the kernel refuses PR_SET_MEMORY_MERGE (< 6.4, seccomp):
#    `_on_config` drops `set_memory_merge`'s False; nothing is logged or reported.
_KSM_REFUSED = """
import io, json, contextlib, sys
from actors.runtime.actor import ActorArgs
from actors.supervisor import forkserver, memory_merge
memory_merge._prctl = lambda option, arg=0: -1   # EINVAL: a kernel without it
args = ActorArgs(actor_id="risk", kind="risk", epoch=1, config_path=sys.argv[1])
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    cfg = forkserver.ConfigCache(on_load=forkserver._on_config).get(args)
print(json.dumps([cfg is not None, out.getvalue() + err.getvalue()]))
"""


def test_memory_merge_the_kernel_refuses_is_reported(tmp_path: Path) -> None:
    loaded, said = _run(_KSM_REFUSED, str(_config(tmp_path, supervisor={"memory_merge": True})))
    assert loaded is True
    assert "memory_merge" in str(said), "memory_merge = true silently did nothing"


# 4. The default (false) is not "leave it alone": every config load calls
#    PR_SET_MEMORY_MERGE 0, which undoes an opt-in the fork server inherited (systemd's
#    MemoryKSM=yes on the unit sets the same per-process flag).
_INHERITED = """
import ctypes, json, sys
ctypes.CDLL(None).prctl(67, 1, 0, 0, 0)          # as systemd MemoryKSM=yes would
from actors.runtime.actor import ActorArgs
from actors.supervisor import forkserver
from actors.supervisor.memory_merge import memory_merge
args = ActorArgs(actor_id="risk", kind="risk", epoch=1, config_path=sys.argv[1])
before = memory_merge()
forkserver.ConfigCache(on_load=forkserver._on_config).get(args)
print(json.dumps([before, memory_merge()]))
"""


def test_default_off_leaves_an_inherited_opt_in_alone(tmp_path: Path) -> None:
    if memory_merge() is None:
        pytest.skip("kernel without PR_GET_MEMORY_MERGE")
    assert _run(_INHERITED, str(_config(tmp_path))) == [True, True]
