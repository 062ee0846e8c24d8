"""A broken environment through the real CLI (issue 14, section 4): each is one stderr
line naming the problem, the documented exit code, no traceback, and `run` starts nothing.
Tricks that work as root (CI): a path under a regular file, a port held by a listening
socket."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import SUPERVISOR, make_config, run_python, to_toml

pytestmark = pytest.mark.integration


@pytest.fixture
def config(short_tmp: Path) -> Path:
    path = short_tmp / "config.toml"
    path.write_text(to_toml(make_config(venues=("simA",))))
    (short_tmp / "afile").write_text("a regular file")
    return path


@pytest.fixture
def taken_port() -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield int(sock.getsockname()[1])
    sock.close()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_python([str(SUPERVISOR), *args], env=env, timeout_s=60)


def _one_line(proc: subprocess.CompletedProcess[str], code: int, *names: str) -> str:
    """Exit `code`, exactly one stderr line naming each of `names`, no traceback."""
    assert proc.returncode == code, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def _dirs(state: Path, runtime: Path) -> list[str]:
    return ["--state-dir", str(state), "--runtime-dir", str(runtime)]


def test_run_with_the_state_dir_under_a_regular_file(config: Path, short_tmp: Path) -> None:
    state = short_tmp / "afile" / "state"
    proc = _cli("run", "--config", str(config), *_dirs(state, short_tmp / "rt"))
    _one_line(proc, 2, "system.state_dir", str(state), "Not a directory")
    assert proc.stdout == "" and not (short_tmp / "rt").exists()  # nothing started


def test_run_with_the_state_dir_a_regular_file(config: Path, short_tmp: Path) -> None:
    state = short_tmp / "afile"
    proc = _cli("run", "--config", str(config), *_dirs(state, short_tmp / "rt"))
    _one_line(proc, 2, "system.state_dir", str(state))
    assert proc.stdout == ""


def test_run_with_the_runtime_dir_under_a_regular_file(config: Path, short_tmp: Path) -> None:
    runtime = short_tmp / "afile" / "rt"
    proc = _cli("run", "--config", str(config), *_dirs(short_tmp / "state", runtime))
    _one_line(proc, 2, "system.runtime_dir", str(runtime), "Not a directory")
    assert proc.stdout == ""


def test_run_with_the_metrics_port_taken_fails_before_anything_starts(
    config: Path, short_tmp: Path, taken_port: int
) -> None:
    """Exit 2 naming metrics.port and the address, before any actor (stdout has no log
    line at all) and before a cold start archives anything."""
    state = short_tmp / "state"
    (state / "oms").mkdir(parents=True)
    (state / "oms" / "keep").write_text("journal stand-in")
    dirs = _dirs(state, short_tmp / "rt")
    proc = _cli("run", "--cold", "--config", str(config), *dirs, "--metrics-port", str(taken_port))
    _one_line(proc, 2, "metrics.port", f"127.0.0.1:{taken_port}", "in use")
    assert proc.stdout == ""
    assert (state / "oms" / "keep").read_text() == "journal stand-in"
    assert not (state / "archive").exists()


def test_control_commands_without_a_runtime_dir_say_no_supervisor(
    config: Path, short_tmp: Path
) -> None:
    """`status` and the other control commands when the runtime dir does not exist (or
    cannot: under a regular file) exit 3 with one line; `--json` prints the envelope."""
    for runtime in (short_tmp / "never-made", short_tmp / "afile" / "rt"):
        dirs = _dirs(short_tmp / "state", runtime)
        for args in (("status",), ("shutdown",), ("kill-switch", "status"), ("intake", "status")):
            proc = _cli(*args, "--config", str(config), *dirs)
            _one_line(proc, 3, "no supervisor running")
        proc = _cli("status", "--json", "--config", str(config), *dirs)
        assert proc.returncode == 3 and json.loads(proc.stdout)["status"] == "error"


def test_an_offline_command_on_a_broken_state_dir_is_one_line(
    config: Path, short_tmp: Path
) -> None:
    """`fix seq` reads the state dir itself: under a regular file, exit 1 and one line."""
    dirs = _dirs(short_tmp / "afile" / "state", short_tmp / "rt")
    proc = _cli("fix", "seq", "--venue", "simA", "--config", str(config), *dirs)
    _one_line(proc, 1, "tradepulse fix", "Not a directory")


@pytest.mark.parametrize("where", ["dir", "under_file"])
def test_a_config_path_that_cannot_be_read(short_tmp: Path, where: str) -> None:
    (short_tmp / "afile").write_text("")
    path = short_tmp if where == "dir" else short_tmp / "afile" / "config.toml"
    for cmd in ("run", "status", "preflight"):
        _one_line(_cli(cmd, "--config", str(path)), 2, "config error", str(path))


def test_run_refuses_every_missing_credential_naming_each_variable(short_tmp: Path) -> None:
    """A missing venue password no longer only warns: `run` exits 2 before starting
    anything, naming every unset variable (username and password, two venues)."""
    config = make_config(venues=("simA", "simB"))
    venues = config["venues"]
    venues[0] |= {"password_env": "TP_BE_NO_PW_A"}
    venues[1] |= {"username_env": "TP_BE_NO_USER_B", "password_env": "TP_BE_NO_PW_B"}
    path = short_tmp / "config.toml"
    path.write_text(to_toml(config))
    state = short_tmp / "state"
    proc = _cli("run", "--config", str(path), *_dirs(state, short_tmp / "rt"))
    line = _one_line(proc, 2, "venues[simA].password_env", "TP_BE_NO_PW_A")
    assert "TP_BE_NO_USER_B" in line and "TP_BE_NO_PW_B" in line
    assert proc.stdout == "" and not state.exists()


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    proc = _cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"tradepulse {version('tradepulse-live')}"
