"""The OMS asks risk about a loop turn's new orders in one message (`RiskChecks`), and
applies the one `RiskVerdicts` to each order as single verdicts would be applied; a single
new order still goes as a `RiskCheck`; an answer that does not match is counted and taken
as no answer (asked again); an error answer rejects each order of the batch."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

from prometheus_client import REGISTRY

from actors.oms.intake import Intake
from protocol.codec import Envelope, Sender
from protocol.config import OmsCfg
from protocol.messages import (
    MAX_RISK_BATCH,
    ErrorCode,
    Message,
    OrderAck,
    OrderStatus,
    OrdType,
    RequestRejected,
    RiskCheck,
    RiskChecks,
    RiskVerdict,
    RiskVerdicts,
    Side,
    SubmitOrder,
)
from tests.oms.test_journal_space import V, _Host, _Link, _Reply


class _TurnHost(_Host):
    """A host whose `call_later(0, fn)` waits for the end of the turn (`end_turn`)."""

    def __init__(self) -> None:
        super().__init__()
        self.timers: list[Callable[[], None]] = []

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.timers.append(fn)

    def end_turn(self) -> None:
        timers, self.timers = self.timers, []
        for fn in timers:
            fn()
        self.run_pending()


class _Risk:
    def __init__(self) -> None:
        self.asked: list[tuple[Message, Callable[[Envelope | None], None]]] = []

    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> str:
        self.asked.append((body, callback))
        return "id"

    def answer(self, i: int, body: Message | None) -> None:
        _, callback = self.asked[i]
        callback(None if body is None else Sender("risk", 1).envelope(body))


def _rig() -> tuple[_TurnHost, _Link, _Risk, Intake]:
    host, link, risk = _TurnHost(), _Link(), _Risk()
    intake = Intake(host, {V: link}, risk, OmsCfg())  # type: ignore[arg-type, dict-item]
    return host, link, risk, intake


def _submit(intake: Intake, coid: str, qty: int = 1) -> _Reply:
    msg = SubmitOrder(client_order_id=coid, venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(qty), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    reply = _Reply()
    intake.submit(msg, reply)  # type: ignore[arg-type]
    return reply


def _bad_messages() -> float:
    return REGISTRY.get_sample_value("tradepulse_bad_messages_total", {"actor": "oms"}) or 0.0


def _status(host: _Host, coid: str) -> OrderStatus:
    order = host.book.get(coid)
    assert order is not None
    return order.status


def test_the_new_orders_of_a_turn_go_to_risk_in_one_message_and_each_gets_its_verdict() -> None:
    """Three submits in one turn: nothing is sent before the turn's handlers are done, then
    one RiskChecks with the three checks in arrival order; its RiskVerdicts approves two and
    rejects one: each order and each submitter as with single verdicts."""
    host, link, risk, intake = _rig()
    replies = [_submit(intake, c, qty) for c, qty in (("b1", 1), ("b2", 2), ("b3", 3))]
    assert risk.asked == []
    host.end_turn()
    ((body, _),) = risk.asked
    assert isinstance(body, RiskChecks)
    assert [(c.client_order_id, c.qty) for c in body.checks] == [("b1", 1), ("b2", 2), ("b3", 3)]
    risk.answer(0, RiskVerdicts(verdicts=[
        RiskVerdict(client_order_id="b1", approved=True),
        RiskVerdict(client_order_id="b2", approved=False, reason_code="max_order_qty",
                    reason="too big"),
        RiskVerdict(client_order_id="b3", approved=True),
    ]))  # fmt: skip
    host.end_turn()
    assert [_status(host, c) for c in ("b1", "b2", "b3")] == [
        OrderStatus.PENDING_SUBMIT, OrderStatus.REJECTED, OrderStatus.PENDING_SUBMIT,
    ]  # fmt: skip
    assert link.pushed == ["b1", "b3"]
    assert [type(a) for a in replies[0].answers] == [OrderAck] and replies[0].rejections == []
    assert replies[1].answers == [] and replies[1].rejections == [
        (ErrorCode.RISK_REJECTED, "too big", "max_order_qty")
    ]
    assert [type(a) for a in replies[2].answers] == [OrderAck]


def test_a_turn_with_one_new_order_sends_a_single_check() -> None:
    """One new order in the turn: a plain RiskCheck, answered by a plain RiskVerdict."""
    host, link, risk, intake = _rig()
    _submit(intake, "s1")
    host.end_turn()
    ((body, _),) = risk.asked
    assert isinstance(body, RiskCheck) and body.client_order_id == "s1"
    risk.answer(0, RiskVerdict(client_order_id="s1", approved=True))
    host.end_turn()
    assert _status(host, "s1") is OrderStatus.PENDING_SUBMIT and link.pushed == ["s1"]


def test_more_new_orders_than_a_batch_holds_go_as_several_batches() -> None:
    """MAX_RISK_BATCH + 1 new orders in one turn: two messages, every order asked once."""
    host, _, risk, intake = _rig()
    coids = [f"m{i}" for i in range(MAX_RISK_BATCH + 1)]
    for coid in coids:
        _submit(intake, coid)
    host.end_turn()
    assert all(isinstance(b, RiskChecks) for b, _ in risk.asked)
    batches: list[Any] = [b for b, _ in risk.asked]
    assert [len(b.checks) for b in batches] == [MAX_RISK_BATCH, 1]
    assert [c.client_order_id for b in batches for c in b.checks] == coids


def test_an_answer_that_does_not_match_the_checks_is_counted_and_asked_again() -> None:
    """A RiskVerdicts whose ids are not the checks' (never from our risk): counted as a bad
    message, no order decided by it, the orders asked again (in one batch, after
    RISK_RETRY_S: tests/oms/test_risk_batch_review.py)."""
    host, _, risk, intake = _rig()
    _submit(intake, "x1")
    _submit(intake, "x2")
    host.end_turn()
    before = _bad_messages()
    risk.answer(0, RiskVerdicts(verdicts=[
        RiskVerdict(client_order_id="x2", approved=True),
        RiskVerdict(client_order_id="x1", approved=True),
    ]))  # fmt: skip
    host.end_turn()
    assert _bad_messages() == before + 1
    assert [_status(host, c) for c in ("x1", "x2")] == [OrderStatus.PENDING_RISK] * 2
    host.end_turn()  # this host runs the RISK_RETRY_S timers at the end of a turn
    again = risk.asked[1][0]
    assert isinstance(again, RiskChecks)
    assert [c.client_order_id for c in again.checks] == ["x1", "x2"]


def test_an_error_answer_to_a_batch_rejects_each_of_its_orders() -> None:
    """Risk answered the batch with an error (a check raised): final for each order, as for
    a single check: REJECTED risk_error, each submitter told."""
    host, _, risk, intake = _rig()
    replies = [_submit(intake, c) for c in ("e1", "e2")]
    host.end_turn()
    risk.answer(0, RequestRejected(code=ErrorCode.INTERNAL, reason="Overflow"))
    host.end_turn()
    for coid, reply in zip(("e1", "e2"), replies, strict=True):
        order = host.book.get(coid)
        assert order is not None and order.status is OrderStatus.REJECTED
        assert "risk could not check the order: Overflow" in order.reason
        assert [r[0] for r in reply.rejections] == [ErrorCode.RISK_REJECTED]
    assert len(risk.asked) == 1
