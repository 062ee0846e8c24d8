"""A replace of an order whose previous replace is still with risk is refused before risk
is asked (`actors.oms.intake`): the book takes one request at a time, so once the first
is approved and asked the second is refused anyway, but only after risk approved it, and
risk counts an approved raise open until an event shows it or the order ends (a phantom
exposure refusing orders within the limits: tests/integration/test_risk_replace.py shows
the sequential case). Found hunting: two replaces in flight together both reached risk."""

from __future__ import annotations

from decimal import Decimal as D

from protocol.messages import ErrorCode, OrderStatus, ReplaceOrder
from tests.oms.test_journal_space import _live_order, _Reply
from tests.oms.test_trading_after_close import _rig


def test_a_second_replace_while_the_first_is_with_risk_is_refused_unasked() -> None:
    """`o1` (10) replaced to 20, then to 90 before risk answered the first: the second is
    refused INVALID_STATE at once, risk asked once; the first, approved, is asked at the
    venue; a third, after the first was asked, is refused too (a request is pending)."""
    oms, risk, intake = _rig()
    _live_order(oms)
    first, second, third = _Reply(), _Reply(), _Reply()
    intake.cancel_or_replace("o1", first, ReplaceOrder(client_order_id="o1", qty=D(20)))  # type: ignore[arg-type]
    intake.cancel_or_replace("o1", second, ReplaceOrder(client_order_id="o1", qty=D(90)))  # type: ignore[arg-type]
    assert [r[0] for r in second.rejections] == [ErrorCode.INVALID_STATE]
    assert len(risk.pending) == 1
    risk.approve("o1")
    oms.run_pending()
    order = oms.book.get("o1")
    assert first.rejections == [] and order is not None
    assert order.status is OrderStatus.PENDING_REPLACE and order.pending_qty == D(20)
    intake.cancel_or_replace("o1", third, ReplaceOrder(client_order_id="o1", qty=D(90)))  # type: ignore[arg-type]
    assert [r[0] for r in third.rejections] == [ErrorCode.INVALID_STATE]
    assert risk.pending == []


def test_once_risk_answered_the_next_replace_is_asked() -> None:
    """Risk refused the first: the order is as it was, and the next replace goes to risk."""
    oms, risk, intake = _rig()
    _live_order(oms)
    intake.cancel_or_replace("o1", _Reply(), ReplaceOrder(client_order_id="o1", qty=D(20)))  # type: ignore[arg-type]
    risk.refuse("o1")
    oms.run_pending()
    intake.cancel_or_replace("o1", _Reply(), ReplaceOrder(client_order_id="o1", qty=D(30)))  # type: ignore[arg-type]
    assert len(risk.pending) == 1
