"""The fee and terms of a fill the book counted before its report came: a catch-up of the
order to the venue's cum_qty (``recon:``, after a connector's kill -9 lost the fill's
report, or a reconciliation pass) books the fill at once but knows no fee and not the
fill's own terms; the trade's own report (the user-data stream, a myTrades re-read, a FIX
report the venue held back) then is a duplicate "counted by reconciliation". Its terms and
fee are booked alone, once: journal record ``fill_fee`` (id, exec_id, qty, px, its fee if
any, ts_ns), which takes the exec id (a resend brings no second fee), keeps the fill's
terms under it (`actors.oms.fill_terms`: a later bust or correction of the fill takes
back what the venue takes back) and moves the position as the fill's fee would have
(`protocol.fees.book_fee`); the order's event carries the fee for risk
(`OrderEvent.fill_fee_base` / `fill_fee_quote` without a fill). Before, the fee was
dropped (the OMS held 1 BTC where the exchange's balance held 0.999, for good), and so
were the terms: a venue's bust of such a fill was refused (``trade_bust_unknown_fill``)
and the OMS kept a trade the venue had taken back. A record without qty and px (an older
build's, or one of a fee alone) keeps no terms."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from actors.oms.orders import Order, Outcome
from actors.oms.positions import FILL_FEE, fee_fields
from protocol.fees import fee_problem

__all__ = ["FILL_FEE", "counted", "record"]


def record(
    order: Order, exec_id: str, qty: Decimal, px: Decimal, fee: Decimal, fee_asset: str, ts_ns: int
) -> dict[str, Any] | None:
    """The ``fill_fee`` record of `order`'s fill `exec_id` (`qty` at `px`, its fee) that a
    catch-up counted, or None once booked (the exec id); a fee that
    `protocol.fees.fee_problem` refuses is left off it (the terms are kept)."""
    if exec_id in order.exec_ids:
        return None
    rec = {"kind": FILL_FEE, "id": order.client_order_id, "exec_id": exec_id,
           "qty": str(qty), "px": str(px), "ts_ns": ts_ns}  # fmt: skip
    if fee and fee_problem(order.symbol, qty, px, fee, fee_asset) is None:
        rec |= fee_fields(fee, fee_asset)
    return rec


def counted(
    commit: Callable[[str, dict[str, Any]], Outcome],
    order: Order,
    rec: dict[str, Any] | None,
    covered: Decimal,
) -> Outcome:
    """The outcome of the report a catch-up counted (to venue cum `covered`), its `record`
    `rec` committed (`commit`) if any: a duplicate (nothing counted again, no event) that
    journals the fill's terms the first time; applied when it books a fee (the order's
    event carries it to risk)."""
    why = f"counted by reconciliation (cum {covered})"
    if rec is None:
        return Outcome("duplicate", order, reason=why)
    out = commit(order.client_order_id, rec)
    return out if "fee" in rec else Outcome("duplicate", order, out.records, reason=why)
