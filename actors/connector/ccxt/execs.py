"""Executions from what the exchange says (pure, no I/O): one ccxt order snapshot's
events (accepted, then cancelled / expired, or rejected), an order's fills from ALL its
trades with exact cumulative quantities, a WebSocket trade's fill (cum from the event's
'z'), a replace's "replaced", a refused submit or cancel. Exec ids (`mapping.exec_id_*`)
are the same whichever source an event came from, so the OMS applies each once; the
venue-numbered ones carry the order's `scope` (`Intent.id_scope`: its symbol, since
Binance numbers orders and trades per symbol; nothing for an older build's order).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from actors.connector.ccxt import reading as rd
from actors.connector.ccxt.errors import Failure, reject_reason
from actors.connector.ccxt.intents import Intent
from actors.connector.ccxt.mapping import (
    ZERO,
    exec_id_cancel_rejected,
    exec_id_cancelled,
    exec_id_expired,
    exec_id_fill,
    exec_id_new,
    exec_id_rejected,
    exec_id_replaced,
    order_status,
)
from protocol.messages import (
    CancelOnVenue,
    ExecKind,
    ExecReport,
    OrderStatus,
    PlaceOrder,
    ReplaceOnVenue,
    Side,
)


def order_execs(
    venue: str,
    order: Mapping[str, Any],
    *,
    scope: str,
    cl_ord_id: str,
    order_qty: Decimal,
    cum_offset: Decimal = ZERO,
    cost_offset: Decimal = ZERO,
    ts_ns: int = 0,
) -> list[ExecReport]:
    """The non-fill events one ccxt order snapshot proves, in the order to apply them:
    "accepted" when it has an id (it reached the book), then "cancelled" / "expired" for
    those final states (ids prefixed by `scope`: the order's `Intent.id_scope`); a
    "rejected" one is only "rejected" (``<ClOrdID>:rejected``, the
    id a refused submit gets too). Each carries cum_qty = `cum_offset` + the order's
    filled quantity, leaves (0 once final) and the average price over the whole order.
    Fills are not derived here (`fill_execs`, `ws_fill_exec`): send them before the final
    event, whose cum_qty would otherwise make the OMS count them as missed."""
    snap = rd.order_view(order)
    cum = cum_offset + snap.filled
    status = order_status(order.get("status"), cum)
    avg = rd.avg_px(cum_offset, cost_offset, snap.filled, snap.cost)
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
    out = [report("accepted", exec_id_new(vid, scope))]
    if status is OrderStatus.CANCELLED:
        out.append(report("cancelled", exec_id_cancelled(vid, scope)))
    elif status is OrderStatus.EXPIRED:
        out.append(report("expired", exec_id_expired(vid, scope)))
    return out


def snapshot_execs(
    venue: str,
    order: Mapping[str, Any],
    *,
    scope: str,
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
        venue, order, scope=scope, cl_ord_id=cl_ord_id, order_qty=order_qty,
        cum_offset=cum_offset, cost_offset=cost_offset, ts_ns=ts_ns,
    )  # fmt: skip
    snap = rd.order_view(order)
    trades = order.get("trades") or []
    if not isinstance(trades, list) or not snap.venue_order_id:
        return events if not snap.filled else None
    fills = fill_execs(
        venue, trades, scope=scope, cl_ord_id=cl_ord_id, venue_order_id=snap.venue_order_id,
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
    scope: str,
    cum_offset: Decimal,
    cost_offset: Decimal,
    ts_ns: int = 0,
) -> ExecReport:
    """The "replaced" event of `request` once its new venue order (`new_order`, carrying
    the remaining quantity) is on the book: ClOrdID / OrigClOrdID of the request, the new
    venue order id, the request's total qty and price; `cum_offset` / `cost_offset`: what
    the venue orders before it filled (quantity, quote amount). It is the order as of the
    replace, live with that cum: the new order's own fills (it may trade at once) follow
    as fills, which a cum counting them already would make the OMS take as missed."""
    return _replaced(
        venue, new_order, scope, request.cl_ord_id, request.orig_cl_ord_id, request.symbol,
        request.side, request.qty, request.price, cum_offset, cost_offset, ts_ns,
    )  # fmt: skip


def replaced_exec_of(venue: str, new: Intent, new_order: Mapping[str, Any]) -> ExecReport:
    """`replaced_exec` of a replace settled from its new order's intent (`new`, which
    carries the replace's client ids, total qty and offsets) and the new order as the
    exchange has it: a replace whose "replaced" a connector restart cut off."""
    snap = rd.order_view(new_order)
    return _replaced(
        venue, new_order, new.id_scope, new.cl_ord_id, new.orig_cl_ord_id, new.symbol,
        Side(new.side),
        new.order_qty, snap.price, new.offset, new.cost, 0,
    )  # fmt: skip


def _replaced(
    venue: str,
    new_order: Mapping[str, Any],
    scope: str,
    cl_ord_id: str,
    orig_cl_ord_id: str,
    symbol: str,
    side: Side,
    qty: Decimal,
    price: Decimal | None,
    cum_offset: Decimal,
    cost_offset: Decimal,
    ts_ns: int,
) -> ExecReport:
    snap = rd.order_view(new_order)
    if not snap.venue_order_id:
        raise ValueError("the new order of a replace has no venue order id")
    cum = cum_offset
    status = order_status("open", cum)
    return ExecReport(
        venue=venue,
        exec_id=exec_id_replaced(snap.venue_order_id, scope),
        kind="replaced",
        cl_ord_id=cl_ord_id,
        orig_cl_ord_id=orig_cl_ord_id,
        venue_order_id=snap.venue_order_id,
        symbol=symbol,
        side=side,
        order_qty=qty,
        price=price,
        cum_qty=cum,
        avg_px=rd.avg_px(cum_offset, cost_offset, Decimal(0), Decimal(0)),
        leaves_qty=rd.leaves(status, qty, cum),
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


def replace_rejected_exec(venue: str, new: Intent, text: str) -> ExecReport:
    """A replace settled as not done (its new order never reached the book), from the new
    order's intent: the "cancel_rejected" of the replace, as `cancel_rejected_exec`."""
    return ExecReport(
        venue=venue,
        exec_id=exec_id_cancel_rejected(new.cl_ord_id),
        kind="cancel_rejected",
        cl_ord_id=new.cl_ord_id,
        orig_cl_ord_id=new.orig_cl_ord_id,
        symbol=new.symbol,
        side=Side(new.side),
        text=text,
    )


def fill_execs(
    venue: str,
    trades: Sequence[Mapping[str, Any]],
    *,
    scope: str,
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
    rd.check_offsets(cum_offset, cost_offset)
    out: list[ExecReport] = []
    for fill in sorted(by_id.values(), key=rd.trade_sort_key):
        cum += fill.qty
        cost += fill.qty * fill.px
        out.append(
            _fill_report(venue, fill, scope, venue_order_id, cl_ord_id, order_qty, cum, cost)
        )
    return out


def ws_fill_exec(
    venue: str,
    trade: Mapping[str, Any],
    *,
    scope: str,
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
    rd.check_offsets(cum_offset, cost_offset)
    return _fill_report(
        venue,
        fill,
        scope,
        fill.order_id,
        cl_ord_id,
        order_qty,
        cum_offset + venue_cum,
        cost_offset + venue_cost,
    )


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
        leaves_qty=rd.leaves(status, order_qty, cum),
        ord_status=status,
        text=text,
        venue_ts_ns=ts_ns,
    )


def _fill_report(
    venue: str,
    fill: rd.TradeView,
    scope: str,
    venue_order_id: str,
    cl_ord_id: str,
    order_qty: Decimal,
    cum: Decimal,
    cost: Decimal,
) -> ExecReport:
    status = OrderStatus.FILLED if cum >= order_qty else OrderStatus.PARTIALLY_FILLED
    fee, fee_asset = fill.fee or (ZERO, "")
    return ExecReport(
        venue=venue,
        exec_id=exec_id_fill(venue_order_id, fill.trade_id, scope),
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
        fee=fee,
        fee_asset=fee_asset,
    )
