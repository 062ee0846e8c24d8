"""A venue's bust (or correction) of a fill of an order risk's view no longer knows: it
finished before risk's last rebuild (which lists open orders only) or fell out of
`FINISHED_MEMORY`, as an order does by the time a venue busts its trade hours later. Its
events must move risk's position as the OMS's book moved (review of branch ``bust``: the
negative fill was read as nothing, or as a new fill of the order's remaining cum)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from actors.oms.event_wire import event_parts, merge_fill
from actors.oms.orders import Outcome
from actors.risk.exposure import ExposureView
from protocol.messages import OrderEvent, OrderStatus
from tests.oms.test_trade_busts import BTC, V, _book, _bust, _fill

D = Decimal
S = OrderStatus


def _publish(view: ExposureView, out: Outcome) -> None:
    assert out.order is not None and out.applied
    for seq, (order, (qty, px, base, quote)) in enumerate(
        event_parts(out.order, merge_fill(None, out)), start=1
    ):
        view.apply_order_event(OrderEvent(
            event_seq=seq, order=order.view(), fill_qty=qty, fill_px=px,
            fill_fee_base=base, fill_fee_quote=quote,
        ))  # fmt: skip


_CORRECT = {"kind": "trade_correct", "last_px": D(90)}


@pytest.mark.parametrize(
    ("ref", "status", "cum", "kw"),
    [
        ("F1", S.CANCELLED, "1", {}),  # one of two fills: done with less
        ("F2", S.PARTIALLY_FILLED, "1", {}),  # reopened by the venue
        ("F1", S.FILLED, "2", _CORRECT | {"last_qty": D(1)}),  # re-priced
        ("F1", S.CANCELLED, "1.5", _CORRECT | {"last_qty": D("0.5")}),  # re-sized
    ],
)
def test_risk_rebuilt_after_the_order_finished_follows_its_bust(
    ref: str, status: S, cum: str, kw: dict[str, Any]
) -> None:
    """Filled 1 at 100 (fee 1 USDT) and 1 at 110; risk restarts (its view rebuilt from the
    OMS's positions and open orders: the filled order is not listed); then the venue busts
    or corrects one fill. Risk's position and realised P&L are the OMS's (before: a bust
    of one fill of two grew risk's position by the other, 3 where the OMS held 1)."""
    book = _book()
    _fill(book, "F1", "1", "100", "1", fee=D(1), fee_asset="USDT")
    _fill(book, "F2", "1", "110", "2")
    open_orders = [o.view() for o in book.orders(open_only=True)]
    view = ExposureView.rebuild(open_orders, [p.view() for p in book.positions()])
    _publish(view, _bust(book, "B1", ref, status, cum, **kw))
    pos, mine = book.position(V, BTC), view.position_view(V, BTC)
    assert (mine.qty, mine.avg_px, mine.realized_pnl) == (pos.qty, pos.avg_px, pos.realized_pnl)
