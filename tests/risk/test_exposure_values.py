"""Risk's exposure view takes any order event it is sent without raising: a finished order
(REJECTED, CANCELLED, ...) is dropped without computing anything of it (issue 15: the
REJECTED event of a 1e999999999 order crashed risk)."""

from __future__ import annotations

import gc
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


def test_an_open_order_adds_no_object_the_cyclic_collector_tracks() -> None:
    """2,000 accepted orders (half partly filled) held open by the view add no tracked
    object (each was a dataclass the full collections traversed), and the view counts them."""
    view = ExposureView()

    def accepted(i: int) -> OrderView:
        cum = Decimal(2) if i % 2 else Decimal(0)
        return OrderView.model_construct(
            client_order_id=f"o{i}", venue="simA", symbol="AAPL", side=Side.BUY,
            qty=Decimal(10), order_type=OrdType.LIMIT, price=Decimal(100),
            status=OrderStatus.PARTIALLY_FILLED if cum else OrderStatus.ACCEPTED,
            cum_qty=cum, avg_px=Decimal(100) if cum else Decimal(0), ts_ns=i,
        )  # fmt: skip

    view.apply_order(accepted(-1))
    gc.collect()
    before = len(gc.get_objects())
    for i in range(2000):
        view.apply_order(accepted(i))
    gc.collect()  # the young tuples the collector untracks at their first pass
    grown = len(gc.get_objects()) - before
    assert grown < 20, f"{grown} more tracked objects for 2,000 open orders"
    assert view.open_orders("simA") == 2001
    assert view.open_qty("AAPL", Side.BUY) == 1000 * 10 + 1001 * 8  # leaves 10 and 8
