"""Reading ccxt's unified orders, trades and balances as exact decimals (pure, no I/O).

ccxt hands amounts and prices over as floats. Every quantity and price here is read from
the exchange's own decimal string in the structure's `info` when it is there (Binance
REST order origQty / executedQty / price / cummulativeQuoteQty, REST trade and FULL fill
qty / price, WebSocket executionReport q / z / p / Z and l / L, account balances free /
locked), and only otherwise from ccxt's float, through its shortest repr, which is exact
for any value of at most 15 significant digits (what a float parsed from such a string
gives back). Binance's raw strings carry at most 8 decimals, but a quantity such as
1234.56789012345678 (18 digits) is still exact here, where its float is not.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final

from protocol.domain import parse_decimal
from protocol.messages import TERMINAL_STATUSES, OrderStatus, OrdType, Side

ZERO: Final = Decimal(0)
SIDE_FROM_CCXT: Final = {"buy": Side.BUY, "sell": Side.SELL}
# raw Binance keys of an order: REST (GET/POST/DELETE /api/v3/order) and WebSocket
# (executionReport), for amount, filled, price, cumulative quote (cost)
_REST_ORDER: Final = ("origQty", "executedQty", "price", "cummulativeQuoteQty")
_WS_ORDER: Final = ("q", "z", "p", "Z")
# the latest venue time read as epoch ms: its ns must fit the wire's int64 (year 2262); a
# larger one is not in ms (an exchange set to microseconds gives ~1.7e15) and reads as none
MAX_TS_MS: Final = (2**63 - 1) // 1_000_000


def info_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The raw exchange answer ccxt keeps in a structure's `info` ({} if none)."""
    info = obj.get("info")
    return info if isinstance(info, Mapping) else {}


def is_order(answer: object) -> bool:
    """Is `answer` (what a ccxt order call returned) an order? ccxt makes an HTML page, a
    truncated or an empty body answered 200 an order of nothing: no id, its `info` the
    text. An answer to a create or a lookup always names the order's id."""
    return (
        isinstance(answer, Mapping)
        and isinstance(answer.get("info"), Mapping)
        and bool(answer.get("id"))
    )


def num(source: Mapping[str, Any], key: str) -> Decimal | None:
    """`source[key]` as a bounded Decimal: a string or int as is, a float by its repr;
    None when absent or empty; a ValueError when it is not a number."""
    value = source.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{key}: not a number: {value!r}")
    return parse_decimal(repr(value) if isinstance(value, float) else str(value))


def pick(
    info: Mapping[str, Any], raw_key: str, unified: Mapping[str, Any], key: str
) -> Decimal | None:
    """The raw `info[raw_key]` if present, else ccxt's unified `unified[key]`."""
    raw = num(info, raw_key)
    return raw if raw is not None else num(unified, key)


@dataclass(frozen=True, slots=True)
class OrderView:
    """What the mapping reads of one ccxt order (REST or WebSocket), values exact."""

    venue_order_id: str
    symbol: str
    side: Side | None
    order_type: OrdType
    amount: Decimal | None
    filled: Decimal
    price: Decimal | None
    cost: Decimal | None  # cumulative quote amount of the fills
    ts_ns: int
    reject_text: str


