"""The automatic bundle's writer process as the supervisor runs it (`PostmortemWatch`): it
gets the running config, not the file on disk, and a writer that dies without a word is
still reported, with its exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from actors.risk import killswitch
from actors.supervisor import postmortem_watch
from actors.supervisor.postmortem_watch import PostmortemWatch, read_config_dump, write_config_dump
from protocol import paths
from protocol.config import SystemConfig
from protocol.exceptions import ConfigError
from tests.helpers import eventually


def _cfg(tmp_path: Path) -> SystemConfig:
    return SystemConfig.model_validate(
        {
            "system": {"state_dir": str(tmp_path / "s"), "runtime_dir": str(tmp_path / "r")},
            "venues": [{"name": "simA", "dialect": {"logon_fields": {"96": "x"}}}],
            "logging": {"postmortem_delay_s": 0.0},
        }
    )


def test_the_config_dump_is_private_round_trips_and_is_removed_once_read(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    dump = write_config_dump(cfg, tmp_path / "pm" / ".config-1.json")
    assert dump.stat().st_mode & 0o777 == 0o600 and dump.parent.stat().st_mode & 0o777 == 0o700
    assert read_config_dump(dump) == cfg
    assert not dump.exists()
    dump.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not a config object"):
        read_config_dump(dump)
    with pytest.raises(ConfigError, match="cannot read the running config"):
        read_config_dump(dump)  # gone


def test_a_writer_that_dies_without_logging_is_reported_with_its_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer cannot read its config (it says so on stderr only and exits 2): the
    supervisor logs `postmortem_failed` with the bundle's path and the exit code."""
    cfg = _cfg(tmp_path)
    ks = paths.kill_switch_path(cfg.state_path)
    ks.parent.mkdir(parents=True, mode=0o700)
    killswitch.ensure_file(ks)

    def broken_dump(_cfg: SystemConfig, path: Path) -> Path:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text("{not json")
        return path

    monkeypatch.setattr(postmortem_watch, "write_config_dump", broken_dump)
    with capture_logs() as logs:
        watch = PostmortemWatch(cfg)
        watch.start()
        try:
            killswitch.engage(ks, "test", "test")
            failed = eventually(
                lambda: [e for e in logs if e["event"] == "postmortem_failed"], 30.0
            )
        finally:
            watch.close()
    assert failed[0]["exit_code"] == 2, failed
    assert failed[0]["path"].endswith(".tar.gz") and failed[0]["log_level"] == "error"
    assert not list(paths.postmortem_dir(cfg.state_path).glob("postmortem-*"))
    assert json.dumps(failed)  # plain data: it reaches the JSON log as is
