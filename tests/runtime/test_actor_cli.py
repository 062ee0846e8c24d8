"""`python -m actors` (an actor run by hand, and the exec spawn mode) under hostile
arguments: one line and exit 2, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from actors.__main__ import parse_args, to_argv
from actors.runtime.actor import ActorArgs
from tests.helpers import REPO_ROOT

DEMO = str(REPO_ROOT / "deploy" / "config" / "demo.toml")
BASE = ["--kind", "risk", "--id", "risk", "--epoch", "1"]


@pytest.mark.parametrize("extra", ["{bad", "[1]", "null"])
def test_extra_that_is_no_json_object_is_a_usage_error(
    extra: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--extra '{bad'` was a JSONDecodeError traceback (and '[1]' reached the actor)."""
    with pytest.raises(SystemExit) as exc:
        parse_args([*BASE, "--config", "c.toml", "--extra", extra])
    assert exc.value.code == 2
    assert "argument --extra: not JSON" in capsys.readouterr().err


def _actor(*argv: str) -> subprocess.CompletedProcess[str]:
    """`python -m actors` in a child process: run_actor sets the umask (077), the dumpable
    flag and the parent-death signal of the process it runs in (in pytest's own, the umask
    of every later test was 077)."""
    return subprocess.run(
        [sys.executable, "-m", "actors", *BASE, *argv], capture_output=True, text=True,
        timeout=60, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, cwd=REPO_ROOT, check=False,
    )  # fmt: skip


def test_a_config_that_does_not_load_is_one_line() -> None:
    """A missing config was a ConfigError traceback, exit 1."""
    done = _actor("--config", "/nonexistent/tradepulse.toml")
    missing = "file not found: /nonexistent/tradepulse.toml"
    assert (done.returncode, done.stderr) == (2, f"risk: config error: config: {missing}\n")


def test_the_exec_spawns_argv_round_trips() -> None:
    args = ActorArgs(actor_id="risk", kind="risk", epoch=3, config_path="c.toml",
                     extra={"seed": 7})  # fmt: skip
    assert parse_args(to_argv(args)) == args


def test_a_runtime_dir_that_does_not_exist_is_one_line(short_tmp: Path) -> None:
    """Run by hand before any supervisor made `system.runtime_dir`, the actor's bind ended
    in a ZMQError traceback ('No such file or directory for ipc path'), exit 1; now one
    line naming the key, exit 2."""
    missing = short_tmp / "none" / "rt"
    done = _actor("--config", DEMO, "--state-dir", str(short_tmp / "st"),
                  "--runtime-dir", str(missing))  # fmt: skip
    assert done.returncode == 2, done.stderr
    line = "risk: config error: system.runtime_dir: No such file or directory for ipc path"
    line = f'{line} "{missing}/'
    assert done.stderr.startswith(line) and done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr and not missing.exists()
