"""`tradepulse intake` on the CLI side: a pause without a reason is a usage error (exit 2,
one line, no socket touched); the reply prints one row per pause and stopped venue."""

from __future__ import annotations

from pathlib import Path

import pytest

import supervisor
from actors.supervisor.commands.intake import Intake
from protocol.messages import ControlReply
from tests.helpers import REPO_ROOT

CONFIG = str(REPO_ROOT / "deploy" / "config" / "demo.toml")


@pytest.mark.parametrize("argv", [["pause"], ["pause", "--venue", "simA", "--reason", " "]])
def test_a_pause_without_a_reason_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code = supervisor.main(["intake", *argv, "--config", CONFIG, "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("tradepulse intake: ") and "a pause needs a reason" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


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
