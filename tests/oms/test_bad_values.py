"""Values no real venue or risk answer should carry, met at the OMS (issue 15, section 2):
a risk error answer is a final refusal, not a reason to ask again at once; a fill whose
price cannot be computed with, or that has no valid positive price, changes nothing (memory
and journal stay equal) and is escalated. Pure: no sockets."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import simplefix

from actors.connector.fix import mapping as fm
from actors.oms.intake import Intake
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order, Outcome
from actors.oms.positions import Position
from protocol.codec import Envelope, Sender
from protocol.config import OmsCfg
from protocol.messages import (
    ErrorCode,
    ExecReport,
    Message,
    OrderStatus,
    OrdType,
    RequestRejected,
    RiskVerdict,
    Side,
    SubmitOrder,
    VenueConnState,
)
from tests.oms.test_journal_space import _OpenGate
from tests.oms.test_venue_link import V as VL
from tests.oms.test_venue_link import _complete_pass, _link

D = Decimal
V = "sim"


def _live(book: OrderBook, coid: str = "o1") -> Order:
    msg = SubmitOrder(client_order_id=coid, venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(10), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    assert book.submit(msg, 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2).applied
    order = book.get(coid)
    assert order is not None
    accepted = ExecReport(venue=V, exec_id="E0", kind="accepted", cl_ord_id=order.cl_ord_id)
    assert book.apply_exec(accepted, 3).applied
    return order


def _venue_fill(last_px: str, last_qty: str = "4") -> ExecReport:
    """A fill as the connector maps it from the venue's FIX ExecutionReport."""
    msg = simplefix.FixMessage()
    for tag, value in ((35, "8"), (150, "F"), (39, "1"), (17, "E1"), (11, "o1"), (37, "V1"),
                       (55, "ABC"), (54, "1"), (38, "10"), (32, last_qty), (31, last_px),
                       (14, last_qty), (6, "95"), (151, "6")):  # fmt: skip
        msg.append_pair(tag, value)
    report = fm.to_exec_report(msg, V)
    assert report is not None
    return report


def _state(book: OrderBook, order: Order) -> tuple[Any, ...]:
    pos = book.position(V, "ABC")
    return (order.cum_qty, order.notional, order.status, set(order.exec_ids),
            pos.qty, pos.avg_px, pos.realized_pnl)  # fmt: skip


def test_a_venue_fill_at_9e999999_changes_nothing_and_is_escalated() -> None:
    """LastPx 9E+999999 (finite, but no computation survives it): the connector reads it as
    no valid price, the book refuses the fill with a `bad_fill` escalation, and the order
    and its position are exactly as before (no record: memory and journal stay equal)."""
    book = OrderBook()
    order = _live(book)
    before = _state(book, order)
    out = book.apply_exec(_venue_fill("9E+999999"), 4)
    assert out.kind == "refused" and not out.records
    assert [e.kind for e in out.escalations] == ["bad_fill"]
    assert _state(book, order) == before


def test_a_venue_fill_at_nan_is_not_booked_at_price_zero() -> None:
    """LastPx NaN: no fill is booked (at price 0 or any other); it is escalated."""
    book = OrderBook()
    order = _live(book)
    before = _state(book, order)
    out = book.apply_exec(_venue_fill("NaN"), 4)
    assert out.kind == "refused" and [e.kind for e in out.escalations] == ["bad_fill"]
    assert _state(book, order) == before


def test_a_fill_whose_arithmetic_overflows_leaves_order_and_position_unchanged() -> None:
    """Even a fill that got past every bound (built in memory, not decoded) and overflows
    mid-way changes nothing: every new value is computed before anything is assigned."""
    book = OrderBook()
    order = _live(book)
    before = _state(book, order)
    huge = ExecReport.model_construct(
        **{**ExecReport(venue=V, exec_id="E1", kind="fill", cl_ord_id="o1").__dict__,
           "last_qty": D(4), "last_px": D("9E+999999")},
    )  # fmt: skip
    out = book.apply_exec(huge, 4)
    assert out.kind == "refused" and [e.kind for e in out.escalations] == ["bad_fill"]
    assert _state(book, order) == before
    pos = Position(V, "ABC", qty=D(1), avg_px=D(10))
    with pytest.raises(ArithmeticError):
        pos.apply_fill(Side.BUY, D(10), D("9E+999999"))
    assert (pos.qty, pos.avg_px) == (D(1), D(10))


# --------------------------------------------------------------------------- risk answers


