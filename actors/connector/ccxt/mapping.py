"""Pure mapping between our messages and ccxt's unified structures (Binance spot first).
No I/O, no state.

Outbound: PlaceOrder / ReplaceOnVenue -> the arguments of `create_order` (`create_args`),
CancelOnVenue -> the params of `cancel_order` (`cancel_params`).

Inbound: a ccxt order (REST create / fetch / cancel response, or a WebSocket update of
`watch_orders`) -> the non-fill events it proves (`order_execs`) or the venue's view of it
(`venue_order`); the trades of one venue order -> fills with an exact cumulative quantity
(`fill_execs`, `ws_fill_exec`); a balance -> spot positions (`positions_from_balance`).

Exec ids are the same whichever way an event arrives (WebSocket or REST), so the OMS
applies each once: ``<venue order id>:new``, ``:t<trade id>``, ``:cancelled``,
``:expired``, ``:replaced`` (the id of the new venue order) and ``<ClOrdID>:rejected``.

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
from actors.connector.ccxt.errors import Failure, reject_reason
from protocol.messages import (
    CancelOnVenue,
    ExecKind,
    ExecReport,
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


def exec_id_new(venue_order_id: str) -> str:
    return f"{venue_order_id}:new"


def exec_id_fill(venue_order_id: str, trade_id: str) -> str:
    return f"{venue_order_id}:t{trade_id}"


def exec_id_cancelled(venue_order_id: str) -> str:
    return f"{venue_order_id}:cancelled"


def exec_id_expired(venue_order_id: str) -> str:
    return f"{venue_order_id}:expired"


def exec_id_replaced(new_venue_order_id: str) -> str:
    return f"{new_venue_order_id}:replaced"


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


def order_execs(
    venue: str,
    order: Mapping[str, Any],
    *,
    cl_ord_id: str,
    order_qty: Decimal,
    cum_offset: Decimal = ZERO,
    cost_offset: Decimal = ZERO,
    ts_ns: int = 0,
) -> list[ExecReport]:
    """The non-fill events one ccxt order snapshot proves, in the order to apply them:
    "accepted" when it has an id (it reached the book), then "cancelled" / "expired" for
    those final states; a "rejected" one is only "rejected" (``<ClOrdID>:rejected``, the
    id a refused submit gets too). Each carries cum_qty = `cum_offset` + the order's
    filled quantity, leaves (0 once final) and the average price over the whole order.
    Fills are not derived here (`fill_execs`, `ws_fill_exec`): send them before the final
    event, whose cum_qty would otherwise make the OMS count them as missed."""
    snap = rd.order_view(order)
    cum = cum_offset + snap.filled
    status = order_status(order.get("status"), cum)
    avg = _avg_px(cum_offset, cost_offset, snap.filled, snap.cost)
    ts = ts_ns or snap.ts_ns

    def report(kind: ExecKind, exec_id: str, text: str = "") -> ExecReport:
        return _order_report(
            venue, kind, exec_id, snap, cl_ord_id, order_qty, cum, avg, status, ts, text
        )

    if status is OrderStatus.REJECTED:
        return [report("rejected", exec_id_rejected(cl_ord_id), snap.reject_text)]
    vid = snap.venue_order_id
    if not vid:
        return []
    out = [report("accepted", exec_id_new(vid))]
    if status is OrderStatus.CANCELLED:
        out.append(report("cancelled", exec_id_cancelled(vid)))
    elif status is OrderStatus.EXPIRED:
        out.append(report("expired", exec_id_expired(vid)))
    return out


def snapshot_execs(
    venue: str,
    order: Mapping[str, Any],
    *,
    cl_ord_id: str,
    order_qty: Decimal,
    cum_offset: Decimal = ZERO,
    cost_offset: Decimal = ZERO,
    ts_ns: int = 0,
) -> list[ExecReport] | None:
    """Everything one ccxt order snapshot that carries its own trades proves (a FULL
    create answer: its fills), in the order to apply: "accepted", the fills, then the
    final event (`order_execs`, `fill_execs`). None when its trades do not add up to its
    filled quantity (an answer without fills, say): fetch the order's trades and use
    `order_execs` and `fill_execs` with them."""
    events = order_execs(
        venue, order, cl_ord_id=cl_ord_id, order_qty=order_qty, cum_offset=cum_offset,
        cost_offset=cost_offset, ts_ns=ts_ns,
    )  # fmt: skip
    snap = rd.order_view(order)
    trades = order.get("trades") or []
    if not isinstance(trades, list) or not snap.venue_order_id:
        return events if not snap.filled else None
    fills = fill_execs(
        venue, trades, cl_ord_id=cl_ord_id, venue_order_id=snap.venue_order_id,
        order_qty=order_qty, cum_offset=cum_offset, cost_offset=cost_offset,
    )  # fmt: skip
    if sum((f.last_qty for f in fills), ZERO) != snap.filled:
        return None
    return events[:1] + fills + events[1:]


def replaced_exec(
    venue: str,
    request: ReplaceOnVenue,
    new_order: Mapping[str, Any],
    *,
    cum_offset: Decimal,
    cost_offset: Decimal,
    ts_ns: int = 0,
) -> ExecReport:
    """The "replaced" event of `request` once its new venue order (`new_order`, carrying
    the remaining quantity) is on the book: ClOrdID / OrigClOrdID of the request, the new
    venue order id, the request's total qty and price; `cum_offset` / `cost_offset`: what
    the venue orders before it filled (quantity, quote amount)."""
    snap = rd.order_view(new_order)
    if not snap.venue_order_id:
        raise ValueError("the new order of a replace has no venue order id")
    cum = cum_offset + snap.filled
    status = order_status(new_order.get("status"), cum)
    return ExecReport(
        venue=venue,
        exec_id=exec_id_replaced(snap.venue_order_id),
        kind="replaced",
        cl_ord_id=request.cl_ord_id,
        orig_cl_ord_id=request.orig_cl_ord_id,
        venue_order_id=snap.venue_order_id,
        symbol=request.symbol,
        side=request.side,
        order_qty=request.qty,
        price=request.price,
        cum_qty=cum,
        avg_px=_avg_px(cum_offset, cost_offset, snap.filled, snap.cost),
        leaves_qty=_leaves(status, request.qty, cum),
        ord_status=status,
        venue_ts_ns=ts_ns or snap.ts_ns,
    )


def submit_rejected_exec(
    venue: str, order: PlaceOrder | ReplaceOnVenue, failure: Failure
) -> ExecReport:
    """A submit the exchange refused (`failure` kind rejected or duplicate: it answered,
    the order never reached the book), as the OMS's "rejected" (``<ClOrdID>:rejected``).
    A duplicate's text says "duplicate", which the OMS reads as a refused resend."""
    text = failure.reason
    if failure.kind == "duplicate" and "duplicate" not in text.lower():
        text = f"duplicate order: {text}"
    return ExecReport(
        venue=venue,
        exec_id=exec_id_rejected(order.cl_ord_id),
        kind="rejected",
        cl_ord_id=order.cl_ord_id,
        symbol=order.symbol,
        side=order.side,
        order_qty=order.qty,
        price=order.price,
        ord_status=OrderStatus.REJECTED,
        text=text,
        reject_reason=reject_reason(failure),
    )