def order_view(order: Mapping[str, Any]) -> OrderView:
    """`order` read raw-first: Binance REST keys, or executionReport keys for an order of
    ccxt.pro's watch_orders (its `info` is the event). A market order has no price (ccxt
    puts the average there); the cost falls back on average * filled. A negative amount,
    filled quantity, price or cost is a ValueError (it went on as a negative cum_qty)."""
    info = info_of(order)
    ws = info.get("e") == "executionReport"
    amount_key, filled_key, price_key, cost_key = _WS_ORDER if ws else _REST_ORDER
    order_type = OrdType.MARKET if order.get("type") == "market" else OrdType.LIMIT
    price = pick(info, price_key, order, "price")
    if order_type is OrdType.MARKET or not price:
        price = None
    cost = pick(info, cost_key, order, "cost")
    filled = pick(info, filled_key, order, "filled") or ZERO
    if cost is None and filled:
        average = num(order, "average")
        cost = None if average is None else average * filled
    amount = pick(info, amount_key, order, "amount")
    for name, value in (("amount", amount), ("filled", filled), ("price", price), ("cost", cost)):
        if value is not None and value < 0:
            raise ValueError(f"order {order.get('id')!r}: negative {name} {value}")
    reason = info.get("r") if ws else None
    ts_ms = order.get("lastUpdateTimestamp") or order.get("timestamp") or 0
    return OrderView(
        venue_order_id=str(order.get("id") or ""),
        symbol=str(order.get("symbol") or ""),
        side=SIDE_FROM_CCXT.get(str(order.get("side"))),
        order_type=order_type,
        amount=amount,
        filled=filled,
        price=price,
        cost=cost,
        ts_ns=ts_ns(ts_ms),
        reject_text=reason if isinstance(reason, str) and reason != "NONE" else "",
    )


@dataclass(frozen=True, slots=True)
class TradeView:
    """What the mapping reads of one ccxt trade (REST, a FULL fill, or WebSocket)."""

    trade_id: str
    order_id: str
    symbol: str
    side: Side | None
    qty: Decimal
    px: Decimal
    ts_ns: int
    fee: tuple[Decimal, str] | None = None  # (commission, asset) if the trade said (`trade_fee`)

    def merged(self, other: TradeView) -> TradeView:
        """The same trade seen twice (a FULL answer's fill names no side or time)."""
        return replace(
            self,
            order_id=self.order_id or other.order_id,
            symbol=self.symbol or other.symbol,
            side=self.side or other.side,
            ts_ns=max(self.ts_ns, other.ts_ns),
            fee=self.fee or other.fee,
        )


def trade_view(trade: Mapping[str, Any]) -> TradeView:
    """`trade` read raw-first (qty / price, or l / L of an executionReport); a trade with
    no id or no positive quantity and price is a ValueError."""
    info = info_of(trade)
    ws = info.get("e") == "executionReport"
    qty = pick(info, "l" if ws else "qty", trade, "amount")
    px = pick(info, "L" if ws else "price", trade, "price")
    trade_id = str(trade.get("id") or "")
    if not trade_id or qty is None or px is None or qty <= 0 or px <= 0:
        raise ValueError(f"trade {trade_id!r}: no id, or no positive quantity and price")
    order_id = trade.get("order") or info.get("i" if ws else "orderId") or ""
    ts_ms = trade.get("timestamp")
    return TradeView(
        trade_id=trade_id,
        order_id=str(order_id),
        symbol=str(trade.get("symbol") or ""),
        side=SIDE_FROM_CCXT.get(str(trade.get("side"))),
        qty=qty,
        px=px,
        ts_ns=ts_ns(ts_ms),
        fee=_readable_fee(trade),
    )


def _readable_fee(trade: Mapping[str, Any]) -> tuple[Decimal, str] | None:
    """`trade_fee`, None when it cannot be read (not a number, an asset name no exchange
    uses): the fill is still the venue's word, and what the fee moved shows at the heartbeat."""
    try:
        fee = trade_fee(trade)
    except ValueError:
        return None
    return fee if fee is None or len(fee[1]) <= MAX_ASSET_CHARS else None


MAX_ASSET_CHARS: Final = 32  # ExecReport.fee_asset's bound


