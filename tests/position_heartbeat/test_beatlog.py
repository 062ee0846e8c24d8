"""Heartbeat log volume: a `heartbeat` line at info only when a venue's views change or every
`heartbeat.log_every_n` beats, each other beat at debug (the gate alone, then the real actor
against stub connectors, OMS and risk)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from structlog.testing import capture_logs

from actors.position_heartbeat.beatlog import BeatLogGate
from tests.actor_stubs import Harness
from tests.position_heartbeat.beating import beating
from tests.position_heartbeat.test_actor import pos, start

EVERY_N = 4
INTERVAL_S = 0.2  # answers time out at 0.8 x the beat: generous on a loaded machine


def test_gate_logs_the_first_beat_then_every_nth_while_nothing_changes() -> None:
    gate = BeatLogGate(every_n=3)
    seen = [gate.observe("simA", ("same",)) for _ in range(7)]
    assert seen == [0, None, None, 2, None, None, 2]


def test_gate_logs_a_change_at_once_and_counts_the_quiet_beats_before_it() -> None:
    gate = BeatLogGate(every_n=60)
    assert gate.observe("simA", 1) == 0
    assert gate.observe("simA", 1) is None
    assert gate.observe("simA", 2) == 1  # changed: info, one beat went to debug before it
    assert gate.observe("simA", 2) is None
    assert gate.observe("simB", 2) == 0  # venues are tracked apart


def test_gate_every_one_logs_every_beat_and_rejects_zero() -> None:
    gate = BeatLogGate(every_n=1)
    assert [gate.observe("simA", "x") for _ in range(3)] == [0, 0, 0]
    with pytest.raises(ValueError, match="every_n"):
        BeatLogGate(every_n=0)


@pytest.fixture
def h() -> Iterator[Harness]:
    # the debug lines too (capture_logs)
    with beating(INTERVAL_S, log_every_n=EVERY_N, system={"log_level": "debug"}) as harness:
        yield harness


def _beats(logs: list[dict[str, Any]], venue: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "heartbeat" and e["venue"] == venue]


def test_quiet_venue_logs_one_info_line_per_n_beats_and_a_change_at_once(h: Harness) -> None:
    """Positions that agree and never change: over 13 beats of a venue, the beats 1, 5, 9 and
    13 are at info (each later one saying 3 beats went to debug), the other 9 at debug; a
    position change (both views move) is logged at info on the next beat."""
    h.connectors["simA"].positions = [pos("simA", "HB1", 7)]
    h.oms.positions = [pos("simA", "HB1", 7)]
    _actor, risk = start(h)
    with capture_logs() as logs:
        h.pump(lambda: len(_beats(logs, "simA")) >= 13, timeout_s=15.0, what="13 beats")
        lines = _beats(logs, "simA")[:13]
        levels = [e["log_level"] for e in lines]
        assert levels == ["info", "debug", "debug", "debug"] * 3 + ["info"], levels
        assert [e["quiet_beats"] for e in lines if e["log_level"] == "info"] == [0, 3, 3, 3]
        assert all("quiet_beats" not in e for e in lines if e["log_level"] == "debug")
        assert all(e["diff"] == {} for e in lines)
        h.pump(lambda: len(_beats(logs, "simA")) >= 14, timeout_s=5.0, what="a quiet beat")
        done = len(_beats(logs, "simA"))
        h.connectors["simA"].positions = [pos("simA", "HB1", 9)]
        h.oms.positions = [pos("simA", "HB1", 9)]
        h.pump(lambda: len(_beats(logs, "simA")) > done, timeout_s=5.0, what="the next beat")
    changed = _beats(logs, "simA")[done]
    assert changed["log_level"] == "info" and changed["venue_positions"] == {"HB1": "9"}
    assert risk.commands == []
