"""When the OMS's loop turn commits: a new order waiting for its verdict alone does not
fsync (it becomes durable with the verdict), anything else does, and deferral is bounded.
Its event waits for the verdict too (`EventHold`), as boundedly."""

from __future__ import annotations

from collections.abc import Callable

from actors.oms.commit_policy import CommitPolicy, EventHold
from protocol.messages import OrderStatus

NEW = ({"kind": "new", "order": {}},)
VERDICT = ({"kind": "event", "id": "a", "event": "risk_approved"},)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_new_order_awaiting_risk_is_deferred_until_its_verdict() -> None:
    """The `new` record of a PENDING_RISK order alone: no commit this turn; the verdict's
    record (any other record) makes the turn commit both."""
    policy = CommitPolicy(0.05, Clock())
    policy.noted(NEW, OrderStatus.PENDING_RISK)
    assert not policy.due(waiting=False)
    policy.noted(VERDICT, OrderStatus.PENDING_SUBMIT)
    assert policy.due(waiting=False)
    policy.committed()
    assert not policy.due(waiting=False)


def test_anything_waiting_for_durability_commits_at_once() -> None:
    """A reply, send or event waiting (`waiting`), an adopted order's `new` record (not
    PENDING_RISK) or a record of an unknown order: commit this turn."""
    for records, status in ((NEW, OrderStatus.ACCEPTED), (VERDICT, None)):
        policy = CommitPolicy(0.05, Clock())
        policy.noted(records, status)
        assert policy.due(waiting=False), (records, status)
    policy = CommitPolicy(0.05, Clock())
    policy.noted(NEW, OrderStatus.PENDING_RISK)
    assert policy.due(waiting=True)


def test_deferral_is_bounded() -> None:
    """Risk slow or gone: the deferred records are committed once the oldest has waited
    `max_defer_s`, so the order's PENDING_RISK state becomes durable and visible."""
    clock = Clock()
    policy = CommitPolicy(0.05, clock)
    policy.noted(NEW, OrderStatus.PENDING_RISK)
    clock.now += 0.04
    policy.noted(NEW, OrderStatus.PENDING_RISK)  # a later one does not restart the bound
    assert not policy.due(waiting=False)
    clock.now += 0.011
    assert policy.due(waiting=False)


def test_no_records_change_nothing() -> None:
    policy = CommitPolicy(0.05, Clock())
    policy.noted((), OrderStatus.ACCEPTED)
    assert not policy.due(waiting=False)


class Wakes:
    def __init__(self) -> None:
        self.calls: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.calls.append((delay_s, fn))


def test_the_event_of_an_order_awaiting_its_verdict_waits_for_it() -> None:
    """PENDING_RISK: held (asked again next turn); once the verdict moved the order on,
    published, and it is no longer held."""
    clock, wakes = Clock(), Wakes()
    hold = EventHold(wakes, 0.05, clock)
    assert hold.hold("a", OrderStatus.PENDING_RISK)
    clock.now += 0.01
    assert hold.hold("a", OrderStatus.PENDING_RISK)
    assert not hold.hold("a", OrderStatus.PENDING_SUBMIT)
    assert hold.held == 0
    assert not hold.hold("b", OrderStatus.ACCEPTED)  # any other status: at once
    assert len(wakes.calls) == 1 and wakes.calls[0][0] == 0.05  # one wake-up, not one each


def test_an_event_is_held_at_most_max_hold_s_and_a_turn_comes_then() -> None:
    """Risk slow or gone: the PENDING_RISK event goes out once it waited `max_hold_s`; the
    loop is woken for it while any event is held."""
    clock, wakes = Clock(), Wakes()
    hold = EventHold(wakes, 0.05, clock)
    assert hold.hold("a", OrderStatus.PENDING_RISK)
    clock.now += 0.03
    assert hold.hold("b", OrderStatus.PENDING_RISK)
    clock.now += 0.025
    wakes.calls.pop()[1]()  # the wake-up: "b" still held, so another comes
    assert len(wakes.calls) == 1
    assert not hold.hold("a", OrderStatus.PENDING_RISK)  # waited 0.05 s: published
    assert hold.hold("b", OrderStatus.PENDING_RISK)  # held 0.025 s so far
    clock.now += 0.03
    assert not hold.hold("b", OrderStatus.PENDING_RISK)
    assert hold.held == 0
    wakes.calls.pop()[1]()
    assert wakes.calls == []  # nothing held: no more wake-ups
