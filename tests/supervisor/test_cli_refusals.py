"""Operator commands under hostile arguments, in process: the documented exit code and one
line naming the problem, whatever else is wrong at the same time."""

from __future__ import annotations

from pathlib import Path

import pytest

import supervisor
from tests.helpers import REPO_ROOT

DEMO = str(REPO_ROOT / "deploy" / "config" / "demo.toml")


def test_fix_log_with_a_bad_since_is_a_usage_error_before_any_log_is_looked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fix log --since junk` of a venue without a log yet said "no FIX message log for
    venue 'simA' yet", exit 1: the bad option (exit 2, runbook) was never named."""
    argv = ["fix", "log", "--venue", "simA", "--since", "junk", "--config", DEMO]
    assert supervisor.main([*argv, "--state-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tradepulse fix: --since: 'junk' ") and err.count("\n") == 1
