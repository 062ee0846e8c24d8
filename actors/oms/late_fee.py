"""The fee of a fill the book counted before its report came: a catch-up of the order to
the venue's cum_qty (``recon:``, after a connector's kill -9 lost the fill's report, or a
reconciliation pass) books the fill at once but knows no fee; the trade's own report
(the user-data stream, a myTrades re-read) then is a duplicate "counted by reconciliation".
Its fee is booked alone, once: journal record ``fill_fee`` (id, exec_id, fee, fee_asset,
ts_ns), which takes the exec id (a resend brings no second fee) and moves the position as
the fill's fee would have (`protocol.fees.book_fee`); the order's event carries it for
risk (`OrderEvent.fill_fee_base` / `fill_fee_quote` without a fill). Before, the fee was
dropped: the OMS held 1 BTC where the exchange's balance held 0.999, for good, and nothing
said why."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.oms.orders import Order
from actors.oms.positions import FILL_FEE, fee_fields
from protocol.fees import fee_problem

__all__ = ["FILL_FEE", "record"]


def record(
    order: Order, exec_id: str, qty: Decimal, px: Decimal, fee: Decimal, fee_asset: str, ts_ns: int
) -> dict[str, Any] | None:
    """The ``fill_fee`` record of the fee of `order`'s fill `exec_id` (`qty` at `px`) that
    a catch-up counted, or None: no fee, booked already (the exec id), or one
    `protocol.fees.fee_problem` refuses (as a fill's own would be)."""
    if not fee or exec_id in order.exec_ids:
        return None
    if fee_problem(order.symbol, qty, px, fee, fee_asset) is not None:
        return None
    return {"kind": FILL_FEE, "id": order.client_order_id, "exec_id": exec_id,
            "ts_ns": ts_ns} | fee_fields(fee, fee_asset)  # fmt: skip