def cancel_rejected_exec(
    venue: str, request: CancelOnVenue | ReplaceOnVenue, text: str, *, venue_order_id: str = ""
) -> ExecReport:
    """A cancel (or the cancel step of a replace) the exchange refused, e.g. -2011 for an
    order already done: "cancel_rejected" with the FIX side's exec id."""
    return ExecReport(
        venue=venue,
        exec_id=exec_id_cancel_rejected(request.cl_ord_id),
        kind="cancel_rejected",
        cl_ord_id=request.cl_ord_id,
        orig_cl_ord_id=request.orig_cl_ord_id,
        venue_order_id=venue_order_id,
        symbol=request.symbol,
        side=request.side,
        text=text,
    )


def fill_execs(
    venue: str,
    trades: Sequence[Mapping[str, Any]],
    *,
    cl_ord_id: str,
    venue_order_id: str,
    order_qty: Decimal,
    cum_offset: Decimal = ZERO,
    cost_offset: Decimal = ZERO,
) -> list[ExecReport]:
    """One "fill" per distinct trade of `trades`, which must be ALL the trades of venue
    order `venue_order_id` so far (in any order, repeats allowed: the FULL answer's fills,
    fetch_my_trades, WebSocket trades), in trade id order, each with the exact cum_qty
    `cum_offset` + the running sum. A trade of another order, or two different trades
    under one id, is a ValueError."""
    by_id: dict[str, rd.TradeView] = {}
    for trade in trades:
        fill = rd.trade_view(trade)
        if fill.order_id and fill.order_id != venue_order_id:
            raise ValueError(
                f"trade {fill.trade_id} is of order {fill.order_id}, not {venue_order_id}"
            )
        seen = by_id.get(fill.trade_id)
        if seen is None:
            by_id[fill.trade_id] = fill
            continue
        if (seen.qty, seen.px) != (fill.qty, fill.px):
            raise ValueError(f"trade {fill.trade_id} seen as {seen.qty}@{seen.px} and "
                             f"{fill.qty}@{fill.px}")  # fmt: skip
        by_id[fill.trade_id] = seen.merged(fill)
    cum, cost = cum_offset, cost_offset
    _check_offsets(cum_offset, cost_offset)
    out: list[ExecReport] = []
    for fill in sorted(by_id.values(), key=rd.trade_sort_key):
        cum += fill.qty
        cost += fill.qty * fill.px
        out.append(_fill_report(venue, fill, venue_order_id, cl_ord_id, order_qty, cum, cost))
    return out


