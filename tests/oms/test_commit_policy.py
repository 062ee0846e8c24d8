"""When the OMS's loop turn commits: a new order waiting for its verdict alone does not
fsync (it becomes durable with the verdict), anything else does, and deferral is bounded."""

from __future__ import annotations

from actors.oms.commit_policy import CommitPolicy
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
