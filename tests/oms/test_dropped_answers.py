"""What a submitter is told when its order is dropped unsent during the risk round trip,
and what a replace adding risk at a venue an operator stopped gets (a final review's seams).

The real `Intake` and `OmsActor.drop_unsent` on the stub OMS of test_trading_after_close:
an order dropped because its venue's connector was stopped, or its session closed, while
risk was deciding is refused with the error a submit refused at intake for the same reason
gets (INTAKE_PAUSED, OUT_OF_SESSION), not acknowledged as a REJECTED order; a replace that
adds risk at a stopped venue is refused before risk is asked (a pause already was)."""

from __future__ import annotations

from decimal import Decimal as D

from actors.oms.intake import Intake
from actors.oms.orders import DROPPED_OUT_OF_SESSION, DROPPED_STOPPED
from actors.runtime.operator_stops import OperatorStop
from protocol.messages import (
    ErrorCode,
    OrderAck,
    OrderStatus,
    OrdType,
    ReplaceOrder,
    Side,
    SubmitOrder,
)
from tests.oms.test_journal_space import V, _live_order, _Reply
from tests.oms.test_trading_after_close import _Oms, _rig


class _StoppedGate:
    """The intake gate with `V`'s connector stopped by an operator (as after poll_stops)."""

    stopped_venues = frozenset({V})

    def stopped(self) -> dict[str, OperatorStop]:
        return {v: OperatorStop(f"connector.{v}", "m", 0.0, v) for v in self.stopped_venues}

    def refusal(self, venue: str) -> tuple[ErrorCode, str] | None:
        if venue in self.stopped_venues:
            return ErrorCode.INTAKE_PAUSED, f"{venue} is stopped by an operator"
        return None

    def pause_refusal(self, venue: str) -> None:
        return None


def _submit(intake: Intake) -> _Reply:
    msg = SubmitOrder(client_order_id="o9", venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(1), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    reply = _Reply()
    intake.submit(msg, reply)  # type: ignore[arg-type]
    return reply


def test_a_stop_during_the_risk_check_is_told_as_intake_paused() -> None:
    oms, risk, intake = _rig()
    reply = _submit(intake)
    oms.gate = _StoppedGate()  # the stop is seen while risk decides
    risk.approve("o9")
    oms.run_pending()
    order = oms.book.get("o9")
    assert order is not None and order.status is OrderStatus.REJECTED
    assert order.reason == DROPPED_STOPPED
    assert reply.answers == []
    assert [r[0] for r in reply.rejections] == [ErrorCode.INTAKE_PAUSED]
    # a retry (a client told INTAKE_PAUSED waits and retries) learns the order is final
    retry = _submit(intake)
    oms.run_pending()
    assert retry.rejections == []
    (ack,) = retry.answers
    assert isinstance(ack, OrderAck) and ack.duplicate
    assert ack.order.status is OrderStatus.REJECTED and ack.order.reason == DROPPED_STOPPED


def test_a_session_closed_during_the_risk_check_is_told_as_out_of_session() -> None:
    oms, risk, intake = _rig()
    reply = _submit(intake)
    oms.link.push = lambda coid: _drop_out_of_session(oms, coid)  # type: ignore[method-assign]
    risk.approve("o9")
    oms.run_pending()
    order = oms.book.get("o9")
    assert order is not None and order.reason == DROPPED_OUT_OF_SESSION
    assert reply.answers == []
    assert [r[0] for r in reply.rejections] == [ErrorCode.OUT_OF_SESSION]


def _drop_out_of_session(oms: _Oms, coid: str) -> None:
    """What the real `VenueLink.push` does once the venue's session closed."""
    oms.drop_unsent(coid, out_of_session=True)


def test_a_replace_adding_risk_at_a_stopped_venue_is_refused_before_risk() -> None:
    oms, risk, intake = _rig()
    _live_order(oms)
    oms.gate = _StoppedGate()
    reply = _Reply()
    intake.cancel_or_replace("o1", reply, ReplaceOrder(client_order_id="o1", qty=D(20)))  # type: ignore[arg-type]
    assert not risk.pending
    assert [r[0] for r in reply.rejections] == [ErrorCode.INTAKE_PAUSED]
    lower = _Reply()  # taking risk off still goes through (to risk, then the venue)
    intake.cancel_or_replace("o1", lower, ReplaceOrder(client_order_id="o1", qty=D(5)))  # type: ignore[arg-type]
    assert lower.rejections == []
