"""The on-disk layout (protocol/paths.py) is a contract between processes, tools and
operators (docs/architecture.md, runbook): pinned here literally."""

from __future__ import annotations

from pathlib import Path

from protocol import paths

S = Path("/srv/state")
R = Path("/tmp/tp-rt")


def test_state_dir_layout() -> None:
    assert paths.oms_dir(S) == S / "oms"
    assert paths.cold_marker(S) == S / "oms" / "cold_start_pending"
    assert paths.fix_dir(S, "simA") == S / "fix" / "simA"
    assert paths.exec_outbox(S, "simA") == S / "fix" / "simA" / "outbox.log"
    assert paths.kill_switch_path(S) == S / "risk" / "kill_switch.json"
    assert paths.venue_state_dir(S, "simA") == S / "venues" / "simA"
    assert paths.venue_fix_dir(S, "simA") == S / "venues" / "simA" / "fix"
    assert paths.archive_dir(S, "20240101T000000Z") == S / "archive" / "20240101T000000Z"
    assert paths.crash_marker(S, "oms", "before_send") == S / "faults" / "oms.before_send.fired"
    assert paths.supervisor_lock(S) == S / "supervisor.lock"


def test_cold_start_archives_our_state_only() -> None:
    assert paths.own_state(S) == (S / "oms", S / "fix")
    assert all(not p.is_relative_to(S / "venues") for p in paths.own_state(S))


def test_runtime_dir_layout() -> None:
    assert paths.endpoint(R, "oms") == "ipc:///tmp/tp-rt/oms.sock"
    assert paths.socket_file(R, paths.CONTROL) == R / "control.sock"
    assert paths.ipc_file(paths.endpoint(R, paths.EVENTS)) == R / "events.sock"
    assert paths.socket_file(R, paths.RISK_EVENTS) == R / "risk-events.sock"
    assert paths.ipc_file("tcp://127.0.0.1:5555") is None
    assert paths.sim_port_file(R, "simA") == R / "venuesim.simA.port"
    assert paths.metrics_dir(R) == R / "metrics"
    assert paths.heartbeat_compared_path(R) == R / "heartbeat_compared.json"


def test_default_runtime_dir_is_short_and_per_state_dir() -> None:
    a, b = paths.default_runtime_dir(S), paths.default_runtime_dir(S / "other")
    assert a != b and a.parent == Path("/tmp") and len(str(a)) == len("/tmp/tp-") + 10
