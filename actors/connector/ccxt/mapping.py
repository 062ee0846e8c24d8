"""Pure mapping between our messages and ccxt's unified structures (Binance spot first).
No I/O, no state.

Outbound: PlaceOrder / ReplaceOnVenue -> the arguments of `create_order` (`create_args`),
CancelOnVenue -> the params of `cancel_order` (`cancel_params`).

Inbound: a ccxt order (REST create / fetch / cancel response, or a WebSocket update of
`watch_orders`) -> the non-fill events it proves (`order_execs`) or the venue's view of it
(`venue_order`); the trades of one venue order -> fills with an exact cumulative quantity
(`fill_execs`, `ws_fill_exec`); a balance -> spot positions (`positions_from_balance`).

Exec ids are the same whichever way an event arrives (WebSocket or REST), so the OMS
applies each once: ``<scope><venue order id>:new``, ``:t<trade id>``, ``:cancelled``,
``:expired``, ``:replaced`` (the id of the new venue order) and ``<ClOrdID>:rejected``.
The scope (`Intent.id_scope`) is ``<symbol>:`` for an order created by a build that
knows it (``BTC/USDT:28:new``), since Binance numbers orders and trades per symbol (two
symbols' order 28 are two orders); an order created by an older build keeps its unscoped
ids (``28:new``) for life, so what the OMS applied before an upgrade is not applied again
under a new id (docs/ccxt-venues.md, "Exec ids").

Decimals: every quantity and price is read from the exchange's own decimal string when
the structure carries it, else from ccxt's float through its repr (`reading`). Outbound,
a Decimal goes to ccxt as a float only when that float reads back as the same Decimal.

A cumulative quantity is never a guess: it is the venue's own cumulative filled quantity
of the order (executedQty, z) or the sum over all of the order's distinct trades. A
replaced order is several venue orders (Binance has no in-place amend of quantity): the
later ones carry only the remaining quantity, so the callers pass what the earlier ones
filled (`cum_offset`) and what that cost in the quote asset (`cost_offset`, for the
average price over the whole order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal

from actors.connector.ccxt import reading as rd
from protocol.messages import (
    CancelOnVenue,
    OrderStatus,
    OrdType,
    PlaceOrder,
    PositionView,
    ReplaceOnVenue,
    Side,
    TimeInForce,
    VenueOrder,
)

ZERO: Final = rd.ZERO
# a crypto venue has no trading day: DAY rests until cancelled
TIF_TO_CCXT: Final = {
    TimeInForce.DAY: "GTC",
    TimeInForce.GTC: "GTC",
    TimeInForce.IOC: "IOC",
    TimeInForce.FOK: "FOK",
}
TERMINAL: Final = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.EXPIRED, OrderStatus.REJECTED}
)

# ------------------------------------------------------------------------------- exec ids


def exec_id_new(venue_order_id: str, scope: str) -> str:
    return f"{scope}{venue_order_id}:new"


def exec_id_fill(venue_order_id: str, trade_id: str, scope: str) -> str:
    return f"{scope}{venue_order_id}:t{trade_id}"


def exec_id_cancelled(venue_order_id: str, scope: str) -> str:
    return f"{scope}{venue_order_id}:cancelled"


def exec_id_expired(venue_order_id: str, scope: str) -> str:
    return f"{scope}{venue_order_id}:expired"


def exec_id_replaced(new_venue_order_id: str, scope: str) -> str:
    return f"{scope}{new_venue_order_id}:replaced"


def exec_id_rejected(cl_ord_id: str) -> str:
    return f"{cl_ord_id}:rejected"


def exec_id_cancel_rejected(cl_ord_id: str) -> str:
    """As the FIX side's OrderCancelReject: ``cxlrej:<ClOrdID of the cancel/replace>``."""
    return f"cxlrej:{cl_ord_id}"


# ------------------------------------------------------------------------------- outbound


@dataclass(frozen=True, slots=True)
class CreateArgs:
    """`exchange.create_order(a.symbol, a.type, a.side, a.amount, a.price, a.params)`."""

    symbol: str
    type: Literal["limit", "market"]
    side: Literal["buy", "sell"]
    amount: float
    price: float | None
    params: dict[str, object]


def create_args(order: PlaceOrder | ReplaceOnVenue, *, amount: Decimal | None = None) -> CreateArgs:
    """The create_order arguments of `order` (`amount` overrides its qty: a replace sends
    the remaining quantity only). params: `clientOrderId` (ccxt binance sends it as
    newClientOrderId), `newOrderRespType` FULL (the answer carries the fills) and, for a
    limit order, `timeInForce` (DAY -> GTC). A market order gets no price: ccxt binance
    would turn amount * price into a quoteOrderQty (spend that much quote) order."""
    qty = order.qty if amount is None else amount
    if qty <= 0:
        raise ValueError(f"order quantity must be positive, got {qty}")
    params: dict[str, object] = {"clientOrderId": order.cl_ord_id, "newOrderRespType": "FULL"}
    side: Literal["buy", "sell"] = "buy" if order.side is Side.BUY else "sell"
    if order.order_type is OrdType.MARKET:
        return CreateArgs(order.symbol, "market", side, _as_float("qty", qty), None, params)
    if order.price is None:
        raise ValueError(f"limit order {order.cl_ord_id!r} has no price")
    params["timeInForce"] = TIF_TO_CCXT[order.tif]
    price = _as_float("price", order.price)
    return CreateArgs(order.symbol, "limit", side, _as_float("qty", qty), price, params)


def cancel_params(request: CancelOnVenue) -> dict[str, object]:
    """Params of `exchange.cancel_order(None, request.symbol, params)`: ccxt binance sends
    origClientOrderId instead of orderId when it is given (the id argument is then
    unused), and passes newClientOrderId (the id of the cancel itself) through."""
    return {"origClientOrderId": request.orig_cl_ord_id, "newClientOrderId": request.cl_ord_id}


