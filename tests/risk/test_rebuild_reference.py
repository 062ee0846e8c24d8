"""Risk's reference price of a symbol after a rebuild (`ExposureView.rebuild`): the OMS's
last execution price of the position filled last, as a view that read every event has it
(`last_px` of the last fill). Before, it was the average price of the latest filled open
order, or (none open) nothing: the configured reference priced a market order (reproduced
on the real system: tests/integration/test_risk_reference_rebuild.py)."""

from __future__ import annotations

from decimal import Decimal as D

from actors.risk.exposure import ExposureView
from protocol.messages import OrderStatus, OrderView, OrdType, PositionView, Side


def _pos(venue: str, px: str | None, fill_ns: int) -> PositionView:
    return PositionView(venue=venue, symbol="AAPL", qty=D(1), avg_px=D(100),
                        last_fill_ns=fill_ns, last_px=None if px is None else D(px))  # fmt: skip


def test_the_last_execution_of_the_position_filled_last_is_the_reference() -> None:
    """simB filled last (at 150.01): its price, not simA's older 100.01 nor the average
    price (120) of a partly filled open order."""
    order = OrderView(client_order_id="o", venue="simA", symbol="AAPL", side=Side.BUY,
                      qty=D(10), order_type=OrdType.LIMIT, price=D(121), ts_ns=9,
                      status=OrderStatus.PARTIALLY_FILLED, cum_qty=D(5), avg_px=D(120))  # fmt: skip
    view = ExposureView.rebuild([order], [_pos("simA", "100.01", 5), _pos("simB", "150.01", 7)])
    assert view.last_px == {"AAPL": D("150.01")}


def test_an_oms_that_does_not_say_it_leaves_the_open_orders_average() -> None:
    """An OMS of an older build (no `last_px`): as before, the latest filled open order."""
    order = OrderView(client_order_id="o", venue="simA", symbol="AAPL", side=Side.BUY,
                      qty=D(10), order_type=OrdType.LIMIT, price=D(121), ts_ns=9,
                      status=OrderStatus.PARTIALLY_FILLED, cum_qty=D(5), avg_px=D(120))  # fmt: skip
    assert ExposureView.rebuild([order], [_pos("simA", None, 5)]).last_px == {"AAPL": D(120)}