def trade_fee(trade: Mapping[str, Any]) -> tuple[Decimal, str] | None:
    """(commission, asset) of one ccxt trade, raw-first (REST and FULL fill commission /
    commissionAsset, executionReport n / N), else ccxt's unified fee; None if it has none."""
    info = info_of(trade)
    ws = info.get("e") == "executionReport"
    cost, asset = num(info, "n" if ws else "commission"), info.get("N" if ws else "commissionAsset")
    if cost is None or not isinstance(asset, str) or not asset:
        fee = trade.get("fee")
        if not isinstance(fee, Mapping):
            return None
        cost, asset = num(fee, "cost"), fee.get("currency")
        if cost is None or not isinstance(asset, str) or not asset:
            return None
    return cost, asset


def ts_ns(ts_ms: object) -> int:
    """A venue time in epoch ms as ns; 0 (not known) when it is none, not a finite number,
    or outside (0, MAX_TS_MS]: a time in microseconds would overflow the wire's int64 (the
    connector could then send no execution of that turn), a time is never worth a fill."""
    if isinstance(ts_ms, bool) or not isinstance(ts_ms, int | float):
        return 0
    if not math.isfinite(ts_ms) or not 0 < ts_ms <= MAX_TS_MS:
        return 0
    return int(ts_ms) * 1_000_000


def created_ms(order_or_trade: Mapping[str, Any]) -> int:
    """When the exchange created the order a ccxt order or stream trade is about (epoch
    ms; 0: not said): Binance's REST order has it in `time`, an executionReport (the
    stream's order and trade) in `O`. A cancel's answer says neither (its `transactTime`
    is the cancel's). Not for a REST myTrades row, whose `time` is the trade's."""
    info = info_of(order_or_trade)
    return ts_ns(info.get("O", info.get("time"))) // 1_000_000


def trade_sort_key(fill: TradeView) -> tuple[int, int, str]:
    """Numeric trade ids in numeric order (Binance's are), any other after them."""
    tid = fill.trade_id
    return (0, int(tid), "") if tid.isascii() and tid.isdigit() else (1, 0, tid)


def raw_totals(balance: Mapping[str, Any], assets: Collection[str]) -> dict[str, Decimal] | None:
    """free + locked of each of `assets` in Binance's account answer; None if it is not
    one. The other rows are not read: an account holds assets we do not trade (an airdrop
    of 1e20 units of a token was beyond a Decimal's bounds, and no balance was answered)."""
    rows = info_of(balance).get("balances")
    if not isinstance(rows, list):
        return None
    totals: dict[str, Decimal] = {}
    for row in rows:
        if isinstance(row, Mapping) and row.get("asset") in assets:
            free, locked = num(row, "free") or ZERO, num(row, "locked") or ZERO
            totals[row["asset"]] = free + locked
    return totals


def unified_total(balance: Mapping[str, Any], asset: str) -> Decimal | None:
    """ccxt's unified total of `asset` (balance[asset]["total"], else balance["total"])."""
    per_asset = balance.get(asset)
    if isinstance(per_asset, Mapping):
        total = num(per_asset, "total")
        if total is not None:
            return total
    totals = balance.get("total")
    return num(totals, asset) if isinstance(totals, Mapping) else None


def check_offsets(cum_offset: Decimal, cost_offset: Decimal) -> None:
    if cum_offset < 0 or cost_offset < 0 or (cum_offset > 0) != (cost_offset > 0):
        raise ValueError(
            f"cum_offset {cum_offset} and cost_offset {cost_offset}: both 0, or both positive "
            "(what the earlier venue orders of a replaced order filled, and what it cost)"
        )


def avg_px(
    cum_offset: Decimal, cost_offset: Decimal, filled: Decimal, cost: Decimal | None
) -> Decimal:
    """Average price over the whole order; 0 when nothing filled or the cost is unknown."""
    check_offsets(cum_offset, cost_offset)
    total = cum_offset + filled
    if not total or (filled and cost is None):
        return ZERO
    return (cost_offset + (cost or ZERO)) / total


def leaves(status: OrderStatus, order_qty: Decimal, cum: Decimal) -> Decimal:
    return ZERO if status in TERMINAL_STATUSES else max(order_qty - cum, ZERO)
