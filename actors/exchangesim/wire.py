"""Binance's JSON shapes for orders, fills, trades and user-data events, built from the
exchange's state. Every decimal is an 8-place string, every time epoch milliseconds."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.exchangesim.market import fmt
from actors.exchangesim.orders import Trade, XOrder
from protocol.domain import OrdType, Side

ZERO = Decimal(0)
Json = dict[str, Any]


def order_json(o: XOrder) -> Json:
    """GET /api/v3/order, /api/v3/openOrders."""
    return {
        "symbol": o.symbol,
        "orderId": o.oid,
        "orderListId": -1,
        "clientOrderId": o.cl_ord_id,
        "price": fmt(o.price or ZERO),
        "origQty": fmt(o.order_qty),
        "executedQty": fmt(o.cum_qty),
        "cummulativeQuoteQty": fmt(o.quote_cum),
        "status": o.binance_status,
        "timeInForce": o.tif_text,
        "type": o.ord_type.value if o.ord_type else "",
        "side": o.side.value if o.side else "",
        "stopPrice": fmt(ZERO),
        "icebergQty": fmt(ZERO),
        "time": o.created_ms,
        "updateTime": o.update_ms,
        "isWorking": True,
        "workingTime": o.created_ms,
        "origQuoteOrderQty": fmt(ZERO),
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def _result(o: XOrder, transact_ms: int) -> Json:
    return {
        "symbol": o.symbol,
        "orderId": o.oid,
        "orderListId": -1,
        "clientOrderId": o.cl_ord_id,
        "transactTime": transact_ms,
        "price": fmt(o.price or ZERO),
        "origQty": fmt(o.order_qty),
        "executedQty": fmt(o.cum_qty),
        "origQuoteOrderQty": fmt(ZERO),
        "cummulativeQuoteQty": fmt(o.quote_cum),
        "status": o.binance_status,
        "timeInForce": o.tif_text,
        "type": o.ord_type.value if o.ord_type else "",
        "side": o.side.value if o.side else "",
        "workingTime": o.created_ms,
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def new_order_full(o: XOrder, fills: list[Trade], transact_ms: int) -> Json:
    """POST /api/v3/order with newOrderRespType=FULL."""
    return {
        **_result(o, transact_ms),
        "fills": [
            {
                "price": fmt(t.px),
                "qty": fmt(t.qty),
                "commission": fmt(t.fee),
                "commissionAsset": t.fee_asset,
                "tradeId": t.tid,
            }
            for t in fills
        ],
    }


def new_order_result(o: XOrder, transact_ms: int) -> Json:
    """newOrderRespType=RESULT."""
    return _result(o, transact_ms)


def new_order_ack(o: XOrder, transact_ms: int) -> Json:
    """newOrderRespType=ACK."""
    return {
        "symbol": o.symbol,
        "orderId": o.oid,
        "orderListId": -1,
        "clientOrderId": o.cl_ord_id,
        "transactTime": transact_ms,
    }


def cancel_json(o: XOrder, cancel_cl: str, transact_ms: int) -> Json:
    """DELETE /api/v3/order (and each entry of DELETE /api/v3/openOrders)."""
    out = _result(o, transact_ms)
    del out["workingTime"]
    return {
        "symbol": o.symbol,
        "origClientOrderId": o.cl_ord_id,
        **{k: v for k, v in out.items() if k != "symbol"},
        "clientOrderId": cancel_cl,
    }


def trade_json(t: Trade) -> Json:
    """A row of GET /api/v3/myTrades."""
    return {
        "symbol": t.market_id,
        "id": t.tid,
        "orderId": t.oid,
        "orderListId": -1,
        "price": fmt(t.px),
        "qty": fmt(t.qty),
        "quoteQty": fmt(t.qty * t.px),
        "commission": fmt(t.fee),
        "commissionAsset": t.fee_asset,
        "time": t.ts_ms,
        "isBuyer": t.side is Side.BUY,
        "isMaker": t.maker,
        "isBestMatch": True,
    }


def execution_report(
    o: XOrder, exec_type: str, now_ms: int, *, trade: Trade | None = None, cancel_cl: str = ""
) -> Json:
    """The user-data `executionReport` event of one change of `o` (state after it)."""
    return {
        "e": "executionReport",
        "E": now_ms,
        "s": o.symbol,
        "c": cancel_cl or o.cl_ord_id,
        "S": o.side.value if o.side else "",
        "o": o.ord_type.value if o.ord_type else "",
        "f": o.tif_text,
        "q": fmt(o.order_qty),
        "p": fmt(o.price or ZERO),
        "P": fmt(ZERO),
        "F": fmt(ZERO),
        "g": -1,
        "C": o.cl_ord_id if cancel_cl else "",
        "x": exec_type,
        "X": o.binance_status,
        "r": "NONE",
        "i": o.oid,
        "l": fmt(trade.qty if trade else ZERO),
        "z": fmt(o.cum_qty),
        "L": fmt(trade.px if trade else ZERO),
        "n": fmt(trade.fee) if trade else "0",
        "N": trade.fee_asset if trade else None,  # a trade names it even at 0 (as Binance)
        "T": trade.ts_ms if trade else now_ms,
        "t": trade.tid if trade else -1,
        "I": 0,
        "w": o.status.is_open and o.ord_type is OrdType.LIMIT,
        "m": trade.maker if trade else False,
        "M": False,
        "O": o.created_ms,
        "Z": fmt(o.quote_cum),
        "Y": fmt(trade.qty * trade.px if trade else ZERO),
        "Q": fmt(ZERO),
        "W": o.created_ms,
        "V": "EXPIRE_MAKER",
    }


def account_position(balances: dict[str, tuple[Decimal, Decimal]], now_ms: int) -> Json:
    """The `outboundAccountPosition` event: free and locked of the assets that changed."""
    return {
        "e": "outboundAccountPosition",
        "E": now_ms,
        "u": now_ms,
        "B": [{"a": a, "f": fmt(f), "l": fmt(lk)} for a, (f, lk) in sorted(balances.items())],
    }


# the order / trade / event times of REST answers and user-data events (not serverTime)
_TIME_KEYS = frozenset({"time", "updateTime", "workingTime", "transactTime", "E", "T", "O", "W"})


def in_microseconds(data: Any) -> Any:
    """`data` (an answer or event) with its times in microseconds, as Binance gives them
    to a client that asked for timeUnit=MICROSECOND (the `timestamps_us` fault)."""
    if isinstance(data, list):
        return [in_microseconds(item) for item in data]
    if not isinstance(data, dict):
        return data
    return {
        key: value * 1000
        if key in _TIME_KEYS and isinstance(value, int) and not isinstance(value, bool)
        else in_microseconds(value)
        for key, value in data.items()
    }
