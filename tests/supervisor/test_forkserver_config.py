"""The fork server loads the system config once and hands it to the actors it forks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from actors.runtime.actor import ActorArgs
from actors.supervisor.forkserver import _REPARENT_DEADLINE_S, ConfigCache
from protocol.config import SystemConfig
from tests.helpers import REPO_ROOT, make_config, to_toml


def _config(tmp_path: Path, **overrides: object) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(to_toml(make_config(venues=["simA"], overrides=overrides)))
    return path


def _args(path: Path, **kw: object) -> ActorArgs:
    return ActorArgs(actor_id="risk", kind="risk", epoch=1, config_path=str(path), **kw)  # type: ignore[arg-type]


def test_one_parse_serves_every_actor_of_the_same_file_and_overrides(tmp_path: Path) -> None:
    """The second actor gets the very object the first one got; `on_load` ran once."""
    loads: list[SystemConfig] = []
    cache = ConfigCache(on_load=loads.append)
    path = _config(tmp_path)
    first = cache.get(_args(path, state_dir=str(tmp_path / "s")))
    second = cache.get(_args(path, state_dir=str(tmp_path / "s")))
    assert first is not None
    assert second is first
    assert first.system.state_dir == str(tmp_path / "s")
    assert loads == [first]


def test_an_edited_file_or_other_overrides_are_parsed_again(tmp_path: Path) -> None:
    """A restart after an edit (or a reload) sees the new file, as an actor loading it
    itself would; different command-line overrides are a different config."""
    cache = ConfigCache()
    path = _config(tmp_path)
    before = cache.get(_args(path))
    _config(tmp_path, system={"log_level": "debug"})
    edited = cache.get(_args(path))
    other_dir = cache.get(_args(path, state_dir=str(tmp_path / "other")))
    assert before is not None and edited is not None and other_dir is not None
    assert (before.system.log_level, edited.system.log_level) == ("info", "debug")
    assert other_dir.system.state_dir == str(tmp_path / "other")
    assert other_dir is not edited


def test_a_config_that_does_not_load_is_left_to_the_actor(tmp_path: Path) -> None:
    """None for a missing or invalid file: the actor loads it itself and reports the
    `ConfigError` as before (the fork server keeps serving)."""
    cache = ConfigCache()
    assert cache.get(_args(tmp_path / "missing.toml")) is None
    bad = tmp_path / "bad.toml"
    bad.write_text("[system]\nlog_level = 'loud'\n")
    assert cache.get(_args(bad)) is None
    good = _config(tmp_path)
    assert cache.get(_args(good)) is not None
    good.write_text("not toml [")
    assert cache.get(_args(good)) is None


_PROBE = """
import ctypes, json, os, sys
from actors.runtime import process
from actors.runtime.actor import ActorArgs
from actors.supervisor import forkserver

class Probe:
    def __init__(self, args, cfg=None):
        self.args, self.cfg = args, cfg
    def run(self):
        with open(sys.argv[2], "w") as fh:
            json.dump({"cfg_given": self.cfg is not None,
                       "state_dir": self.cfg and self.cfg.system.state_dir}, fh)
        return 0

process.ACTOR_KINDS["probe"] = "__main__:Probe"
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the actor is re-parented here
args = ActorArgs(actor_id="probe", kind="probe", epoch=1, config_path=sys.argv[1],
                 state_dir=sys.argv[3], supervisor_pid=os.getpid())
r, w = os.pipe()
pid = forkserver.spawn(args, {}, os.getpid(), (r, w), forkserver.ConfigCache().get(args))
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


def test_a_forked_actor_starts_with_the_fork_servers_config(tmp_path: Path) -> None:
    """`spawn` hands the loaded config to the actor's constructor (`run_actor(args, cfg)`),
    so the actor does not parse and validate it again in its own memory (issue 16: the
    parse's pages stay shared with the fork server)."""
    path, out = _config(tmp_path), tmp_path / "probe.json"
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), str(out), str(tmp_path / "s")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0", proc.stderr
    assert json.loads(out.read_text()) == {"cfg_given": True, "state_dir": str(tmp_path / "s")}


_ORPHAN = """
import ctypes, os, sys, time
from actors.runtime.actor import ActorArgs
from actors.supervisor import forkserver

ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: the orphan comes here
gone = os.fork()  # a supervisor that died while the spawn was under way: a dead pid
if gone == 0:
    os._exit(0)
os.waitpid(gone, 0)
args = ActorArgs(actor_id="risk", kind="risk", epoch=1, config_path=sys.argv[1])
r, w = os.pipe()
pid = forkserver.spawn(args, {}, gone, (r, w))
start = time.monotonic()
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status), round(time.monotonic() - start, 3))
"""


def test_an_actor_orphaned_before_its_supervisor_adopted_it_exits_at_once(
    tmp_path: Path,
) -> None:
    """A grandchild whose supervisor died during its spawn is re-parented elsewhere (a
    subreaper, init) and never to the supervisor: it exits 71 at once, without running the
    actor, instead of lingering `_REPARENT_DEADLINE_S` (2 s) as a stray process."""
    proc = subprocess.run(
        [sys.executable, "-c", _ORPHAN, str(_config(tmp_path))],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    code, waited_s = proc.stdout.split()
    assert code == "71", proc.stdout
    assert float(waited_s) < _REPARENT_DEADLINE_S / 2, proc.stdout
