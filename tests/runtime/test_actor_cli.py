"""`python -m actors` (an actor run by hand, and the exec spawn mode) under hostile
arguments: one line and exit 2, not a traceback."""

from __future__ import annotations

import pytest

from actors.__main__ import main, parse_args, to_argv
from actors.runtime.actor import ActorArgs

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


def test_a_config_that_does_not_load_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing config was a ConfigError traceback, exit 1."""
    assert main([*BASE, "--config", "/nonexistent/tradepulse.toml"]) == 2
    err = capsys.readouterr().err
    assert err == "risk: config error: config: file not found: /nonexistent/tradepulse.toml\n"


def test_the_exec_spawns_argv_round_trips() -> None:
    args = ActorArgs(actor_id="risk", kind="risk", epoch=3, config_path="c.toml",
                     extra={"seed": 7})  # fmt: skip
    assert parse_args(to_argv(args)) == args
