"""Orders accepted while trading was open never reach the venue once the `[trading]`
window closed: a risk verdict arriving after the close, and a replace approved after it,
are refused; a quantity-lowering replace while closed goes through without a refusal
logged. The OMS's real `drop_unsent` decides (on a stub OMS: book, gate, links)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

from actors.oms.actor import OmsActor
from actors.oms.intake import Intake
from actors.oms.orders import DROPPED_OUTSIDE_TRADING_WINDOW
from actors.oms.trading_gate import TradingGate
from protocol.codec import Envelope
from protocol.config import OmsCfg
from protocol.messages import (
    ErrorCode,
    Message,
    OrderStatus,
    OrdType,
    ReplaceOrder,
    RiskVerdict,
    Side,
    SubmitOrder,
)
from protocol.windows import TradingCfg
from tests.log_stub import RecordingLog
from tests.oms.test_journal_space import V, _Host, _Link, _live_order, _Reply

CLOSE = dt.datetime(2025, 6, 3, 16, 0, tzinfo=dt.UTC)  # a Tuesday, the window's end
WINDOW = {"windows": [{"days": ["tue"], "start": "09:00", "end": "16:00"}]}


class _QueueLink(_Link):
    def is_in_flight(self, client_order_id: str) -> bool:
        return False


class _NothingHeld:
    """The OMS's `UnsentGuard` with no order held (tests/oms/test_unsent_guard.py)."""

    def reason(self, order: Any) -> str | None:
        return None


class _Oms(_Host):
    """The OMS as intake and `OmsActor.drop_unsent` see it, the clock in our hands."""

    def __init__(self) -> None:
        super().__init__()
        self.now = (CLOSE - dt.timedelta(seconds=1)).timestamp()
        self.log = RecordingLog()
        self.kill_switch_engaged = False
        self.trading = TradingGate(
            lambda: TradingCfg.model_validate(WINDOW), self.log, lambda: self.now
        )
        self.link = _QueueLink()
        self.venues = {V: self.link}
        self.unsent = _NothingHeld()

    def drop_unsent(self, client_order_id: str, *, out_of_session: bool = False) -> bool:
        real: Callable[..., bool] = OmsActor.drop_unsent
        return real(self, client_order_id, out_of_session=out_of_session)

    def close(self) -> None:
        self.now = CLOSE.timestamp() + 1


class _Risk:
    """Risk that answers when the test says so."""

    def __init__(self) -> None:
        self.pending: list[Callable[[Envelope | None], None]] = []

    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> str:
        self.pending.append(callback)
        return "id"

    def approve(self, coid: str) -> None:
        self._answer(RiskVerdict(client_order_id=coid, approved=True))

    def refuse(self, coid: str) -> None:
        self._answer(RiskVerdict(client_order_id=coid, approved=False, reason_code="max_position"))

    def _answer(self, body: RiskVerdict) -> None:
        callback = self.pending.pop(0)
        callback(Envelope(body.type, "risk", 1, 1, "m", "c", 0, body))


def _rig() -> tuple[_Oms, _Risk, Intake]:
    oms, risk = _Oms(), _Risk()
    intake = Intake(oms, {V: oms.link}, risk, OmsCfg(), oms.trading)  # type: ignore[arg-type, dict-item]
    return oms, risk, intake


def test_a_submit_approved_by_risk_after_the_close_is_rejected_unsent() -> None:
    """Accepted at 15:59:59, approved at 16:00:01: REJECTED with the window reason,
    `order_dropped_unsent` logged, never pushed, the client refused OUTSIDE_TRADING_WINDOW."""
    oms, risk, intake = _rig()
    msg = SubmitOrder(client_order_id="o9", venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(1), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    reply = _Reply()
    intake.submit(msg, reply)  # type: ignore[arg-type]
    assert len(risk.pending) == 1
    oms.close()
    risk.approve("o9")
    oms.run_pending()
    order = oms.book.get("o9")
    assert order is not None and order.status is OrderStatus.REJECTED
    assert order.reason == DROPPED_OUTSIDE_TRADING_WINDOW
    assert oms.link.pushed == []
    assert "order_dropped_unsent" in oms.log.names()
    assert [r[0] for r in reply.rejections] == [ErrorCode.OUTSIDE_TRADING_WINDOW]


def test_a_submit_approved_while_open_is_pushed() -> None:
    """The control: approved before the close, the order goes to its venue link."""
    oms, risk, intake = _rig()
    msg = SubmitOrder(client_order_id="o9", venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(1), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    intake.submit(msg, _Reply())  # type: ignore[arg-type]
    risk.approve("o9")
    oms.run_pending()
    assert oms.link.pushed == ["o9"]


def test_a_replace_approved_by_risk_after_the_close_is_refused() -> None:
    """A replace raising the quantity, checked while open, approved after the close: refused
    OUTSIDE_TRADING_WINDOW, nothing pushed, the order keeps its terms."""
    oms, risk, intake = _rig()
    _live_order(oms)
    reply = _Reply()
    intake.cancel_or_replace("o1", reply, ReplaceOrder(client_order_id="o1", qty=D(20)))  # type: ignore[arg-type]
    oms.close()
    risk.approve("o1")
    oms.run_pending()
    assert [r[0] for r in reply.rejections] == [ErrorCode.OUTSIDE_TRADING_WINDOW]
    order = oms.book.get("o1")
    assert oms.link.pushed == [] and order is not None and order.qty == D(10)


def test_a_quantity_lowering_replace_while_closed_is_taken_and_not_logged_refused() -> None:
    """Lowering the quantity takes risk off: taken while closed (not even put to risk),
    and no `order_refused_trading_closed` line claims it was refused."""
    oms, risk, intake = _rig()
    _live_order(oms)
    oms.close()
    reply = _Reply()
    intake.cancel_or_replace("o1", reply, ReplaceOrder(client_order_id="o1", qty=D(5)))  # type: ignore[arg-type]
    assert risk.pending == []
    oms.run_pending()
    assert reply.rejections == [] and oms.link.pushed == ["o1"]
    assert "order_refused_trading_closed" not in oms.log.names()
