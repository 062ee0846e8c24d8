"""`tradepulse kill-switch` at the CLI: a reset without a reason is a usage error, as an
intake pause without one is (exit 2, one line naming the option, nothing sent)."""

from __future__ import annotations

from pathlib import Path

import pytest

import supervisor
from tests.helpers import REPO_ROOT

CONFIG = str(REPO_ROOT / "deploy" / "config" / "demo.toml")


@pytest.mark.parametrize("argv", [["reset"], ["reset", "--reason", "  "]])
def test_a_reset_without_a_reason_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """No supervisor runs for this state dir: the command is refused before any socket is
    touched (it used to go to risk and come back `error`, exit 1, or here exit 3)."""
    code = supervisor.main(["kill-switch", *argv, "--config", CONFIG, "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err == "tradepulse kill-switch: a reset needs a reason (--reason)\n", err
