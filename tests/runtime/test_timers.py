"""The loop's timer heap: `call_later` at its time, `call_every` also early when the loop is
awake anyway, so an idle actor's periodic timers share wake-ups (issue 16, idle cost)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from actors.runtime import timers as timers_mod
from actors.runtime.timers import Timers


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(timers_mod.time, "monotonic", c)
    return c


def test_a_periodic_timer_runs_early_when_the_loop_is_awake_and_counts_from_then(
    clock: Clock,
) -> None:
    runs: list[float] = []
    t = Timers()
    t.call_every(0.25, lambda: runs.append(clock.now))
    clock.now += 0.14  # more than its 0.1 s early allowance before it is due
    t.run_due()
    assert runs == []
    clock.now += 0.02  # 0.09 s before due: awake anyway, it runs now
    t.run_due()
    assert runs == [1000.16]
    clock.now = 1000.16 + 0.14  # the next one counts from the run: due at +0.25
    t.run_due()
    assert len(runs) == 1
    clock.now = 1000.16 + 0.16
    t.run_due()
    assert len(runs) == 2


def test_a_one_shot_timer_never_runs_early(clock: Clock) -> None:
    runs: list[str] = []
    t = Timers()
    t.call_later(0.25, lambda: runs.append("x"))
    clock.now += 0.2
    t.run_due()
    assert runs == []
    assert t.wait_s(1.0) == pytest.approx(0.05)
    clock.now += 0.05
    t.run_due()
    assert runs == ["x"]


def _wakeups_per_s(seconds: float, arm: Callable[[Timers], None], clock: Clock) -> float:
    """Drive a loop that sleeps exactly until the next timer; count its wake-ups."""
    t = Timers()
    arm(t)
    start, wakes = clock.now, 0
    while clock.now - start < seconds:
        clock.now += t.wait_s(1.0)
        wakes += 1
        t.run_due()
    return wakes / seconds


def test_an_idle_connectors_timers_share_wake_ups(clock: Clock) -> None:
    """The FIX adapter's 0.1 s tick (a `call_later` chain), the 0.25 s exec-resend check and
    the 1 s state resend: 10 wake-ups a second, not 10 + 4 + 1."""

    def arm(t: Timers) -> None:
        def tick() -> None:
            t.call_later(0.1, tick)

        t.call_later(0.1, tick)
        t.call_every(0.25, lambda: None)
        t.call_every(1.0, lambda: None)

    assert _wakeups_per_s(20.0, arm, clock) <= 10.5


def test_a_stalled_loop_postpones_every_timer(clock: Clock) -> None:
    runs: list[str] = []
    t = Timers()
    t.call_every(0.5, lambda: runs.append("every"))
    t.call_later(0.5, lambda: runs.append("later"))
    t.postpone(1.0)
    clock.now += 1.2
    t.run_due()
    assert runs == []
    clock.now += 0.3
    t.run_due()
    assert sorted(runs) == ["every", "later"]


def test_a_stall_found_by_an_early_timer_postpones_the_timers_due_soon(clock: Clock) -> None:
    """A periodic timer that runs early and postpones every timer (as the supervisor's hang
    check does on finding a stall) moves the ones due within the early window too."""
    t = Timers()
    runs: list[str] = []
    t.call_every(0.2, lambda: t.postpone(1.0))  # runs early at 0.11: may run from 0.1
    t.call_later(0.15, lambda: runs.append("deadline"))
    clock.now += 0.11
    t.run_due()
    clock.now += 0.1  # 0.21: past the deadline's own time, not its postponed one
    t.run_due()
    assert runs == []


def test_due_timers_run_in_time_order_one_shot_and_periodic_alike(clock: Clock) -> None:
    runs: list[str] = []
    t = Timers()
    t.call_later(0.3, lambda: runs.append("once@0.3"))
    t.call_every(0.2, lambda: runs.append("every@0.2"))
    t.call_later(0.1, lambda: runs.append("once@0.1"))
    t.call_later(0.2, lambda: runs.append("once@0.2"))  # same time, queued after: runs after
    clock.now += 0.35
    t.run_due()
    assert runs == ["once@0.1", "every@0.2", "once@0.2", "once@0.3"]


def test_the_early_scan_leaves_pending_deadlines_alone(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under load the OMS holds thousands of request deadlines due within the early window:
    a turn with nothing due pops none of them (it popped and pushed back each one, every
    turn: 4 % of the OMS's CPU)."""
    t = Timers()
    for i in range(5000):
        t.call_later(0.001 + i * 1e-5, lambda: None)  # all due within MAX_EARLY_S
    t.call_every(1.0, lambda: None)
    pops = 0
    real_pop = timers_mod.heapq.heappop

    def counting_pop(heap: list[Any]) -> Any:
        nonlocal pops
        pops += 1
        return real_pop(heap)

    monkeypatch.setattr(timers_mod.heapq, "heappop", counting_pop)
    t.run_due()
    assert pops == 0
    clock.now += 0.0015  # the first few deadlines are due: only they are popped
    t.run_due()
    assert 0 < pops <= 60
