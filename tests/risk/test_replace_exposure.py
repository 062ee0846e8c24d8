"""A replace that raises an order's quantity (`actors.risk.exposure`): from risk's approval
until the venue answers, the order may rest at either size, so the larger counts open. The
OMS's `OrderView.pending_qty` (PENDING_REPLACE: the qty asked) says it to the events and to
a rebuild alike; until its PENDING_REPLACE event comes, the approval itself does. Before,
the old leaves counted until the venue confirmed the replace, and a burst of orders
checked meanwhile passed max_position against the old size (reproduced on the real
system: tests/integration/test_risk_replace.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.risk.checks import ExposureView, ReasonCode, RiskGate
from protocol.config import RiskLimitsCfg
from protocol.messages import OrderEvent, OrderStatus, OrderView, OrdType, RiskCheck, Side

D = Decimal
S = OrderStatus
LIMITS = RiskLimitsCfg(max_position=D(1000), price_band_pct=1000.0)


def _order(status: OrderStatus, qty: str, **kw: Any) -> OrderView:
    return OrderView(client_order_id="a", venue="sim", symbol="AAPL", side=Side.BUY,
                     qty=D(qty), order_type=OrdType.LIMIT, price=D(95), status=status,
                     **kw)  # fmt: skip


def _check(coid: str, qty: str) -> RiskCheck:
    return RiskCheck(client_order_id=coid, venue="sim", symbol="AAPL", side=Side.BUY,
                     qty=D(qty), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip


def _event(seq: int, order: OrderView) -> OrderEvent:
    return OrderEvent(event_seq=seq, order=order)


def _live_gate() -> RiskGate:
    """Order `a` (buy 100) resting, replaced to 1000: approved (worst case 1000)."""
    g = RiskGate(LIMITS, reference_prices={"AAPL": D(95)})
    g.exposure.apply_order_event(_event(1, _order(S.ACCEPTED, "100")))
    assert g.check(_check("a", "1000"), now_ns=1).approved
    return g


def test_an_approved_raise_counts_at_once_and_until_the_venue_answers() -> None:
    """From the approval, through an older event of the order still on its way (ACCEPTED at
    100) and the PENDING_REPLACE event, 1000 counts open: a buy of 900 is refused. The
    venue rejects the replace (ACCEPTED at 100 again): 100 counts, the 900 passes."""
    g = _live_gate()
    assert g.exposure.open_qty("AAPL", Side.BUY) == 1000
    g.exposure.apply_order_event(_event(2, _order(S.ACCEPTED, "100")))  # sent before the ask
    assert g.exposure.open_qty("AAPL", Side.BUY) == 1000
    g.exposure.apply_order_event(_event(3, _order(S.PENDING_REPLACE, "100", pending_qty=D(1000))))
    assert g.exposure.open_qty("AAPL", Side.BUY) == 1000
    assert g.check(_check("b", "900"), now_ns=2).code is ReasonCode.MAX_POSITION
    g.exposure.apply_order_event(_event(4, _order(S.ACCEPTED, "100")))  # replace rejected
    assert g.exposure.open_qty("AAPL", Side.BUY) == 100
    assert g.check(_check("b", "900"), now_ns=3).approved


def test_a_rebuild_during_a_pending_replace_holds_what_the_live_view_holds() -> None:
    """Risk killed -9 while `a` is PENDING_REPLACE to 1000: the view rebuilt from the OMS's
    listing equals the one that read every event (before: 100 open, the 900 approved)."""
    live = _live_gate()
    pending = _order(S.PENDING_REPLACE, "100", pending_qty=D(1000))
    live.exposure.apply_order_event(_event(2, pending))
    rebuilt = ExposureView.rebuild([pending], [])
    assert rebuilt.summary() == live.exposure.summary()
    assert rebuilt.open_qty("AAPL", Side.BUY) == 1000


def test_a_lowered_qty_counts_the_old_size_until_the_venue_takes_it() -> None:
    """A replace down to 50: the venue may still fill 100 until it answers; then 50."""
    g = RiskGate(LIMITS, reference_prices={"AAPL": D(95)})
    g.exposure.apply_order_event(_event(1, _order(S.ACCEPTED, "100")))
    assert g.check(_check("a", "50"), now_ns=1).approved
    g.exposure.apply_order_event(_event(2, _order(S.PENDING_REPLACE, "100", pending_qty=D(50))))
    assert g.exposure.open_qty("AAPL", Side.BUY) == 100
    g.exposure.apply_order_event(_event(3, _order(S.ACCEPTED, "50")))
    assert g.exposure.open_qty("AAPL", Side.BUY) == 50
