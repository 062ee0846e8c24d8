"""`tradepulse preflight` through the real CLI (a subprocess), before a session and
against a running system: the table, `--json`, the exit codes, and that it changes
nothing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import SUPERVISOR, SystemUnderTest, make_config, run_python, to_toml

pytestmark = pytest.mark.integration


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    held: list[socket.socket] = []
    yield held
    for sock in held:
        sock.close()


def _port(held: list[socket.socket], *, listen: bool) -> int:
    """A loopback port held for the test: listening (a venue, or a taken metrics port) or
    only bound (a connect to it is refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    if listen:
        sock.listen(8)
    held.append(sock)
    return int(sock.getsockname()[1])


def _preflight(
    root: Path, config: dict[str, object], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    path = root / "config.toml"
    path.write_text(to_toml(config))
    dirs = ["--state-dir", str(root / "state"), "--runtime-dir", str(root / "rt")]
    argv = [str(SUPERVISOR), "preflight", "--config", str(path), *dirs, *args]
    return run_python(argv, env=env, timeout_s=60)


def _rows(stdout: str) -> dict[str, tuple[str, str]]:
    rows = {}
    for line in stdout.splitlines()[1:]:
        if not line.strip():
            break
        name, status, detail = line.split(None, 2)
        rows[name] = (status, detail)
    return rows


def test_all_pass_before_a_session_and_nothing_is_created(
    short_tmp: Path, sockets: list[socket.socket]
) -> None:
    """A reachable venue with its credentials set and a simulated one: every row PASS (the
    simulator SKIP), exit 0; neither dir is created; `--json` is the one envelope."""
    venue_port = _port(sockets, listen=True)
    config = make_config(venues=("simA",))
    config["venues"].append(  # type: ignore[attr-defined]
        {"name": "real", "port": venue_port, "username_env": "TP_PF_U", "password_env": "TP_PF_P"}
    )
    env = {**os.environ, "TP_PF_U": "trader", "TP_PF_P": "pw-never-printed"}
    proc = _preflight(short_tmp, config, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = _rows(proc.stdout)
    assert rows["venue:simA"][0] == "SKIP" and "embedded simulator" in rows["venue:simA"][1]
    assert rows["venue:real"][0] == "PASS" and f"127.0.0.1:{venue_port}" in rows["venue:real"][1]
    assert rows["credentials:real"] == ("PASS", "TP_PF_U, TP_PF_P set")
    expected = {"config", "tls", "state_dir", "supervisor", "runtime_dir", "metrics_port"}
    assert expected | {"disk", "kill_switch"} <= set(rows)
    assert all(s in ("PASS", "SKIP") for s, _ in rows.values()), rows
    assert proc.stdout.splitlines()[-1].startswith("preflight passed")
    assert "pw-never-printed" not in proc.stdout + proc.stderr
    assert not (short_tmp / "state").exists() and not (short_tmp / "rt").exists()

    as_json = _preflight(short_tmp, config, "--json", env=env)
    assert as_json.returncode == 0
    reply = json.loads(as_json.stdout)
    assert reply["status"] == "ok" and reply["reason"].startswith("preflight passed")
    assert {c["name"]: c["status"] for c in reply["data"]["checks"]}["venue:real"] == "PASS"


def test_failures_are_all_listed_with_exit_1(short_tmp: Path, sockets: list[socket.socket]) -> None:
    """Two unset credential variables, the metrics port taken, a venue refusing, a state
    dir under a regular file: each is its own FAIL row naming the problem, exit 1."""
    metrics_port, refused = _port(sockets, listen=True), _port(sockets, listen=False)
    config = make_config(venues=(), overrides={"metrics": {"port": metrics_port}})
    config["venues"] = [
        {
            "name": "real",
            "port": refused,
            "username_env": "TP_PF_NO_U",
            "password_env": "TP_PF_NO_P",
        }
    ]
    (short_tmp / "afile").write_text("")
    path = short_tmp / "config.toml"
    path.write_text(to_toml(config))
    argv = [str(SUPERVISOR), "preflight", "--config", str(path), "--json"]
    argv += [
        "--state-dir",
        str(short_tmp / "afile" / "state"),
        "--runtime-dir",
        str(short_tmp / "rt"),
    ]
    proc = run_python(argv, timeout_s=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    reply = json.loads(proc.stdout)
    assert reply["status"] == "error"
    checks = {c["name"]: (c["status"], c["detail"]) for c in reply["data"]["checks"]}
    assert checks["credentials:real"][0] == "FAIL"
    assert "TP_PF_NO_U" in checks["credentials:real"][1]
    assert "TP_PF_NO_P" in checks["credentials:real"][1]
    assert checks["metrics_port"][0] == "FAIL" and str(metrics_port) in checks["metrics_port"][1]
    assert checks["venue:real"] == ("FAIL", f"127.0.0.1:{refused}: connection refused")
    assert checks["state_dir"][0] == "FAIL" and "afile is not a directory" in checks["state_dir"][1]
    assert checks["runtime_dir"][0] == "PASS"
    assert reply["reason"].startswith("preflight FAILED: 4 of")


def test_an_invalid_config_is_one_line_and_exit_2(short_tmp: Path) -> None:
    config = make_config(venues=("simA",), overrides={"oms": {"no_such_key": 1}})
    proc = _preflight(short_tmp, config)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout == "" and proc.stderr.count("\n") == 1
    assert "oms.no_such_key" in proc.stderr and "Traceback" not in proc.stderr


def test_against_a_running_system_the_supervisor_fails_and_the_switch_warns(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Preflight is for before a session: with a supervisor running on the state dir it
    FAILs naming its pid (exit 1), and an ENGAGED kill-switch is a WARN with its reason;
    the running system is untouched (same pids, still answering)."""
    sut = start_system(venues=("simA",))
    pids = sut.pids()
    engaged = sut.cli("kill-switch", "engage", "--reason", "desk: stale prices")
    assert engaged.returncode == 0, engaged.stderr
    proc = sut.cli("preflight")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = _rows(proc.stdout)
    assert rows["supervisor"][0] == "FAIL"
    assert f"pid {sut.proc.pid}" in rows["supervisor"][1]  # type: ignore[union-attr]
    assert rows["kill_switch"][0] == "WARN" and "desk: stale prices" in rows["kill_switch"][1]
    assert rows["runtime_dir"][0] == "PASS"  # its own, private runtime dir
    assert sut.pids() == pids
