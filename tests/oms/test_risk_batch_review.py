"""Risk batches, the cpu6 review's findings (each failed before its fix): a lone verdict
answering a batch, or a verdict for another order, is never applied (the orders are asked
again); a wrong answer is asked again after RISK_RETRY_S, not at once; a replace's check
goes to risk after the new orders that arrived before it in the same turn."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D

from actors.oms.intake import RISK_RETRY_S, Intake
from actors.oms.lifecycle import Event
from protocol.config import OmsCfg
from protocol.messages import (
    OrderAck,
    OrderStatus,
    ReplaceOrder,
    RiskCheck,
    RiskChecks,
    RiskVerdict,
    RiskVerdicts,
)
from tests.oms.test_journal_space import V, _Link, _Reply
from tests.oms.test_risk_batch import _bad_messages, _Risk, _status, _submit, _TurnHost


class _DelayHost(_TurnHost):
    """`call_later(0)` at the end of the turn; a later one kept with its delay, run by
    `advance` (the test's clock)."""

    def __init__(self) -> None:
        super().__init__()
        self.later: list[tuple[float, Callable[[], None]]] = []

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        if delay_s > 0:
            self.later.append((delay_s, fn))
        else:
            super().call_later(delay_s, fn)

    def advance(self) -> list[float]:
        later, self.later = self.later, []
        for _, fn in later:
            fn()
        self.end_turn()
        return [d for d, _ in later]


def _rig() -> tuple[_DelayHost, _Risk, Intake]:
    host, link, risk = _DelayHost(), _Link(), _Risk()
    intake = Intake(host, {V: link}, risk, OmsCfg())  # type: ignore[arg-type, dict-item]
    return host, risk, intake


def test_a_lone_verdict_answering_a_batch_is_not_applied_to_its_orders() -> None:
    host, risk, intake = _rig()
    replies = [_submit(intake, c) for c in ("b1", "b2", "b3")]
    host.end_turn()
    assert isinstance(risk.asked[0][0], RiskChecks)
    bad = _bad_messages()
    risk.answer(0, RiskVerdict(client_order_id="b1", approved=True))
    host.end_turn()
    assert _bad_messages() == bad + 1
    assert [_status(host, c) for c in ("b1", "b2", "b3")] == [OrderStatus.PENDING_RISK] * 3
    assert not any(isinstance(a, OrderAck) for r in replies for a in r.answers)
    assert host.advance() == [RISK_RETRY_S] * 3  # asked again after the retry interval
    [(again, _)] = risk.asked[1:]
    assert isinstance(again, RiskChecks)
    assert [c.client_order_id for c in again.checks] == ["b1", "b2", "b3"]


def test_a_verdict_for_another_order_is_not_applied() -> None:
    host, risk, intake = _rig()
    _submit(intake, "s1")
    host.end_turn()
    assert isinstance(risk.asked[0][0], RiskCheck)
    risk.answer(0, RiskVerdict(client_order_id="other", approved=True))
    host.end_turn()
    assert _status(host, "s1") is OrderStatus.PENDING_RISK
    assert host.advance() == [RISK_RETRY_S] and len(risk.asked) == 2


def test_a_mismatched_answer_is_asked_again_after_the_retry_interval_not_at_once() -> None:
    host, risk, intake = _rig()
    _submit(intake, "x1")
    _submit(intake, "x2")
    host.end_turn()
    for i in range(5):
        risk.answer(i, RiskVerdicts(verdicts=[RiskVerdict(client_order_id="zz", approved=True)]))
        host.end_turn()
        host.end_turn()
        assert len(risk.asked) == i + 1  # not asked again within the turn, nor the next
        assert host.advance() == [RISK_RETRY_S, RISK_RETRY_S]
        assert len(risk.asked) == i + 2


def test_a_replace_check_goes_after_the_new_orders_that_arrived_before_it() -> None:
    host, risk, intake = _rig()
    _submit(intake, "r0")
    host.end_turn()
    risk.answer(0, RiskVerdict(client_order_id="r0", approved=True))
    host.end_turn()
    host.book.record_event("r0", Event.ACCEPTED, 1)
    assert _status(host, "r0") is OrderStatus.ACCEPTED
    risk.asked.clear()
    _submit(intake, "n1")  # arrives first
    intake.cancel_or_replace("r0", _Reply(), ReplaceOrder(client_order_id="r0", qty=D(5)))  # type: ignore[arg-type]
    host.end_turn()
    seen = [b.client_order_id for b, _ in risk.asked if isinstance(b, RiskCheck)]
    assert seen == ["n1", "r0"]
