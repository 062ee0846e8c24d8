"""A supervised child's lifecycle (`actors.supervisor.child.Child`): what each exit leads to,
READY after a restart, hang detection, operator restarts. No processes."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from actors.runtime.process import EXIT_STATE_CORRUPT
from actors.supervisor.child import RESTART_REASONS, Child, ExitAction, ExitDecision
from actors.supervisor.restart_policy import ChildSpec, ChildState, RestartType
from protocol.config import RestartCfg

POLICY = RestartCfg(initial_s=0.1, factor=2.0, max_s=5.0, jitter=0.0, max_restarts=2, window_s=60)


def _child(
    *, critical: bool = False, restart: RestartType = "permanent", kind: str = "connector"
) -> Child:
    spec = ChildSpec(id=f"{kind}.x", kind=kind, restart=restart, venue="x", critical=critical)
    return Child(spec, POLICY)


def _running(child: Child, now: float, pid: int = 4242) -> Child:
    child.spawned(pid, epoch=int(now * 1000) + 1, now=now)
    assert child.ready(now, {"router": "ipc://x"}) is not None
    return child


def _crash_loop(child: Child, crashes: int, start: float = 0.0) -> list[ExitDecision]:
    """Crashes during start-up: spawned, exited before READY, `crashes` times."""
    decisions = []
    for i in range(crashes):
        child.spawned(1000 + i, epoch=int(start) * 100 + i + 1, now=start + i)
        decisions.append(child.exited(1, start + i + 0.5, shutting_down=False))
    return decisions


def test_a_crash_restarts_after_a_growing_backoff() -> None:
    """Each crash in quick succession waits initial_s * factor**(n-1); the child is in
    BACKOFF, without a pid, meanwhile."""
    child = _running(_child(), 0.0)
    first = child.exited(1, 1.0, shutting_down=False)
    assert (first.action, first.delay_s, first.attempt) == (ExitAction.RESTART_LATER, 0.1, 1)
    assert child.state is ChildState.BACKOFF and child.pid is None and child.restarts == 1
    _running(child, 1.1)
    second = child.exited(-9, 1.2, shutting_down=False)
    assert (second.delay_s, second.attempt, second.down) == (0.2, 2, False)


def test_over_budget_a_connector_goes_down_once_and_is_retried_at_the_max_delay() -> None:
    """Past max_restarts in the window a non-critical child is DOWN: retried at max_s, and
    `newly_down` (log, venue DOWN) only at the first such exit of the episode."""
    child = _child()
    decisions = _crash_loop(child, 4)
    assert [d.down for d in decisions] == [False, False, True, True]
    assert [d.newly_down for d in decisions] == [False, False, True, False]
    assert decisions[-1].delay_s == POLICY.max_s and child.state is ChildState.DOWN


def test_back_within_service_it_reports_it_is_back_up() -> None:
    """READY after an episode over the budget says `back_up` (the venue is no longer DOWN);
    the restart time is measured from the first crash of the episode."""
    child = _child()
    _crash_loop(child, 3)
    child.spawned(99, epoch=10, now=3.0)
    ready = child.ready(3.5, {})
    assert ready is not None and ready.back_up and ready.restart_s == pytest.approx(3.0)
    again = child.ready(3.6, {})
    assert again is None  # a duplicate READY: nothing to report
    still_over = child.exited(1, 4.0, shutting_down=False)  # the window still holds 3 crashes
    assert still_over.down and still_over.newly_down  # a new DOWN episode


def test_a_critical_child_whose_state_is_corrupt_gives_up_at_its_first_exit() -> None:
    """`EXIT_STATE_CORRUPT` (the OMS's journal corrupt): a restart meets the same bytes, so a
    critical child gives up at once (the system stops, exit 2)."""
    oms = _child(critical=True, kind="oms")
    oms.spawned(1000, epoch=1, now=0.0)
    decision = oms.exited(EXIT_STATE_CORRUPT, 0.5, shutting_down=False)
    assert (decision.action, decision.why) == (ExitAction.GIVE_UP, "state_corrupt")
    assert oms.state is ChildState.GAVE_UP


def test_a_connector_whose_state_is_corrupt_stays_down_until_an_operator_restart() -> None:
    """A connector's exec outbox or FIX store corrupt (`EXIT_STATE_CORRUPT`): not restarted
    into the same bytes (it was, to its budget, then every `max_s` for good); DOWN at
    once, reported once, no restart counted; `tradepulse restart` spawns it again."""
    connector = _child()
    connector.spawned(1001, epoch=1, now=0.0)
    decision = connector.exited(EXIT_STATE_CORRUPT, 0.5, shutting_down=False)
    assert decision == ExitDecision(
        ExitAction.STAY_STOPPED, down=True, newly_down=True, why="state_corrupt"
    )
    assert connector.state is ChildState.GAVE_UP and connector.restarts == 0
    assert connector.restart_requested() is True  # the operator, after a repair
    connector.spawned(1002, epoch=2, now=10.0)
    again = connector.exited(EXIT_STATE_CORRUPT, 10.5, shutting_down=False)
    assert again.action is ExitAction.STAY_STOPPED and not again.newly_down  # still DOWN
    connector.restart_requested()
    ready = _running(connector, 20.0)
    assert ready.state is ChildState.RUNNING


def test_a_critical_child_over_budget_gives_up() -> None:
    child = _child(critical=True, kind="oms")
    actions = [d.action for d in _crash_loop(child, 3)]
    assert actions == [ExitAction.RESTART_LATER, ExitAction.RESTART_LATER, ExitAction.GIVE_UP]
    assert child.state is ChildState.GAVE_UP


@pytest.mark.parametrize(
    ("restart", "code", "action"),
    [
        ("temporary", 1, ExitAction.STAY_STOPPED),
        ("transient", 0, ExitAction.STAY_STOPPED),
        ("transient", 1, ExitAction.RESTART_LATER),
        ("permanent", 0, ExitAction.RESTART_LATER),
    ],
)
def test_restart_type_decides_whether_an_exit_is_restarted(
    restart: RestartType, code: int, action: ExitAction
) -> None:
    child = _running(_child(restart=restart), 0.0)
    assert child.exited(code, 1.0, shutting_down=False).action is action


def test_nothing_is_restarted_while_shutting_down() -> None:
    child = _running(_child(), 0.0)
    assert child.restart_requested() is False
    decision = child.exited(1, 1.0, shutting_down=True)
    assert decision.action is ExitAction.STAY_STOPPED and child.state is ChildState.STOPPED


def test_an_operator_restart_of_a_running_child_respawns_it_at_its_exit() -> None:
    """Its exit is not a crash: restarted at once, not counted against the budget."""
    child = _running(_child(), 0.0)
    assert child.restart_requested() is False
    decision = child.exited(-15, 1.0, shutting_down=False)
    assert decision.action is ExitAction.RESTART_NOW and child.restarts == 0
    assert child.exited(1, 2.0, shutting_down=False).action is ExitAction.RESTART_LATER


def test_an_operator_restart_of_a_down_child_starts_it_with_a_fresh_budget() -> None:
    """Not running: spawn now; the window and the backoff start afresh (the total count
    stays), so its next crash is retried after initial_s again."""
    child = _child()
    _crash_loop(child, 3)
    assert child.state is ChildState.DOWN and child.restarts == 3
    assert child.restart_requested() is True
    _running(child, 10.0)
    decision = child.exited(1, 10.5, shutting_down=False)
    assert (decision.action, decision.attempt, decision.delay_s) == (
        ExitAction.RESTART_LATER, 1, 0.1,
    )  # fmt: skip
    assert child.restarts == 4 and child.state is ChildState.BACKOFF


def test_a_stale_backoff_timer_does_not_restart_a_newer_incarnation() -> None:
    child = _running(_child(), 0.0)
    old_epoch = child.epoch
    child.exited(1, 1.0, shutting_down=False)
    assert child.restart_due(old_epoch)
    child.spawned(77, epoch=old_epoch + 5, now=1.1)
    assert not child.restart_due(old_epoch)


def test_a_hang_is_reported_once_per_incarnation() -> None:
    """Heartbeats keep it alive; past the limit the age is reported once."""
    child = _running(_child(), 0.0)
    child.heard(1.0, loop_lag_s=0.01, info={"k": 1})
    assert child.hang_age(1.5, limit_s=0.6) is None
    assert child.hang_age(2.0, limit_s=0.6) == pytest.approx(1.0)
    assert child.hang_age(3.0, limit_s=0.6) is None
    assert child.info == {"k": 1}


def test_start_timeout_applies_to_the_incarnation_still_starting() -> None:
    child = _child()
    child.spawned(5, epoch=1, now=0.0)
    assert child.still_starting(1) and not child.still_starting(2)
    child.ready(0.1, {})
    assert not child.still_starting(1)
    assert child.ready(0.2, {}) is None  # a late duplicate READY changes nothing


def test_status_row() -> None:
    child = _running(_child(), 1.0, pid=2**22 + 12345)  # no such process: rss 0
    row = child.status(3.0)
    assert (row["id"], row["state"], row["restarts"], row["rss_bytes"]) == (
        "connector.x", "running", 0, 0,
    )  # fmt: skip
    assert row["uptime_s"] == 2.0 and row["heartbeat_age_s"] == 2.0
    assert row["endpoints"] == {"router": "ipc://x"}


def _restarts(child: Child, reason: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(
        "tradepulse_actor_restarts_total", {"actor": child.id, "reason": reason}
    )
    return value or 0.0


def test_each_restart_is_counted_with_why_the_incarnation_ended() -> None:
    """tradepulse_actor_restarts_total{reason}: crash, hang (the daemon killed it after
    reporting its hang), start_timeout (killed before READY) and operator (both an operator
    restart of a running child, at its exit, and of one that was not running)."""
    child = Child(ChildSpec(id="connector.reasons", kind="connector", venue="x"), POLICY)
    before = {r: _restarts(child, r) for r in ("crash", "hang", "start_timeout", "operator")}

    def counted() -> dict[str, float]:
        return {r: _restarts(child, r) - before[r] for r in before}

    _running(child, 0.0)
    child.exited(-9, 1.0, shutting_down=False)
    assert counted() == {"crash": 1, "hang": 0, "start_timeout": 0, "operator": 0}
    _running(child, 2.0)
    assert child.hang_age(10.0, 1.0) is not None
    child.exited(-9, 10.1, shutting_down=False)
    assert counted()["hang"] == 1
    child.spawned(99, epoch=777, now=11.0)
    assert child.still_starting(777)
    child.exited(-9, 30.0, shutting_down=False)
    assert counted()["start_timeout"] == 1
    _running(child, 40.0)
    assert not child.restart_requested()
    child.exited(0, 41.0, shutting_down=False)
    assert counted()["operator"] == 1
    assert child.restart_requested()  # not running: starts now
    assert counted() == {"crash": 1, "hang": 1, "start_timeout": 1, "operator": 2}
    _running(child, 50.0)
    child.exited(0, 51.0, shutting_down=True)  # a shutdown is no restart
    assert counted() == {"crash": 1, "hang": 1, "start_timeout": 1, "operator": 2}


def test_a_kill_switch_restart_is_counted_as_such_and_every_reason_starts_at_zero() -> None:
    """Every (actor, reason) series exists from the child's creation at 0 (so increase()
    sees the first restart); a restart requested for the kill-switch (risk restarting a
    connector) is counted reason="kill_switch", not "operator"."""
    child = Child(ChildSpec(id="connector.kswitch", kind="connector", venue="x"), POLICY)
    for reason in RESTART_REASONS:
        labels = {"actor": "connector.kswitch", "reason": reason}
        assert REGISTRY.get_sample_value("tradepulse_actor_restarts_total", labels) == 0.0
    _running(child, 0.0)
    assert not child.restart_requested("kill_switch")
    child.exited(0, 1.0, shutting_down=False)
    assert _restarts(child, "kill_switch") == 1 and _restarts(child, "operator") == 0
    _running(child, 2.0)
    assert not child.restart_requested()  # an operator's next: the reason does not stick
    child.exited(0, 3.0, shutting_down=False)
    assert _restarts(child, "operator") == 1 and _restarts(child, "kill_switch") == 1


def test_a_crash_loop_at_start_after_a_long_run_backs_off_growing() -> None:
    """An incarnation that never got READY ran for 0 s, whatever the one before it did:
    the time since the previous READY made every start-up crash after an hour's healthy run
    look like the end of a long run (the backoff reset), so the loop restarted at initial_s
    each time, never growing, until the budget ran out."""
    child = _running(_child(), 10.0)
    first = child.exited(1, 3610.0, shutting_down=False)  # a healthy hour, then a crash
    assert (first.attempt, first.delay_s) == (1, 0.1)
    [again] = _crash_loop(child, 1, start=3611.0)  # spawned, crashed before READY
    assert (again.attempt, again.delay_s) == (2, 0.2)
