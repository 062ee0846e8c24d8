"""`tradepulse intake` at the CLI and the supervisor: a pause without a reason is a usage
error (exit 2, one line, no socket touched); the reply prints one row per pause and
stopped venue; while the OMS has no process the supervisor writes the pause file the next
OMS loads, and while it starts the command fails (it may have read the file already)."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

import supervisor
from actors.oms.intake_state import IntakeGate, load_pauses
from actors.supervisor.commands.intake import Intake
from actors.supervisor.restart_policy import ChildState
from protocol import commands as wire
from protocol.messages import ControlReply, ErrorCode
from protocol.paths import intake_state_path
from tests.helpers import REPO_ROOT

CONFIG = str(REPO_ROOT / "deploy" / "config" / "demo.toml")


@pytest.mark.parametrize("argv", [["pause"], ["pause", "--venue", "simA", "--reason", " "]])
def test_a_pause_without_a_reason_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code = supervisor.main(["intake", *argv, "--config", CONFIG, "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    # the reason, not pydantic's wording: it said 'intake: intake: Value error, a pause ...'
    assert err == "tradepulse intake: a pause needs a reason (--reason)\n", err


def test_the_reply_prints_one_row_per_pause() -> None:
    data = {
        "intake_pauses": {
            "global": {"reason": "lunch", "since": 0.0, "by": None},
            "venues": {"simA": {"reason": "review", "since": 60.0, "by": None}},
            "stopped": {"simB": "maintenance"},
        }
    }
    text = Intake().format(ControlReply(status="ok", reason="intake paused: ...", data=data))
    lines = text.splitlines()
    assert lines[0] == "ok: intake paused: ..."
    assert lines[1].split() == ["SCOPE", "SINCE", "(UTC)", "REASON"]
    assert lines[2].split() == ["global", "1970-01-01", "00:00:00", "lunch"]
    assert lines[3].split() == ["simA", "1970-01-01", "00:01:00", "review"]
    assert lines[4].split()[:2] == ["simB", "-"] and lines[4].endswith(
        "connector stopped by an operator: maintenance"
    )


def test_a_reply_without_pauses_is_one_line() -> None:
    reply = ControlReply(
        status="ok",
        reason="intake open: no operator pause",
        data={"intake_pauses": {"global": None, "venues": {}, "stopped": {}}},
    )
    assert Intake().format(reply) == "ok: intake open: no operator pause"


class _Host:
    """The supervisor as `intake` sees it while the OMS is in `oms_state`."""

    def __init__(self, state_path: Path, oms_state: ChildState) -> None:
        self.state_path = state_path
        self.oms_state = oms_state

    def actor_state(self, actor: str) -> ChildState | None:
        return self.oms_state if actor == "oms" else ChildState.RUNNING

    def actor_ids(self) -> list[str]:
        return ["venuesim.simA", "risk", "oms", "connector.simA", "connector.simB", "heartbeat"]


def _execute(host: _Host, **args: str) -> ControlReply:
    return Intake().execute(wire.Intake(**args), host)  # type: ignore[arg-type]


def _next_oms(state_dir: Path) -> IntakeGate:
    return IntakeGate(state_dir, state_dir / "stops.json", ["simA", "simB"], structlog.get_logger())


@pytest.mark.parametrize("oms_state", [ChildState.BACKOFF, ChildState.DOWN, ChildState.STOPPED])
def test_without_an_oms_process_the_supervisor_writes_the_pause_for_the_next_oms(
    tmp_path: Path, oms_state: ChildState
) -> None:
    host = _Host(tmp_path, oms_state)
    reply = _execute(host, action="pause", venue="simB", reason="venue incident")
    assert reply.status == "ok" and "simB paused (venue incident)" in (reply.reason or "")
    assert "next start" in (reply.reason or "")
    refusal = _next_oms(tmp_path).refusal("simB")
    assert refusal == (
        ErrorCode.INTAKE_PAUSED,
        "intake for simB is paused by an operator: venue incident",
    )
    assert _execute(host, action="status").status == "ok"
    assert _execute(host, action="pause", venue="nope", reason="x").status == "error"
    assert _execute(host, action="resume", venue="simB").status == "ok"
    assert _next_oms(tmp_path).refusal("simB") is None


@pytest.mark.parametrize("oms_state", [ChildState.STARTING, ChildState.STOPPING])
def test_while_the_oms_starts_or_stops_the_command_fails_and_writes_nothing(
    tmp_path: Path, oms_state: ChildState
) -> None:
    reply = _execute(_Host(tmp_path, oms_state), action="pause", reason="x")
    assert reply.status == "error" and "oms is not running" in (reply.reason or "")
    assert not intake_state_path(tmp_path).exists()


def test_offline_a_venue_pause_keeps_an_unreadable_files_global_pause(tmp_path: Path) -> None:
    """Fail closed survives the supervisor's write: only a global resume lifts it."""
    intake_state_path(tmp_path).write_bytes(b"{torn")
    host = _Host(tmp_path, ChildState.BACKOFF)
    assert _execute(host, action="pause", venue="simA", reason="x").status == "ok"
    gate = _next_oms(tmp_path)
    assert gate.globally_paused and "unreadable" in (gate.refusal("simB") or ("", ""))[1]
    assert _execute(host, action="resume").status == "ok"
    gate = _next_oms(tmp_path)
    assert not gate.globally_paused and gate.refusal("simA") is not None


def test_offline_the_pause_records_the_operator_and_keeps_an_unreadable_file(
    tmp_path: Path,
) -> None:
    """The supervisor's offline write records who paused (the control plane's operator, as
    the OMS does) and keeps an unreadable file aside (`.corrupt.<ts>`) before replacing it."""
    intake_state_path(tmp_path).write_bytes(b"{torn")
    host = _Host(tmp_path, ChildState.DOWN)
    alice = wire.OperatorId(uid=1000, user="alice", pid=77)
    command = wire.Intake(action="pause", venue="simA", reason="venue incident")
    reply = Intake().execute_by(command, host, alice)  # type: ignore[arg-type]
    assert reply.status == "ok", reply
    pauses, problem = load_pauses(intake_state_path(tmp_path))
    assert problem is None and pauses.venues["simA"].by == "alice (uid 1000, pid 77)"
    [aside] = tmp_path.glob("intake.json.corrupt.*")
    assert aside.read_bytes() == b"{torn"
