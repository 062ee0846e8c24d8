"""StallWatch on fake clocks (wall and the loop thread's CPU time): the supervisor's loop as
daemon.run drives it (poll, handlers, run_due with the hang check on a timer)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest

from actors.runtime import timers as timers_mod
from actors.runtime.timers import Timers
from actors.supervisor.child import Child
from actors.supervisor.restart_policy import ChildSpec
from actors.supervisor.stall import StallWatch
from protocol.config import RestartCfg

HANG_LIMIT_S = 0.6  # heartbeat 0.2 s x 3 missed


class Clocks:
    def __init__(self) -> None:
        self.wall, self.cpu = 1000.0, 5.0

    def busy(self, s: float) -> None:
        """The loop runs (handlers doing work)."""
        self.wall += s
        self.cpu += s

    def away(self, s: float) -> None:
        """The loop does not run (SIGSTOP, swap, blocked in poll)."""
        self.wall += s


class _Log:
    def warning(self, *_: Any, **__: Any) -> None:
        pass


class _Poller:
    def __init__(self, clocks: Clocks, lateness_s: float = 0.0) -> None:
        self.clocks, self.lateness_s, self.wait_s = clocks, lateness_s, 0.0005

    def poll(self, timeout_ms: int) -> list[tuple[object, int]]:
        self.clocks.away(min(self.wait_s, timeout_ms / 1000) + self.lateness_s)
        return [("actors", 1)]


@pytest.fixture
def clocks() -> Iterator[Clocks]:
    c = Clocks()
    with mock.patch.object(timers_mod.time, "monotonic", lambda: c.wall):
        yield c


def _loop(
    clocks: Clocks,
    sim_s: float,
    handle: Callable[[int, Child, Child], None],
    poller: _Poller | None = None,
) -> list[tuple[str, float]]:
    """Run the supervisor loop for `sim_s`: risk and oms running; `handle(turn, risk, oms)`
    is the turn's handlers. Returns the hang verdicts (child, seconds into the run)."""
    timers = Timers()
    risk = Child(ChildSpec("risk", "risk"), RestartCfg())
    oms = Child(ChildSpec("oms", "oms"), RestartCfg())
    for pid, child in enumerate((risk, oms), start=100):
        child.spawned(pid, 1, clocks.wall)
        child.ready(clocks.wall, {})
    watch = StallWatch(timers, [risk, oms], _Log(), clock=lambda: clocks.wall,
                       cpu_clock=lambda: clocks.cpu)  # fmt: skip
    start, verdicts = clocks.wall, []

    def check_hangs() -> None:  # as Supervisor._check_hangs
        watch.catch_up()
        for child in (risk, oms):
            if child.hang_age(clocks.wall, HANG_LIMIT_S) is not None:
                verdicts.append((child.id, clocks.wall - start))

    timers.call_every(0.1, check_hangs)
    poller = poller or _Poller(clocks)
    turn = 0
    while clocks.wall - start < sim_s:
        turn += 1
        watch.poll(poller, math.ceil(timers.wait_s(1.0) * 1000))  # type: ignore[arg-type]
        handle(turn, risk, oms)
        timers.run_due()
    return verdicts


def test_busy_turns_do_not_postpone_hang_detection(clocks: Clocks) -> None:
    """A same-uid client floods the control socket: 150 ms of work every turn. Risk is
    frozen from the start, oms heartbeats: risk is found hung one hang timeout in (before the
    fix the busy time counted as a stall and risk was never found)."""

    def flooded(_turn: int, _risk: Child, oms: Child) -> None:
        oms.heard(clocks.wall)
        clocks.busy(0.15)

    verdicts = _loop(clocks, 20.0, flooded)
    assert [v[0] for v in verdicts] == ["risk"]
    assert verdicts[0][1] <= HANG_LIMIT_S + 0.5


def test_busy_turns_do_not_make_timers_late(clocks: Clocks) -> None:
    timers, fired = Timers(), []
    watch = StallWatch(timers, [], _Log(), clock=lambda: clocks.wall,
                       cpu_clock=lambda: clocks.cpu)  # fmt: skip
    t0 = clocks.wall
    timers.call_later(1.0, lambda: fired.append(clocks.wall - t0))  # a restart backoff
    timers.call_later(6.0, lambda: fired.append(clocks.wall - t0))  # a SIGKILL escalation
    while clocks.wall - t0 < 60 and len(fired) < 2:
        watch.poll(_Poller(clocks), math.ceil(timers.wait_s(1.0) * 1000))  # type: ignore[arg-type]
        clocks.busy(0.15)
        timers.run_due()
    assert len(fired) == 2 and fired[0] < 1.2 and fired[1] < 6.2, fired


def test_a_pause_inside_the_handlers_does_not_kill_healthy_children(clocks: Clocks) -> None:
    """Stopped for 2 s after poll returned, while handling (both children heartbeat): the
    hang check accounts the pause before judging, nobody is hung."""

    def paused_once(turn: int, risk: Child, oms: Child) -> None:
        risk.heard(clocks.wall)
        oms.heard(clocks.wall)
        if turn == 50:
            clocks.away(2.0)

    assert _loop(clocks, 20.0, paused_once) == []


def test_a_late_poll_is_a_stall_and_a_frozen_child_is_still_found(clocks: Clocks) -> None:
    """The pause inside poll (woke 2 s late): no verdict on oms; risk, frozen, is found."""
    poller = _Poller(clocks)

    def handle(turn: int, _risk: Child, oms: Child) -> None:
        oms.heard(clocks.wall)
        poller.lateness_s = 2.0 if turn == 30 else 0.0

    verdicts = _loop(clocks, 10.0, handle, poller)
    assert [v[0] for v in verdicts] == ["risk"]
