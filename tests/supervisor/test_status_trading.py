"""`tradepulse status` shows the trading window (the OMS's `info.trading`): a `trading:`
line with the next change while intake is open; while the calendar closes intake, the
`intake:` line already says why and when it reopens, so it is not repeated."""

from __future__ import annotations

from typing import Any

from actors.supervisor.commands import format_status


def _status(intake: str, text: str) -> dict[str, Any]:
    oms = {"id": "oms", "pid": 1, "state": "running", "epoch": 1, "restarts": 0,
           "uptime_s": 1.0, "heartbeat_age_s": 0.1, "rss_bytes": 0, "cpu_percent": 0.0,
           "info": {"trading": {"open": intake == "open", "text": text}}}  # fmt: skip
    return {"actors": [oms], "venues": {}, "kill_switch": {}, "intake": intake}


def test_an_open_window_shows_when_it_closes() -> None:
    """Open: `intake: open` and the trading line with the next close."""
    text = "open; closes at 2025-06-03 16:00:00 EDT America/New_York (20:00:00 UTC), in 2h00m"
    out = format_status(_status("open", text)).splitlines()
    assert "intake: open" in out
    assert f"trading: {text}" in out


def test_a_closed_window_is_said_once_on_the_intake_line() -> None:
    """Closed: the intake line says why and when it reopens; no trading line repeats it
    (even when the two texts were made a moment apart, their countdowns differing)."""
    intake = "closed: blackout (FOMC); reopens at 2025-06-03 14:05:00 UTC, in 5m00s"
    trading = intake.replace("5m00s", "4m59s")
    out = format_status(_status(intake, trading)).splitlines()
    assert f"intake: {intake}" in out
    assert not any(line.startswith("trading:") for line in out)
