"""Review of the `unsent` branch (rev3): an order whose resends keep going unsent (the
exchange's lookups failing for good, or a first submit of it still running at the
connector) must stay bounded: at most one resend per `resubmit_grace_s` (failed on the
branch as reviewed). Its book entry keeps one `unsent` exec id per take-back (one a grace:
exact duplicates on an outbox replay, whatever the connector's clock; see
test_resubmit_unsent_clock.py)."""

from __future__ import annotations

import structlog

from actors.oms.exec_intake import ExecIntake
from actors.oms.reconcile import plan_reconciliation
from tests.oms.test_resubmit_unsent import POLICY, V, _approved, _IntakeHost, _unsent

PASS_EVERY_S = 5.0  # `oms.request_timeout_s`: the stale sweep's pass for a PENDING_SUBMIT order
MINUTES = 5


def _resubmits_made(host: _IntakeHost, passes: int) -> int:
    """Passes every PASS_EVERY_S s; the venue never knows the order; every resend the
    connector reports unsent (its lookup before the resend fails). How many resends the
    OMS made."""
    made = 0
    intake = ExecIntake(host, structlog.get_logger())  # type: ignore[arg-type]
    for n in range(passes):
        now_s = 1000.0 + n * PASS_EVERY_S
        plan = plan_reconciliation(
            V, host.book.orders(V), [], {}, {"u1"}, now_s=now_s,
            resubmitted_at_s=host.link.resubmitted_at_s, policy=POLICY,
        )  # fmt: skip
        assert not [a for a in plan.actions if a.name == "escalate"]
        if any(a.name == "resubmit" for a in plan.actions):
            made += 1
            host.book.mark_resubmitted("u1", n)
            host.link.resubmitted_at_s["u1"] = now_s
            intake.on_report(_unsent(n=n), lambda _m: None, 7)  # type: ignore[arg-type]
    return made


def test_resends_that_keep_going_unsent_come_at_most_once_per_grace() -> None:
    """The take-back forgets the grace, so each pass (~5 s) resends again: 60 resends in
    5 minutes for one order (each a lookup more at an exchange already failing them, two
    journal records, two warnings), forever. Bounded by the grace it would be 10."""
    host = _IntakeHost()
    _approved(host.book)
    passes = int(MINUTES * 60 / PASS_EVERY_S)
    made = _resubmits_made(host, passes)
    assert made <= MINUTES * 60 / POLICY.resubmit_grace_s + 1, made