def ws_fill_exec(
    venue: str,
    trade: Mapping[str, Any],
    *,
    cl_ord_id: str,
    order_qty: Decimal,
    cum_offset: Decimal = ZERO,
    cost_offset: Decimal = ZERO,
) -> ExecReport | None:
    """One trade of ccxt.pro's watch_my_trades on Binance as a "fill": its `info` is the
    raw executionReport, whose 'z' (cumulative filled quantity of the venue order) and
    'Z' (cumulative quote) make cum_qty and avg_px exact. None when the trade carries no
    such cumulative: the caller then fetches all the order's trades (`fill_execs`)."""
    info = rd.info_of(trade)
    if info.get("x") != "TRADE":
        return None
    venue_cum, venue_cost = rd.num(info, "z"), rd.num(info, "Z")
    if venue_cum is None or venue_cost is None:
        return None
    fill = rd.trade_view(trade)
    if not fill.order_id:
        return None
    _check_offsets(cum_offset, cost_offset)
    return _fill_report(
        venue,
        fill,
        fill.order_id,
        cl_ord_id,
        order_qty,
        cum_offset + venue_cum,
        cost_offset + venue_cost,
    )


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
        avg_px=_avg_px(cum_offset, cost_offset, snap.filled, snap.cost),
        leaves_qty=_leaves(status, total, cum),
    )


def trade_fee(trade: Mapping[str, Any]) -> tuple[Decimal, str] | None:
    """(commission, asset) of one ccxt trade, raw-first (REST and FULL fill commission /
    commissionAsset, executionReport n / N), else ccxt's unified fee; None if it has none."""
    info = rd.info_of(trade)
    ws = info.get("e") == "executionReport"
    cost, asset = (
        rd.num(info, "n" if ws else "commission"),
        info.get("N" if ws else "commissionAsset"),
    )
    if cost is None or not isinstance(asset, str) or not asset:
        fee = trade.get("fee")
        if not isinstance(fee, Mapping):
            return None
        cost, asset = rd.num(fee, "cost"), fee.get("currency")
        if cost is None or not isinstance(asset, str) or not asset:
            return None
    return cost, asset


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
    cannot be told apart in a balance: a ValueError."""
    bases: dict[str, str] = {}
    for symbol in symbols:
        base = base_asset(symbol)
        if base in bases:
            raise ValueError(f"{bases[base]} and {symbol} share base asset {base}")
        bases[base] = symbol
    totals = rd.raw_totals(balance)
    out: list[PositionView] = []
    for base, symbol in bases.items():
        total = totals.get(base) if totals is not None else rd.unified_total(balance, base)
        qty = (total or ZERO) - baseline.get(base, ZERO)
        out.append(PositionView(venue=venue, symbol=symbol, qty=qty))
    return out


# ------------------------------------------------------------------------------- internals


def _check_offsets(cum_offset: Decimal, cost_offset: Decimal) -> None:
    if cum_offset < 0 or cost_offset < 0 or (cum_offset > 0) != (cost_offset > 0):
        raise ValueError(
            f"cum_offset {cum_offset} and cost_offset {cost_offset}: both 0, or both positive "
            "(what the earlier venue orders of a replaced order filled, and what it cost)"
        )


def _avg_px(
    cum_offset: Decimal, cost_offset: Decimal, filled: Decimal, cost: Decimal | None
) -> Decimal:
    """Average price over the whole order; 0 when nothing filled or the cost is unknown."""
    _check_offsets(cum_offset, cost_offset)
    total = cum_offset + filled
    if not total or (filled and cost is None):
        return ZERO
    return (cost_offset + (cost or ZERO)) / total


def _leaves(status: OrderStatus, order_qty: Decimal, cum: Decimal) -> Decimal:
    return ZERO if status in TERMINAL else max(order_qty - cum, ZERO)


def _order_report(
    venue: str,
    kind: ExecKind,
    exec_id: str,
    snap: rd.OrderView,
    cl_ord_id: str,
    order_qty: Decimal,
    cum: Decimal,
    avg: Decimal,
    status: OrderStatus,
    ts_ns: int,
    text: str,
) -> ExecReport:
    return ExecReport(
        venue=venue,
        exec_id=exec_id,
        kind=kind,
        cl_ord_id=cl_ord_id,
        venue_order_id=snap.venue_order_id,
        symbol=snap.symbol,
        side=snap.side,
        order_qty=order_qty,
        price=snap.price,
        cum_qty=cum,
        avg_px=avg,
        leaves_qty=_leaves(status, order_qty, cum),
        ord_status=status,
        text=text,
        venue_ts_ns=ts_ns,
    )


def _fill_report(
    venue: str,
    fill: rd.TradeView,
    venue_order_id: str,
    cl_ord_id: str,
    order_qty: Decimal,
    cum: Decimal,
    cost: Decimal,
) -> ExecReport:
    status = OrderStatus.FILLED if cum >= order_qty else OrderStatus.PARTIALLY_FILLED
    return ExecReport(
        venue=venue,
        exec_id=exec_id_fill(venue_order_id, fill.trade_id),
        kind="fill",
        cl_ord_id=cl_ord_id,
        venue_order_id=venue_order_id,
        symbol=fill.symbol,
        side=fill.side,
        order_qty=order_qty,
        last_qty=fill.qty,
        last_px=fill.px,
        cum_qty=cum,
        avg_px=cost / cum,
        leaves_qty=max(order_qty - cum, ZERO),
        ord_status=status,
        venue_ts_ns=fill.ts_ns,
    )
