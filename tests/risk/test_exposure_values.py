"""Risk's exposure view takes any order event it is sent without raising: a finished order
(REJECTED, CANCELLED, ...) is dropped without computing anything of it (issue 15: the
REJECTED event of a 1e999999999 order crashed risk)."""

from __future__ import annotations

from decimal import Decimal

from actors.risk.exposure import ExposureView
from protocol.messages import OrderStatus, OrderView, OrdType, Side


def test_a_rejected_order_with_an_unbounded_qty_is_dropped_without_arithmetic() -> None:
    """An OrderView built in memory (no decode bound applies) with qty 1e999999999 and
    status REJECTED: applying it raises nothing and leaves no open exposure."""
    view = ExposureView()
    order = OrderView.model_construct(
        client_order_id="o1", venue="simA", symbol="AAPL", side=Side.BUY,
        qty=Decimal("1e999999999"), order_type=OrdType.LIMIT, price=Decimal(100),
        status=OrderStatus.REJECTED, cum_qty=Decimal(0), avg_px=Decimal(0),
    )  # fmt: skip
    view.apply_order(order)
    assert view.open_qty("AAPL", Side.BUY) == 0 and view.open_orders("simA") == 0