class _Host:
    def __init__(self) -> None:
        self.book = OrderBook()
        self.gate = _OpenGate()  # no operator pause (actors.oms.intake_state)
        self.journal_problem: str | None = None
        self.pending: list[Callable[[], None]] = []

    def record(self, outcome: Outcome) -> Outcome:
        return outcome

    def unready(self, venue: str) -> str | None:
        return None  # every venue reconciled (`_Link`)

    def after_commit(self, fn: Callable[[], None], *, first: bool = False) -> None:
        self.pending.append(fn)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        fn()  # a loop turn ends at once here: intake's risk checks go out as they come


class _Link:
    ever_reconciled = True
    depth = 0
    ready = True
    state = VenueConnState.CONNECTED

    def push(self, coid: str) -> None:
        raise AssertionError(f"{coid} must not be sent")


class _ErringRisk:
    """Risk that answers every check with an error (as a risk actor whose check raised)."""

    def __init__(self) -> None:
        self.asked = 0

    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> str:
        self.asked += 1
        err = RequestRejected(code=ErrorCode.INTERNAL, reason="Overflow: [<class 'Overflow'>]")
        callback(Sender("risk", 1).envelope(err))
        return "id"


class _Reply:
    def __init__(self) -> None:
        self.rejections: list[tuple[Any, ...]] = []

    def __call__(self, body: Message) -> None:
        raise AssertionError(f"answered {body}")

    def reject(self, code: ErrorCode, reason: str, field: str | None = None) -> None:
        self.rejections.append((code, reason, field))


def test_a_risk_error_answer_is_final_the_order_is_rejected_with_its_reason() -> None:
    """Risk answered a check with an error (it raised): the OMS does not ask again (it
    used to, at once, thousands of times a second); the order is REJECTED with the reason
    and the client is told."""
    host, risk, reply = _Host(), _ErringRisk(), _Reply()
    intake = Intake(host, {V: _Link()}, risk, OmsCfg())  # type: ignore[arg-type, dict-item]
    msg = SubmitOrder(client_order_id="o1", venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(10), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    intake.submit(msg, reply)  # type: ignore[arg-type]
    for fn in host.pending:
        fn()
    assert risk.asked == 1
    order = host.book.get("o1")
    assert order is not None and order.status is OrderStatus.REJECTED
    assert "risk could not check the order: Overflow" in order.reason
    assert [r[0] for r in reply.rejections] == [ErrorCode.RISK_REJECTED]


def test_an_order_the_connector_cannot_encode_is_rejected_not_resubmitted() -> None:
    """The connector answers a PlaceOrder with INVALID_ORDER (a value FIX cannot carry:
    nothing was sent, nothing ever will be): the order is REJECTED with the connector's
    reason, not marked UNKNOWN and resubmitted after each reconciliation."""
    link, oms, peer = _link()
    msg = SubmitOrder(client_order_id="q-1", venue=VL, symbol="AAPL", side=Side.BUY,
                      qty=D(1), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    oms.book.submit(msg, 1)
    oms.book.risk_verdict(RiskVerdict(client_order_id="q-1", approved=True), 2)
    link.enqueue("q-1")
    link.on_state(VenueConnState.CONNECTED, 7, "logged on")
    _complete_pass(peer, never_seen=("q-1",))
    oms.commit()  # the pass's sends follow its commit
    reason = "not sendable as FIX: FIX field value must be non-empty without SOH"
    place = peer.answer(RequestRejected(code=ErrorCode.INVALID_ORDER, reason=reason))
    assert place.type == "place_order"
    order = oms.book.get("q-1")
    assert order is not None and order.status is OrderStatus.REJECTED
    assert "SOH" in order.reason
    assert peer.sent == [] and link.depth == 0  # no reconciliation, no resend


def test_a_fill_record_that_overflows_changes_neither_the_order_nor_its_position() -> None:
    """The last line of defence (a record applied on replay, or a path that skipped the
    checks): the order's cum_qty / notional and the position are computed first, so an
    overflow raises with nothing changed (it used to raise after cum_qty had moved)."""
    book = OrderBook()
    order = _live(book)
    before = _state(book, order)
    record = {"kind": "fill", "id": "o1", "exec_id": "X1", "qty": "10", "px": "9E+999999",
              "status": "FILLED", "ts_ns": 5}  # fmt: skip
    with pytest.raises(ArithmeticError):
        book.apply_record(record)
    assert _state(book, order) == before
    assert book.positions() == []


def test_a_fill_whose_notional_is_out_of_bounds_is_refused() -> None:
    """Each of qty and price within bounds, their product not: the fill is refused before
    anything changes (found by review: the P&L reached ~8e35 and every positions answer
    failed its own bound)."""
    from actors.oms.positions import fill_problem

    assert fill_problem(Decimal("1E+18"), Decimal("1E+18")) is not None
    assert fill_problem(Decimal("100"), Decimal("101.25")) is None