def _as_float(what: str, value: Decimal) -> float:
    as_float = float(value)
    if Decimal(repr(as_float)) != value:
        raise ValueError(f"{what} {value} has no exact float form (over 15 significant digits)")
    return as_float


# -------------------------------------------------------------------------------- inbound


def order_status(status: object, cum_qty: Decimal) -> OrderStatus:
    """A ccxt unified order status as ours: open -> ACCEPTED or PARTIALLY_FILLED (by
    `cum_qty`), closed -> FILLED, canceled -> CANCELLED, expired -> EXPIRED (Binance
    EXPIRED and EXPIRED_IN_MATCH), rejected -> REJECTED; anything else is a ValueError."""
    if status == "open":
        return OrderStatus.PARTIALLY_FILLED if cum_qty > 0 else OrderStatus.ACCEPTED
    mapped = _FINAL_STATUSES.get(status) if isinstance(status, str) else None
    if mapped is None:
        raise ValueError(
            f"ccxt order status {status!r} is not one of open, closed, canceled, expired, rejected"
        )
    return mapped


_FINAL_STATUSES: Final = {
    "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELLED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


def client_order_id(order_or_trade: Mapping[str, Any]) -> str:
    """Our ClOrdID of the order a ccxt order or trade is about, "" if it names none (a REST
    trade of Binance carries no client id: look it up by the venue order id).

    A cancel names two client ids: Binance's REST cancel answer has the cancel's own id
    in clientOrderId (ccxt's clientOrderId) and the order's in origClientOrderId; its
    executionReport has the cancel's in 'c' and the order's in 'C' (empty on other
    events; ccxt's parse_ws_order already prefers 'C'). The order's id is returned."""
    info = rd.info_of(order_or_trade)
    for key in ("origClientOrderId", "C"):
        original = info.get(key)
        if isinstance(original, str) and original:
            return original
    for value in (order_or_trade.get("clientOrderId"), info.get("clientOrderId"), info.get("c")):
        if isinstance(value, str) and value:
            return value
    return ""


def venue_order(
    order: Mapping[str, Any],
    *,
    cl_ord_id: str,
    order_qty: Decimal | None = None,
    cum_offset: Decimal = ZERO,
    cost_offset: Decimal = ZERO,
) -> VenueOrder:
    """The venue's view of our order from a ccxt order (status answers, open orders).
    `order_qty`: our total qty (None: `cum_offset` + the venue order's amount)."""
    snap = rd.order_view(order)
    if snap.side is None or not snap.symbol:
        raise ValueError(f"order {snap.venue_order_id!r} names no side or symbol")
    total = order_qty
    if total is None:
        if snap.amount is None:
            raise ValueError(f"order {snap.venue_order_id!r} has no amount")
        total = cum_offset + snap.amount
    cum = cum_offset + snap.filled
    status = order_status(order.get("status"), cum)
    return VenueOrder(
        cl_ord_id=cl_ord_id,
        venue_order_id=snap.venue_order_id,
        symbol=snap.symbol,
        side=snap.side,
        order_qty=total,
        price=snap.price,
        order_type=snap.order_type,
        status=status,
        cum_qty=cum,
        avg_px=rd.avg_px(cum_offset, cost_offset, snap.filled, snap.cost),
        leaves_qty=rd.leaves(status, total, cum),
    )


trade_fee = rd.trade_fee  # (commission, asset) of one ccxt trade


def base_asset(symbol: str) -> str:
    """ "BTC" of "BTC/USDT" (a ccxt unified spot symbol)."""
    base, sep, quote = symbol.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"not a spot symbol BASE/QUOTE: {symbol!r}")
    return base


def positions_from_balance(
    venue: str,
    balance: Mapping[str, Any],
    symbols: Sequence[str],
    baseline: Mapping[str, Decimal],
) -> list[PositionView]:
    """Spot positions: per symbol, the total balance (free + locked) of its base asset
    minus `baseline` of that asset (funding that is not a position of ours; missing: 0).
    Read from Binance's raw account balances (free / locked strings) when the balance
    carries them (fetch_balance), else from ccxt's unified totals (a WebSocket balance's
    raw message lists only the assets that changed). Quote assets are not compared: fees
    are paid from them, and several symbols share one. A commission charged in the base
    asset (Binance's default on a buy without BNB fee payment) leaves the balance that much
    below the filled quantity: `trade_fee` says how much. Two symbols of one base asset
    cannot be told apart in a balance: a ValueError, and so is a balance whose raw answer
    is no JSON object (ccxt makes an HTML page, a truncated or an empty body answered 200
    a balance of nothing, which would read as zero of every asset)."""
    info = balance.get("info")
    if not isinstance(info, Mapping):
        raise ValueError(f"the balance answer is not an account: {str(info)[:80]!r}")
    bases: dict[str, str] = {}
    for symbol in symbols:
        base = base_asset(symbol)
        if base in bases:
            raise ValueError(f"{bases[base]} and {symbol} share base asset {base}")
        bases[base] = symbol
    totals = rd.raw_totals(balance, bases)
    out: list[PositionView] = []
    for base, symbol in bases.items():
        total = totals.get(base) if totals is not None else rd.unified_total(balance, base)
        qty = (total or ZERO) - baseline.get(base, ZERO)
        # flat is "0", not the balance's exponent ("1000.00000000" - 1000 is 0E-8)
        out.append(PositionView(venue=venue, symbol=symbol, qty=qty if qty else ZERO))
    return out


# ------------------------------------------------------------------------------- internals
