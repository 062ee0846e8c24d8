"""An order checked against the exchange's market before it is sent (pure, no I/O).

`check_order` answers None when the order fits the market, else one line naming the
field: the market is unknown or not trading, the order type is not allowed, the quantity
is off the amount step or outside its min / max, the price off the tick or outside its
min / max, the notional (qty * price, limit orders) outside the min / max cost.

The values come from the exchange's own filters in the market's `info` as exact decimal
strings when present (Binance exchangeInfo: LOT_SIZE stepSize / minQty / maxQty,
MARKET_LOT_SIZE for market orders, PRICE_FILTER tickSize / minPrice / maxPrice, NOTIONAL
or MIN_NOTIONAL minNotional / maxNotional; a 0 there disables the rule, as on Binance),
else from ccxt's unified `precision` and `limits` (floats read through their repr). A
unified precision is a step in ccxt's TICK_SIZE mode (Binance's), a count of decimals in
DECIMAL_PLACES mode; SIGNIFICANT_DIGITS precisions are not checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, localcontext
from typing import Any, Final

from protocol.domain import parse_decimal
from protocol.messages import OrdType, PlaceOrder, ReplaceOnVenue

# ccxt.base.decimal_to_precision precision modes
DECIMAL_PLACES: Final = 2
SIGNIFICANT_DIGITS: Final = 3
TICK_SIZE: Final = 4
ZERO: Final = Decimal(0)


def check_order_in(
    order: PlaceOrder | ReplaceOnVenue,
    markets: Mapping[str, Mapping[str, Any]],
    *,
    amount: Decimal | None = None,
    precision_mode: int = TICK_SIZE,
) -> str | None:
    """`check_order` against the market of `order.symbol` in ccxt's `exchange.markets`."""
    market = markets.get(order.symbol)
    return check_order(order, market, amount=amount, precision_mode=precision_mode)


def check_order(
    order: PlaceOrder | ReplaceOnVenue,
    market: Mapping[str, Any] | None,
    *,
    amount: Decimal | None = None,
    precision_mode: int = TICK_SIZE,
) -> str | None:
    """None if `order` (its qty, or `amount` for a replace's remaining quantity) fits
    `market` (a ccxt unified market; None: the symbol is not among the markets), else the
    reason in one line."""
    if market is None:
        return f"unknown symbol {order.symbol}: not among the exchange's markets"
    if market.get("symbol") not in (None, order.symbol):
        return f"market {market.get('symbol')} is not the order's symbol {order.symbol}"
    if market.get("active") is False:
        return f"market {order.symbol} is not active (not trading)"
    info = market.get("info")
    info = info if isinstance(info, Mapping) else {}
    allowed = info.get("orderTypes")
    if isinstance(allowed, list) and order.order_type.value not in allowed:
        return f"order type {order.order_type.value} not allowed on {order.symbol}"
    filters = _filters(info)
    qty = order.qty if amount is None else amount
    if qty <= 0:
        return f"qty {qty} must be positive"
    market_order = order.order_type is OrdType.MARKET
    problem = _check_qty(qty, filters, market, precision_mode, market_order)
    if problem is None and not market_order:
        if order.price is None:
            return "limit order without a price"
        problem = _check_price(order.price, filters, market, precision_mode)
        problem = problem or _check_notional(qty * order.price, filters, market)
    return problem


def _filters(info: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    rows = info.get("filters")
    if not isinstance(rows, list):
        return {}
    return {
        str(row["filterType"]): row
        for row in rows
        if isinstance(row, Mapping) and isinstance(row.get("filterType"), str)
    }


def _dec(source: Mapping[str, Any] | None, key: str) -> Decimal | None:
    """`source[key]` as a Decimal (a float through its repr); None if absent or 0 (a
    Binance filter value of 0 disables its rule)."""
    value = None if source is None else source.get(key)
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    parsed = parse_decimal(repr(value) if isinstance(value, float) else str(value))
    return parsed or None


def _limit(market: Mapping[str, Any], key: str, bound: str) -> Decimal | None:
    """ccxt's unified `market["limits"][key][bound]` ("min" / "max")."""
    limits = market.get("limits")
    entry = limits.get(key) if isinstance(limits, Mapping) else None
    return _dec(entry, bound) if isinstance(entry, Mapping) else None


def _step(market: Mapping[str, Any], key: str, precision_mode: int) -> Decimal | None:
    precisions = market.get("precision")
    precision = _dec(precisions, key) if isinstance(precisions, Mapping) else None
    if precision is None or precision_mode == SIGNIFICANT_DIGITS:
        return None
    if precision_mode == DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(precision))
    return precision


