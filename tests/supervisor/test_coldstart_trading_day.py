"""A cold start starts risk's trading day afresh: the new OMS book starts at a realised P&L
of 0, so the old book's baseline would count a false gain or loss against
`risk.max_daily_loss`. `state/risk/trading_day.json` goes to the archive with the journal."""

from __future__ import annotations

from pathlib import Path

from actors.supervisor.coldstart import cold_start
from protocol.paths import kill_switch_path, trading_day_path


def test_a_cold_start_archives_risks_trading_day(tmp_path: Path) -> None:
    state = tmp_path / "state"
    day = trading_day_path(state)
    day.parent.mkdir(parents=True)
    day.write_text('{"version": 1, "day": "2026-12-07", "baseline": "500000"}\n')
    archive = cold_start(state)
    assert not day.exists()
    assert (archive / "risk" / day.name).read_text().startswith('{"version": 1')
    assert kill_switch_path(state).exists()  # the switch stays, reset
