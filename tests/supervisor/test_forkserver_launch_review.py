"""The early fork server launch (review of the warm start work): it reads the config `run`
loads (argparse's reading of argv: a unique prefix, the last of a repeated option), so it
never starts holding a credential that config names; a config it cannot read as TOML (not
UTF-8) is left to `run`'s one line and exit 2, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, make_config, to_toml


def _config(tmp_path: Path, **overrides: object) -> str:
    path = tmp_path / "config.toml"
    path.write_text(to_toml(make_config(venues=("simA",), overrides=overrides)))
    return str(path)


def test_a_config_that_is_not_utf8_fails_with_one_line_and_exit_2(tmp_path: Path) -> None:
    """A bad config fails at start with one line and exit 2, never a traceback (main's
    _read_toml says 'not UTF-8 text'); the early launch's raw read must not get there first."""
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'x = "\xff"\n')
    out = subprocess.run(
        [sys.executable, "supervisor.py", "run", "--config", str(bad),
         "--state-dir", str(tmp_path / "s"), "--runtime-dir", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "Traceback" not in out.stderr, out.stderr
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0


_PROBE = """
import json, os, sys
import supervisor
from actors.supervisor import forkserver_launch as fl
seen = []
original = fl.ForkServerProcess.__init__
def spy(self, env, expected=()):
    seen.append(sorted(env))
    original(self, env, expected)
fl.ForkServerProcess.__init__ = spy
from actors.supervisor import forkserver_fork as ff
forked = ff.ForkedServer.__init__
def spy_fork(self, expected, *rest):  # its os.environ and its environment block (/proc)
    seen.append(sorted(os.environ))
    block = open("/proc/self/environ", "rb").read().split(b"\\0")
    seen.append(sorted(item.split(b"=")[0].decode() for item in block if item))
    forked(self, expected, *rest)
ff.ForkedServer.__init__ = spy_fork
code = supervisor.main(sys.argv[1:])
print(json.dumps({"code": code, "early_envs": seen}))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--conf", "{cfg}"],  # argparse takes the unique prefix of --config
        ["run", "--config", "deploy/config/demo.toml", "--config", "{cfg}"],  # the last wins
    ],
)
def test_the_early_fork_server_never_holds_a_credential_of_the_config_run_loads(
    tmp_path: Path, argv: list[str]
) -> None:
    """The config `run` loads (argparse's reading of argv) names TP_SIMA_PW as a
    credential; the early launch read another file (`_option` knows neither prefixes nor
    repeats), so the early fork server started with the credential in its environment
    (killed at the setup, but it held it until then)."""
    import json
    import os

    venue = {"name": "simA", "username_env": "TP_SIMA_USER", "password_env": "TP_SIMA_PW"}
    cfg = _config(tmp_path, venues=[venue])
    argv = [a.format(cfg=cfg) for a in argv]
    env = {**os.environ, "TP_SIMA_USER": "u", "TP_SIMA_PW": "secret"}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv, "--state-dir", str(tmp_path / "s"),
         "--runtime-dir", str(tmp_path), "--host-group", "nosuch"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 2, out.stderr
    assert result["early_envs"]  # the fork server's environment was seen
    for names in result["early_envs"]:
        assert "TP_SIMA_PW" not in names and "TP_SIMA_USER" not in names