def _off_grid(value: Decimal, base: Decimal, step: Decimal) -> bool:
    with localcontext() as ctx:  # the quotient may pass 28 digits (a tiny step)
        ctx.prec = 120
        return (value - base) % step != 0


def _check_qty(
    qty: Decimal,
    filters: Mapping[str, Mapping[str, Any]],
    market: Mapping[str, Any],
    precision_mode: int,
    market_order: bool,
) -> str | None:
    lot = filters.get("LOT_SIZE")
    if lot is not None:
        problem = _check_lot(qty, lot, "LOT_SIZE")
        market_lot = filters.get("MARKET_LOT_SIZE")
        if problem is None and market_order and market_lot is not None:
            problem = _check_lot(qty, market_lot, "MARKET_LOT_SIZE")
        return problem
    low = _limit(market, "amount", "min")
    high = _limit(market, "amount", "max")
    if low is not None and qty < low:
        return f"qty {qty} is below the minimum amount {low}"
    if high is not None and qty > high:
        return f"qty {qty} is above the maximum amount {high}"
    step = _step(market, "amount", precision_mode)
    if step is not None and _off_grid(qty, ZERO, step):
        return f"qty {qty} is not a multiple of the amount step {step}"
    return None


def _check_lot(qty: Decimal, lot: Mapping[str, Any], name: str) -> str | None:
    step, low, high = _dec(lot, "stepSize"), _dec(lot, "minQty"), _dec(lot, "maxQty")
    if low is not None and qty < low:
        return f"qty {qty} is below the minimum amount {low} ({name} minQty)"
    if high is not None and qty > high:
        return f"qty {qty} is above the maximum amount {high} ({name} maxQty)"
    if step is not None and _off_grid(qty, low or ZERO, step):
        return f"qty {qty} is not a multiple of the amount step {step} ({name} stepSize)"
    return None


def _check_price(
    price: Decimal,
    filters: Mapping[str, Mapping[str, Any]],
    market: Mapping[str, Any],
    precision_mode: int,
) -> str | None:
    if price <= 0:
        return f"price {price} must be positive"
    pf = filters.get("PRICE_FILTER")
    if pf is not None:
        tick, low, high = _dec(pf, "tickSize"), _dec(pf, "minPrice"), _dec(pf, "maxPrice")
        source = " (PRICE_FILTER {})"
    else:
        tick = _step(market, "price", precision_mode)
        low = _limit(market, "price", "min")
        high = _limit(market, "price", "max")
        source = ""
    if low is not None and price < low:
        return f"price {price} is below the minimum price {low}" + source.format("minPrice")
    if high is not None and price > high:
        return f"price {price} is above the maximum price {high}" + source.format("maxPrice")
    if tick is not None and _off_grid(price, low if pf is not None and low else ZERO, tick):
        return f"price {price} is not a multiple of the tick {tick}" + source.format("tickSize")
    return None


def _check_notional(
    notional: Decimal, filters: Mapping[str, Mapping[str, Any]], market: Mapping[str, Any]
) -> str | None:
    row = filters.get("NOTIONAL") or filters.get("MIN_NOTIONAL")
    if row is not None:
        low, high = _dec(row, "minNotional"), _dec(row, "maxNotional")
        source = f" ({row['filterType']} {{}})"
    else:
        low = _limit(market, "cost", "min")
        high = _limit(market, "cost", "max")
        source = ""
    if low is not None and notional < low:
        return f"notional {notional} is below the minimum cost {low}" + source.format("minNotional")
    if high is not None and notional > high:
        return f"notional {notional} is above the maximum cost {high}" + source.format(
            "maxNotional"
        )
    return None
