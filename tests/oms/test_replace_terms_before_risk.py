"""A replace the book would refuse for its terms alone is refused before risk is asked
(`actors.oms.cancel_replace.replace_refusal`), as one refused for the order's state is:
risk counts a raise it approves open until an event shows it or the order ends
(`actors.risk.exposure.ExposureView.add_provisional`), so a raise approved and then refused
by the book (a price on a market order) stayed counted against max_position for the
order's life. Found by review of the riskleft branch."""

from __future__ import annotations

from decimal import Decimal as D

from protocol.messages import (
    ErrorCode,
    ExecReport,
    OrdType,
    ReplaceOrder,
    RiskVerdict,
    Side,
    SubmitOrder,
)
from tests.oms.test_journal_space import V, _live_order, _Reply
from tests.oms.test_trading_after_close import _Oms, _rig


def _live_market_order(oms: _Oms, coid: str = "m1") -> None:
    """`coid`, a market buy of 10, accepted at the venue and not filled yet."""
    msg = SubmitOrder(client_order_id=coid, venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(10), order_type=OrdType.MARKET)  # fmt: skip
    assert oms.book.submit(msg, 1).applied
    assert oms.book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).applied
    order = oms.book.get(coid)
    assert order is not None
    accepted = ExecReport(venue=V, exec_id=f"E-{coid}", kind="accepted",
                          cl_ord_id=order.cl_ord_id)  # fmt: skip
    assert oms.book.apply_exec(accepted, 3).applied


def _fill(oms: _Oms, coid: str, qty: str) -> None:
    order = oms.book.get(coid)
    assert order is not None
    fill = ExecReport(venue=V, exec_id=f"F-{coid}", kind="fill", cl_ord_id=order.cl_ord_id,
                      last_qty=D(qty), last_px=D(95))  # fmt: skip
    assert oms.book.apply_exec(fill, 4).applied


def test_a_raise_of_a_market_order_with_a_price_is_refused_unasked() -> None:
    """A market order replaced to 50 with a price: the book refuses a price on a market
    order, so the replace is refused INVALID_STATE at once and risk is never asked (it
    would have approved the raise and counted it)."""
    oms, risk, intake = _rig()
    _live_market_order(oms)
    reply = _Reply()
    msg = ReplaceOrder(client_order_id="m1", qty=D(50), price=D(96))
    intake.cancel_or_replace("m1", reply, msg)  # type: ignore[arg-type]
    assert risk.pending == []
    assert [r[0] for r in reply.rejections] == [ErrorCode.INVALID_STATE]
    assert "invalid price" in reply.rejections[0][1]


def test_a_replace_to_no_more_than_the_filled_part_is_refused_unasked() -> None:
    """`o1` (10 @ 95) with 6 filled, replaced to 6 at 94: refused at once, risk not asked
    (it measured what could still execute, 0, and approved)."""
    oms, risk, intake = _rig()
    _live_order(oms)
    _fill(oms, "o1", "6")
    reply = _Reply()
    msg = ReplaceOrder(client_order_id="o1", qty=D(6), price=D(94))
    intake.cancel_or_replace("o1", reply, msg)  # type: ignore[arg-type]
    assert risk.pending == []
    assert [r[0] for r in reply.rejections] == [ErrorCode.INVALID_STATE]


def test_a_raise_of_a_market_order_without_a_price_is_still_asked() -> None:
    """The control: a market order's qty raised (no price) goes to risk."""
    oms, risk, intake = _rig()
    _live_market_order(oms)
    intake.cancel_or_replace("m1", _Reply(), ReplaceOrder(client_order_id="m1", qty=D(50)))  # type: ignore[arg-type]
    assert len(risk.pending) == 1


def test_a_retried_replace_already_pending_is_answered_as_a_duplicate_unasked() -> None:
    """`o1` (10) replaced to 20, approved and asked at the venue; the client, its ack lost,
    sends the same replace again: answered as a duplicate of the pending request, and risk
    is not asked. Before, it was put to risk, whose refusal (the exposure had grown, or the
    kill-switch) told the client RISK_REJECTED of a replace the venue may still take."""
    oms, risk, intake = _rig()
    _live_order(oms)
    msg = ReplaceOrder(client_order_id="o1", qty=D(20))
    intake.cancel_or_replace("o1", _Reply(), msg)  # type: ignore[arg-type]
    risk.approve("o1")
    oms.run_pending()
    retry = _Reply()
    intake.cancel_or_replace("o1", retry, msg)  # type: ignore[arg-type]
    assert risk.pending == []
    oms.run_pending()
    assert retry.rejections == []
    (ack,) = retry.answers
    assert ack.duplicate and ack.order.pending_qty == D(20)  # type: ignore[attr-defined]
