"""StallWatch on fake clocks (wall and the loop thread's CPU time): the supervisor's loop as
daemon.run drives it (poll, handlers, run_due with the hang check on a timer)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from unittest import mock

import pytest
from prometheus_client import REGISTRY

from actors.runtime import timers as timers_mod
from actors.runtime.ratelog import LogBudget
from actors.runtime.timers import Timers
from actors.supervisor.child import Child
from actors.supervisor.restart_policy import ChildSpec
from actors.supervisor.stall import StallWatch
from protocol.config import RestartCfg
from tests.log_stub import RecordingLog

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
    drain: Callable[[int], None] = lambda _check: None,
    watched: Callable[[StallWatch], None] = lambda _watch: None,
) -> list[tuple[str, float]]:
    """Run the supervisor loop for `sim_s`: risk and oms running; `handle(turn, risk, oms)`
    is the turn's handlers, `drain(check)` the hang check's read of what queued, `watched`
    sees the StallWatch before the loop starts. Returns the hang verdicts (child, seconds
    into the run)."""
    timers = Timers()
    risk = Child(ChildSpec("risk", "risk"), RestartCfg())
    oms = Child(ChildSpec("oms", "oms"), RestartCfg())
    for pid, child in enumerate((risk, oms), start=100):
        child.spawned(pid, 1, clocks.wall)
        child.ready(clocks.wall, {})
    watch = StallWatch(timers, [risk, oms], RecordingLog(), clock=lambda: clocks.wall,
                       cpu_clock=lambda: clocks.cpu)  # fmt: skip
    watched(watch)
    start, verdicts, checks = clocks.wall, [], iter(range(1, 1 << 30))

    def check_hangs() -> None:  # as Supervisor._check_hangs
        check = next(checks)
        now = watch.settled_now(lambda: drain(check))
        for child in (risk, oms):
            if child.hang_age(now, HANG_LIMIT_S) is not None:
                verdicts.append((child.id, now - start))

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
    watch = StallWatch(timers, [], RecordingLog(), clock=lambda: clocks.wall,
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


def test_a_pause_inside_the_hang_checks_drain_is_not_silence(clocks: Clocks) -> None:
    """Stopped for 2 s while the hang check reads what queued (both children heard just
    before): the CI failure, where a SIGSTOP sent right after a status reply caught the
    post-pause drain and every actor was judged hung with a 2.0 s heartbeat age. The clock the
    check judges with is read after the drain and the pause up to it is credited: no verdict;
    risk, frozen from the same moment on, is still found."""
    frozen = False

    def drain(check: int) -> None:
        nonlocal frozen
        if check == 40:
            frozen = True
            clocks.away(2.0)

    def handle(_turn: int, risk: Child, oms: Child) -> None:
        oms.heard(clocks.wall)
        if not frozen:
            risk.heard(clocks.wall)

    verdicts = _loop(clocks, 10.0, handle, drain=drain)
    assert [v[0] for v in verdicts] == ["risk"]
    assert verdicts[0][1] > 2.0 + 4 * 0.1  # found after the pause, one hang timeout awake


def test_a_pause_between_the_accounting_and_the_poll_is_a_stall(clocks: Clocks) -> None:
    """Stopped for 2 s just after `poll` accounted the turn's handlers and before it entered
    the poll: the poll's late return is measured from the accounting, so the pause is a stall
    (measured from a second clock reading, it fell between the two and was lost: the metric
    and every deadline short by the whole pause, the lost 2 s of the flaky adversarial test's
    `tradepulse_supervisor_stall_seconds_total`)."""
    turns = iter(range(1, 1 << 30))

    def watched(watch: StallWatch) -> None:
        accounted = watch.catch_up

        def catch_up_then_pause() -> float:
            stall = accounted()
            if next(turns) == 60:  # poll's accounting (the hang check calls it through
                clocks.away(2.0)  # settled_now: counted here too, never 60 before turn 30)
            return stall

        watch.catch_up = catch_up_then_pause  # type: ignore[method-assign]

    def handle(_turn: int, risk: Child, oms: Child) -> None:
        risk.heard(clocks.wall)
        oms.heard(clocks.wall)

    before = _stalled_s()
    assert _loop(clocks, 10.0, handle, watched=watched) == []
    # less the poll's timeout (<= the 0.1 s check period): the poll cannot tell when it began
    assert 2.0 - 0.1 <= _stalled_s() - before <= 2.0


def _stalled_s() -> float:
    return REGISTRY.get_sample_value("tradepulse_supervisor_stall_seconds_total") or 0.0


def test_a_stall_past_the_hang_limit_is_logged_whatever_the_budget(clocks: Clocks) -> None:
    """Short stalls of a busy start use the log's budget (3 a 10 s); a pause past the hang
    limit right after is still logged, saying how many lines were left out. Before, it was
    only counted: an operator saw no `supervisor_stalled` for the pause that mattered (and
    the adversarial paused-supervisor test failed on a loaded machine)."""
    log = RecordingLog()
    watch = StallWatch(Timers(), [], log, lambda: clocks.wall, lambda: clocks.cpu, loud_s=0.6)
    for _ in range(5):  # five short stalls: three logged, two left out
        clocks.away(0.2)
        watch.catch_up()
    clocks.away(0.3)  # still short, still over the budget: not logged
    watch.catch_up()
    clocks.away(2.0)
    watch.catch_up()
    logged = [fields for _, event, fields in log.lines if event == "supervisor_stalled"]
    assert [f["stall_s"] for f in logged] == [0.2, 0.2, 0.2, 2.0]
    assert logged[-1]["suppressed"] == 3


def test_log_budget_force_logs_and_reports_what_was_left_out() -> None:
    now = [0.0]
    budget = LogBudget(burst=1, window_s=10.0, clock=lambda: now[0])
    assert budget.take() == 0
    assert budget.take() is None and budget.take() is None
    assert budget.force() == 2  # logged, the two before it left out
    assert budget.take() is None  # still over the budget
    assert budget.force() == 1
