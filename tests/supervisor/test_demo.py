"""The `run --demo` flow's closing hint (actors/supervisor/demo.py)."""

from __future__ import annotations

from actors.supervisor.demo import done_hint


def test_the_closing_hint_names_the_config_and_dirs_the_system_was_started_with() -> None:
    """`make run CONFIG=/etc/tp/uat.toml` (or `run --demo --state-dir ...`): the commands
    the hint suggests carry that config and those dirs, not deploy/config/demo.toml, which
    would address another system or none."""
    hint = done_hint("/etc/tp/uat desk.toml", "/srv/tp state", None)
    assert "--config '/etc/tp/uat desk.toml' --state-dir '/srv/tp state')" in hint, hint
    assert "deploy/config/demo.toml" not in hint and "--runtime-dir" not in hint
    plain = done_hint("/repo/deploy/config/demo.toml", None, "/tmp/rt")
    assert "(each with --config /repo/deploy/config/demo.toml --runtime-dir /tmp/rt)" in plain
