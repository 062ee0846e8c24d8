"""rev18 (review of 82d47f0, F1): `LiveOrderSweeps.round_started` drops the waiting sweep
(`waiting.clear()`) but not its timer. A live event after that round starts a new wait
with its own timer, due a full interval after the round - but the stale timer fires
first and sends the new wait's sweep early: a MassCancel less than `min_interval_s` after
the venue's round (the debounce contract: >= min_interval_s after its last sweep or
round). Minor (no sweep lost; at most one early MassCancel per round)."""

from __future__ import annotations

import pytest

from tests.risk.test_live_sweeps import _Rig


def test_a_stale_timer_never_sends_a_later_wait_s_sweep_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig = _Rig(monkeypatch)
    rig.sweeps.round_started(100.0)
    rig.clock.now = 100.2
    rig.live("a")  # waits, due 101.0
    rig.sweeps.round_started(100.5)  # the engagement's sweep round: covers "a"
    rig.clock.now = 100.6
    rig.live("late")  # shown live after that round: due 101.5
    rig.run_due(101.0)  # only the stale timer of "a" is due
    assert rig.sent == [], "swept 0.5 s after the round (min 1.0 s)"
    rig.run_due(101.5)
    assert rig.sent == ["simA"]
