"""ccxt <-> our messages, on fixtures ccxt's own binance parsers produced from raw
Binance spot JSON (tests/connector/ccxt/binance.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.connector.ccxt import execs as cx
from actors.connector.ccxt import mapping as cm
from actors.connector.ccxt.errors import classify
from protocol.messages import (
    CancelOnVenue,
    OrderStatus,
    OrdType,
    PlaceOrder,
    ReplaceOnVenue,
    Side,
    TimeInForce,
)
from tests.connector.ccxt import binance as bn

D = Decimal
VENUE = "binance-local"


def limit(tif: TimeInForce = TimeInForce.DAY, qty: str = "0.1", price: str = "50000") -> PlaceOrder:
    return PlaceOrder(
        cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=D(qty),
        order_type=OrdType.LIMIT, price=D(price), tif=tif,
    )  # fmt: skip


def rest_order(**fields: Any) -> dict[str, Any]:
    """GET /api/v3/order of a resting limit order, `fields` changed."""
    raw = {
        "symbol": "BTCUSDT", "orderId": 28, "orderListId": -1, "clientOrderId": "c1",
        "price": "50000.00000000", "origQty": "0.10000000", "executedQty": "0.00000000",
        "cummulativeQuoteQty": "0.00000000", "status": "NEW", "timeInForce": "GTC",
        "type": "LIMIT", "side": "BUY", "stopPrice": "0.00000000", "icebergQty": "0.00000000",
        "time": 1700000000000, "updateTime": 1700000000500, "isWorking": True,
        "workingTime": 1700000000000, "origQuoteOrderQty": "0.00000000",
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }  # fmt: skip
    raw.update(fields)
    return bn.parse_order(raw)


FULL_MARKET = {
    "symbol": "BTCUSDT", "orderId": 5403233939, "orderListId": -1, "clientOrderId": "m1",
    "transactTime": 1617151923742, "price": "0.00000000", "origQty": "0.00050000",
    "executedQty": "0.00050000", "origQuoteOrderQty": "0.00000000",
    "cummulativeQuoteQty": "29.47081500", "status": "FILLED", "timeInForce": "GTC",
    "type": "MARKET", "side": "BUY", "workingTime": 1617151923742,
    "selfTradePreventionMode": "NONE",
    "fills": [
        {"price": "58941.63000000", "qty": "0.00030000", "commission": "0.00000000",
         "commissionAsset": "BNB", "tradeId": 737466632},
        {"price": "58941.63000000", "qty": "0.00020000", "commission": "0.00000000",
         "commissionAsset": "BNB", "tradeId": 737466631},
    ],
}  # fmt: skip


def my_trade(trade_id: int, qty: str, price: str, order_id: int = 28) -> dict[str, Any]:
    """A GET /api/v3/myTrades row."""
    return {
        "symbol": "BTCUSDT", "id": trade_id, "orderId": order_id, "orderListId": -1,
        "price": price, "qty": qty, "quoteQty": str(D(qty) * D(price)), "commission": "0",
        "commissionAsset": "BNB", "time": 1700000001000 + trade_id, "isBuyer": True,
        "isMaker": True, "isBestMatch": True,
    }  # fmt: skip


def execution_report(**fields: Any) -> dict[str, Any]:
    """A spot user-data executionReport for order 28 (c1), NEW; `fields` changed."""
    event = {
        "e": "executionReport", "E": 1700000000001, "s": "BTCUSDT", "c": "c1", "S": "BUY",
        "o": "LIMIT", "f": "GTC", "q": "0.10000000", "p": "50000.00000000",
        "P": "0.00000000", "F": "0.00000000", "g": -1, "C": "", "x": "NEW", "X": "NEW",
        "r": "NONE", "i": 28, "l": "0.00000000", "z": "0.00000000", "L": "0.00000000",
        "n": "0", "N": None, "T": 1700000000000, "t": -1, "v": 3, "I": 8641984, "w": True,
        "m": False, "M": False, "O": 1700000000000, "Z": "0.00000000", "Y": "0.00000000",
        "Q": "0.00000000", "W": 1700000000000, "V": "EXPIRE_MAKER",
    }  # fmt: skip
    event.update(fields)
    return event


def ws_trade(trade_id: int, last: str, cum: str, price: str, cum_quote: str) -> dict[str, Any]:
    status = "FILLED" if D(cum) == D("0.1") else "PARTIALLY_FILLED"
    return execution_report(
        x="TRADE", X=status, l=last, z=cum, L=price, t=trade_id, Z=cum_quote,
        Y=str(D(last) * D(price)), m=True, n="0.00000010", N="BTC",
    )  # fmt: skip


# ------------------------------------------------------------------------------- outbound


def test_limit_order_args_become_binance_new_order_fields() -> None:
    """DAY becomes GTC; ccxt binance sends our ClOrdID as newClientOrderId, FULL answers,
    and the exact quantity and price strings."""
    args = cm.create_args(limit(TimeInForce.DAY, qty="0.12345", price="50000.01"))
    assert (args.symbol, args.type, args.side) == ("BTC/USDT", "limit", "buy")
    assert args.params == {"clientOrderId": "c1", "newOrderRespType": "FULL", "timeInForce": "GTC"}
    request = bn.rest().create_order_request(
        args.symbol, args.type, args.side, args.amount, args.price, dict(args.params)
    )
    assert request == {
        "symbol": "BTCUSDT", "side": "BUY", "newClientOrderId": "c1", "newOrderRespType": "FULL",
        "type": "LIMIT", "quantity": "0.12345", "price": "50000.01", "timeInForce": "GTC",
    }  # fmt: skip


@pytest.mark.parametrize("tif", [TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK])
def test_other_time_in_force_values_pass_as_they_are(tif: TimeInForce) -> None:
    assert cm.create_args(limit(tif)).params["timeInForce"] == tif.value


def test_market_order_has_no_price_and_no_time_in_force() -> None:
    """With a price ccxt binance would send quoteOrderQty = amount * price instead."""
    order = PlaceOrder(
        cl_ord_id="m1", symbol="BTC/USDT", side=Side.SELL, qty=D("0.5"),
        order_type=OrdType.MARKET, price=D("50000"), tif=TimeInForce.IOC,
    )  # fmt: skip
    args = cm.create_args(order)
    assert (args.type, args.side, args.price) == ("market", "sell", None)
    assert "timeInForce" not in args.params
    request = bn.rest().create_order_request(
        args.symbol, args.type, args.side, args.amount, args.price, dict(args.params)
    )
    assert request["quantity"] == "0.5" and "quoteOrderQty" not in request
    assert request["type"] == "MARKET" and "timeInForce" not in request


def test_replace_sends_the_amount_given_under_its_own_cl_ord_id() -> None:
    replace = ReplaceOnVenue(
        cl_ord_id="c1-r1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY,
        qty=D("1"), order_type=OrdType.LIMIT, price=D("49000"),
    )  # fmt: skip
    args = cm.create_args(replace, amount=D("0.7"))
    assert args.amount == 0.7 and args.price == 49000.0
    assert args.params["clientOrderId"] == "c1-r1"


def test_create_args_refuses_what_cannot_be_sent_exactly() -> None:
    with pytest.raises(ValueError, match="positive"):
        cm.create_args(limit(), amount=D("0"))
    with pytest.raises(ValueError, match="exact float"):
        cm.create_args(limit(qty="0.1234567890123456789"))
    with pytest.raises(ValueError, match="no price"):
        cm.create_args(PlaceOrder(
            cl_ord_id="c", symbol="BTC/USDT", side=Side.BUY, qty=D(1), order_type=OrdType.LIMIT
        ))  # fmt: skip


@settings(deadline=None)
@given(
    steps=st.integers(min_value=1, max_value=900_000_000),
    ticks=st.integers(min_value=1, max_value=100_000_000),
)
def test_any_quantity_and_price_on_the_grid_reach_binance_unchanged(steps: int, ticks: int) -> None:
    """Decimal -> float -> ccxt's amount_to_precision / price_to_precision gives back the
    very decimal for every multiple of BTC/USDT's step and tick."""
    qty, price = D(steps) * D("0.00001"), D(ticks) * D("0.01")
    args = cm.create_args(limit(qty=str(qty), price=str(price)))
    request = bn.rest().create_order_request(
        args.symbol, args.type, args.side, args.amount, args.price, dict(args.params)
    )
    assert D(request["quantity"]) == qty and D(request["price"]) == price


def test_ccxt_truncates_an_amount_off_the_step_so_limits_must_be_checked_first() -> None:
    """ccxt's amount_to_precision truncates silently: 0.123456 would go out as 0.12345
    (check_order refuses it: tests/connector/ccxt/test_limits.py)."""
    args = cm.create_args(limit(qty="0.123456"))
    request = bn.rest().create_order_request(
        args.symbol, args.type, args.side, args.amount, args.price, dict(args.params)
    )
    assert request["quantity"] == "0.12345"


def test_cancel_names_the_order_by_its_client_id_and_the_cancel_by_ours() -> None:
    """ccxt binance's cancel_order(None, symbol, params) sends origClientOrderId instead of
    orderId, and our cancel's id as newClientOrderId."""
    sent: list[dict[str, Any]] = []
    exchange = bn.rest()

    def delete_order(params: dict[str, Any]) -> dict[str, Any]:
        sent.append(params)
        return {"symbol": "BTCUSDT", "origClientOrderId": "c1", "orderId": 28,
                "orderListId": -1, "clientOrderId": "x1", "transactTime": 1700000002000,
                "price": "50000.00000000", "origQty": "0.10000000",
                "executedQty": "0.00000000", "cummulativeQuoteQty": "0.00000000",
                "status": "CANCELED", "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
                "selfTradePreventionMode": "NONE"}  # fmt: skip

    request = CancelOnVenue(
        cl_ord_id="x1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=D("0.1")
    )
    exchange.privateDeleteOrder = delete_order
    try:
        answer = exchange.cancel_order(None, "BTC/USDT", cm.cancel_params(request))
    finally:
        del exchange.privateDeleteOrder
    assert sent == [{"symbol": "BTCUSDT", "origClientOrderId": "c1", "newClientOrderId": "x1"}]
    assert answer["clientOrderId"] == "x1"  # ccxt's: the cancel's id
    assert cm.client_order_id(answer) == "c1"  # ours: the order's


# -------------------------------------------------------------------------- order events


def test_full_answer_of_a_filled_market_order_is_accepted_with_its_exact_cum() -> None:
    order = bn.parse_order(FULL_MARKET)
    [accepted] = cx.order_execs(VENUE, order, scope="", cl_ord_id="m1", order_qty=D("0.0005"))
    assert accepted.exec_id == "5403233939:new" and accepted.kind == "accepted"
    assert accepted.venue_order_id == "5403233939" and accepted.symbol == "BTC/USDT"
    assert accepted.cum_qty == D("0.0005") and accepted.leaves_qty == 0
    assert accepted.avg_px == D("58941.63")
    assert accepted.price is None  # ccxt put the average there; a market order has none
    assert accepted.ord_status is OrderStatus.FILLED and accepted.side is Side.BUY
    assert accepted.venue_ts_ns == 1617151923742 * 1_000_000


def test_resting_order_is_accepted_with_all_of_it_left() -> None:
    [accepted] = cx.order_execs(VENUE, rest_order(), scope="", cl_ord_id="c1", order_qty=D("0.1"))
    assert accepted.exec_id == "28:new" and accepted.ord_status is OrderStatus.ACCEPTED
    assert (accepted.cum_qty, accepted.leaves_qty, accepted.avg_px) == (0, D("0.1"), 0)
    assert accepted.price == D("50000")


def test_cancel_answer_proves_acceptance_then_the_cancel_with_what_filled() -> None:
    order = rest_order(
        status="CANCELED", executedQty="0.02000000", cummulativeQuoteQty="999.80000000",
        clientOrderId="x1", origClientOrderId="c1",
    )  # fmt: skip
    accepted, cancelled = cx.order_execs(VENUE, order, scope="", cl_ord_id="c1", order_qty=D("0.1"))
    assert [accepted.exec_id, cancelled.exec_id] == ["28:new", "28:cancelled"]
    assert cancelled.kind == "cancelled" and cancelled.ord_status is OrderStatus.CANCELLED
    assert (cancelled.cum_qty, cancelled.leaves_qty) == (D("0.02"), 0)
    assert cancelled.avg_px == D("49990")


@pytest.mark.parametrize("raw_status", ["EXPIRED", "EXPIRED_IN_MATCH"])
def test_expired_order_is_accepted_then_expired(raw_status: str) -> None:
    order = rest_order(status=raw_status, timeInForce="IOC")
    kinds = [
        r.kind for r in cx.order_execs(VENUE, order, scope="", cl_ord_id="c1", order_qty=D("0.1"))
    ]
    assert kinds == ["accepted", "expired"]


def test_order_without_id_proves_nothing() -> None:
    assert (
        cx.order_execs(
            VENUE, {"id": None, "status": "open"}, scope="", cl_ord_id="c", order_qty=D(1)
        )
        == []
    )


def test_rest_quantities_come_from_the_raw_strings_not_the_floats() -> None:
    """A quantity a float cannot hold (18 significant digits) is still exact."""
    order = rest_order(
        origQty="9000.000000000000000", executedQty="1234.56789012345678",
        cummulativeQuoteQty="1234.56789012345678",
    )  # fmt: skip
    assert D(repr(order["filled"])) != D("1234.56789012345678")  # what the float says
    [accepted] = cx.order_execs(VENUE, order, scope="", cl_ord_id="c1", order_qty=D("9000"))
    assert accepted.cum_qty == D("1234.56789012345678") and accepted.avg_px == 1


def test_without_raw_strings_the_unified_floats_are_read_through_their_repr() -> None:
    """A ccxt-shaped order of another exchange (no Binance info)."""
    order = {"id": "9", "symbol": "BTC/USDT", "side": "sell", "type": "limit", "price": 0.3,
             "amount": 0.3, "filled": 0.1, "cost": 0.03, "status": "open", "info": {}}  # fmt: skip
    vo = cm.venue_order(order, cl_ord_id="c9")
    assert (vo.order_qty, vo.cum_qty, vo.leaves_qty) == (D("0.3"), D("0.1"), D("0.2"))
    assert vo.avg_px == D("0.3") and vo.status is OrderStatus.PARTIALLY_FILLED


def test_websocket_events_give_the_same_exec_ids_as_rest() -> None:
    """NEW, a fill, then a cancel (whose 'c' is the cancel's id and 'C' the order's) as
    watch_orders delivers them: accepted 28:new, then 28:cancelled with the exact cum."""
    orders, _ = bn.ws_feed([
        execution_report(),
        ws_trade(7, last="0.03000000", cum="0.03000000", price="49999.00000000",
                 cum_quote="1499.97000000"),
        execution_report(x="CANCELED", X="CANCELED", c="x1", C="c1", z="0.03000000",
                         Z="1499.97000000", T=1700000003000),
    ])  # fmt: skip
    new, partial, cancelled = (
        cx.order_execs(VENUE, o, scope="", cl_ord_id="c1", order_qty=D("0.1")) for o in orders
    )
    assert [r.exec_id for r in new] == ["28:new"] and new[0].ord_status is OrderStatus.ACCEPTED
    assert partial[0].ord_status is OrderStatus.PARTIALLY_FILLED
    assert partial[0].leaves_qty == D("0.07")
    assert [r.exec_id for r in cancelled] == ["28:new", "28:cancelled"]
    assert cancelled[1].cum_qty == D("0.03") and cancelled[1].avg_px == D("49999")
    assert cancelled[1].venue_ts_ns == 1700000003000 * 1_000_000
    assert [cm.client_order_id(o) for o in orders] == ["c1", "c1", "c1"]
    rest_cancel = rest_order(status="CANCELED", executedQty="0.03", cummulativeQuoteQty="1499.97")
    from_rest = cx.order_execs(VENUE, rest_cancel, scope="", cl_ord_id="c1", order_qty=D("0.1"))
    assert [r.exec_id for r in from_rest] == ["28:new", "28:cancelled"]


def test_rejected_event_is_only_a_rejection_under_the_submit_rejection_id() -> None:
    orders, _ = bn.ws_feed([execution_report(x="REJECTED", X="REJECTED", r="INSUFFICIENT_BALANCE")])
    [rejected] = cx.order_execs(VENUE, orders[0], scope="", cl_ord_id="c1", order_qty=D("0.1"))
    assert rejected.kind == "rejected" and rejected.exec_id == "c1:rejected"
    assert rejected.text == "INSUFFICIENT_BALANCE" and rejected.leaves_qty == 0


def test_second_venue_order_of_a_replace_counts_what_the_first_filled() -> None:
    """The new venue order carries the remaining 0.06; the first filled 0.04 for 2000."""
    order = rest_order(origQty="0.06", executedQty="0.01", cummulativeQuoteQty="490", orderId=29)
    [accepted] = cx.order_execs(
        VENUE, order, scope="", cl_ord_id="c1-r1", order_qty=D("0.1"), cum_offset=D("0.04"),
        cost_offset=D("2000"),
    )  # fmt: skip
    assert accepted.cum_qty == D("0.05") and accepted.leaves_qty == D("0.05")
    assert accepted.avg_px == D("49800")
    with pytest.raises(ValueError, match="cost_offset"):
        cx.order_execs(
            VENUE, order, scope="", cl_ord_id="c", order_qty=D("0.1"), cum_offset=D("0.04")
        )


def test_full_answer_gives_acceptance_then_its_fills_then_the_end() -> None:
    """An IOC limit order that filled partly and expired: accepted, the fills of the FULL
    answer in trade order, expired with the cum of the last fill."""
    raw = {
        **FULL_MARKET, "type": "LIMIT", "timeInForce": "IOC", "price": "58942.00000000",
        "origQty": "0.00080000", "status": "EXPIRED",
    }  # fmt: skip
    events = cx.snapshot_execs(
        VENUE, bn.parse_order(raw), scope="", cl_ord_id="m1", order_qty=D("0.0008")
    )
    assert events is not None
    assert [(e.kind, e.exec_id) for e in events] == [
        ("accepted", "5403233939:new"),
        ("fill", "5403233939:t737466631"),
        ("fill", "5403233939:t737466632"),
        ("expired", "5403233939:expired"),
    ]
    assert [e.cum_qty for e in events] == [D("0.0005"), D("0.0002"), D("0.0005"), D("0.0005")]
    assert events[2].leaves_qty == D("0.0003") and events[3].leaves_qty == 0
    assert events[3].avg_px == events[2].avg_px == D("58941.63")


def test_snapshot_without_its_fills_asks_for_the_trades() -> None:
    """A RESULT answer (no fills) of a filled order: None; a resting one: accepted."""
    result = {k: v for k, v in FULL_MARKET.items() if k != "fills"}
    assert cx.snapshot_execs(VENUE, bn.parse_order(result), scope="", cl_ord_id="m1",
                             order_qty=D("0.0005")) is None  # fmt: skip
    partial = {**FULL_MARKET, "fills": FULL_MARKET["fills"][:1]}
    assert cx.snapshot_execs(VENUE, bn.parse_order(partial), scope="", cl_ord_id="m1",
                             order_qty=D("0.0005")) is None  # fmt: skip
    resting = cx.snapshot_execs(VENUE, rest_order(), scope="", cl_ord_id="c1", order_qty=D("0.1"))
    assert resting is not None and [e.exec_id for e in resting] == ["28:new"]


def test_replaced_exec_carries_the_request_and_the_new_venue_order() -> None:
    request = ReplaceOnVenue(
        cl_ord_id="c1-r1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY,
        qty=D("0.1"), order_type=OrdType.LIMIT, price=D("49000"),
    )  # fmt: skip
    new = rest_order(orderId=29, clientOrderId="c1-r1", origQty="0.06", price="49000")
    report = cx.replaced_exec(
        VENUE, request, new, scope="", cum_offset=D("0.04"), cost_offset=D("2000")
    )
    assert report.exec_id == "29:replaced" and report.kind == "replaced"
    assert (report.cl_ord_id, report.orig_cl_ord_id) == ("c1-r1", "c1")
    assert (report.order_qty, report.price, report.cum_qty) == (D("0.1"), D("49000"), D("0.04"))
    assert report.leaves_qty == D("0.06") and report.avg_px == D("50000")


def test_replaced_exec_leaves_the_new_orders_own_fills_to_its_fills() -> None:
    """A new order that traded at once: "replaced" carries the cum as of the replace (the
    fills follow as fills; a cum counting them would make the OMS count them missed)."""
    request = ReplaceOnVenue(
        cl_ord_id="c1-r1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY,
        qty=D("0.1"), order_type=OrdType.LIMIT, price=D("51000"),
    )  # fmt: skip
    new = rest_order(
        orderId=30, clientOrderId="c1-r1", origQty="0.06", price="51000",
        executedQty="0.02", cummulativeQuoteQty="1020", status="PARTIALLY_FILLED",
    )  # fmt: skip
    report = cx.replaced_exec(
        VENUE, request, new, scope="", cum_offset=D("0.04"), cost_offset=D("2000")
    )
    assert (report.cum_qty, report.avg_px, report.leaves_qty) == (D("0.04"), D("50000"), D("0.06"))
    assert report.ord_status is OrderStatus.PARTIALLY_FILLED


def test_submit_refused_as_duplicate_becomes_a_duplicate_rejection() -> None:
    failure = classify(bn.raised(400, {"code": -2010, "msg": "Duplicate order sent."}))
    report = cx.submit_rejected_exec(VENUE, limit(), failure)
    assert report.exec_id == "c1:rejected" and report.kind == "rejected"
    assert report.reject_reason == "DUPLICATE_ORDER" and "duplicate" in report.text.lower()
    funds = classify(bn.raised(400, {"code": -2010, "msg": "Account has insufficient balance "
                                                           "for requested action."}))  # fmt: skip
    assert cx.submit_rejected_exec(VENUE, limit(), funds).reject_reason == "INSUFFICIENT_FUNDS"


def test_cancel_rejection_uses_the_fix_side_exec_id() -> None:
    request = CancelOnVenue(
        cl_ord_id="x1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=D("0.1")
    )
    report = cx.cancel_rejected_exec(VENUE, request, "Unknown order sent. (-2011)")
    assert (report.exec_id, report.kind, report.orig_cl_ord_id) == (
        "cxlrej:x1", "cancel_rejected", "c1",
    )  # fmt: skip


# ---------------------------------------------------------------------------------- fills


TRADES_28 = [  # order 28 (0.1 @ 50000 limit): three fills
    my_trade(101, "0.02000000", "50000.00000000"),
    my_trade(99, "0.03000000", "49999.00000000"),
    my_trade(1000, "0.05000000", "49998.50000000"),
]


def test_fills_come_in_trade_id_order_with_an_exact_running_cum() -> None:
    fills = cx.fill_execs(
        VENUE,
        bn.parse_trades(TRADES_28),
        scope="",
        cl_ord_id="c1",
        venue_order_id="28",
        order_qty=D("0.1"),
    )
    assert [f.exec_id for f in fills] == ["28:t99", "28:t101", "28:t1000"]
    assert [f.cum_qty for f in fills] == [D("0.03"), D("0.05"), D("0.1")]
    assert [f.leaves_qty for f in fills] == [D("0.07"), D("0.05"), 0]
    assert [f.ord_status for f in fills] == [OrderStatus.PARTIALLY_FILLED] * 2 + [
        OrderStatus.FILLED
    ]
    assert fills[1].avg_px == (D("0.03") * D("49999") + D("0.02") * D("50000")) / D("0.05")
    assert (fills[0].last_qty, fills[0].last_px, fills[0].side) == (D("0.03"), D("49999"), Side.BUY)


def test_full_answer_fills_and_fetched_trades_of_one_order_are_the_same_fills() -> None:
    """A FULL answer's fills carry no order id, side or time: merged with the same
    trades fetched later they give one fill each, with the fetched side and time."""
    order = bn.parse_order(FULL_MARKET)
    fetched = bn.parse_trades([
        my_trade(737466631, "0.00020000", "58941.63000000", order_id=5403233939),
        my_trade(737466632, "0.00030000", "58941.63000000", order_id=5403233939),
    ])  # fmt: skip
    kwargs: dict[str, Any] = dict(
        scope="", cl_ord_id="m1", venue_order_id="5403233939", order_qty=D("0.0005")
    )
    alone = cx.fill_execs(VENUE, order["trades"], **kwargs)
    merged = cx.fill_execs(VENUE, [*order["trades"], *fetched], **kwargs)
    assert [f.exec_id for f in alone] == [f.exec_id for f in merged] == [
        "5403233939:t737466631", "5403233939:t737466632",
    ]  # fmt: skip
    assert [f.cum_qty for f in merged] == [D("0.0002"), D("0.0005")]
    assert alone[0].side is None and merged[0].side is Side.BUY
    assert merged[0].venue_ts_ns == (1700000001000 + 737466631) * 1_000_000


@settings(deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2), min_size=3, max_size=12).filter(
    lambda picks: set(picks) == {0, 1, 2}
))  # fmt: skip
def test_any_order_and_repetition_of_the_trades_gives_the_same_fills(picks: list[int]) -> None:
    """Every permutation / duplication of one order's trades: the same execs, and the last
    cum is the sum of the distinct trades."""
    parsed = bn.parse_trades(TRADES_28)
    kwargs: dict[str, Any] = dict(scope="", cl_ord_id="c1", venue_order_id="28", order_qty=D("0.1"))
    expected = cx.fill_execs(VENUE, parsed, **kwargs)
    got = cx.fill_execs(VENUE, [parsed[i] for i in picks], **kwargs)
    assert got == expected
    assert got[-1].cum_qty == sum((f.last_qty for f in got), D(0)) == D("0.1")


def test_fills_refuse_a_trade_of_another_order_or_two_trades_under_one_id() -> None:
    kwargs: dict[str, Any] = dict(scope="", cl_ord_id="c1", venue_order_id="28", order_qty=D("0.1"))
    with pytest.raises(ValueError, match="of order 29"):
        cx.fill_execs(VENUE, bn.parse_trades([my_trade(5, "0.01", "1", order_id=29)]), **kwargs)
    twice = bn.parse_trades([my_trade(5, "0.01", "1"), my_trade(5, "0.02", "1")])
    with pytest.raises(ValueError, match="trade 5"):
        cx.fill_execs(VENUE, twice, **kwargs)


def test_fills_after_a_replace_continue_the_cum_and_cost_of_the_first_venue_order() -> None:
    trades = bn.parse_trades([my_trade(7, "0.01", "49000", order_id=29)])
    [fill] = cx.fill_execs(
        VENUE, trades, scope="", cl_ord_id="c1-r1", venue_order_id="29", order_qty=D("0.1"),
        cum_offset=D("0.04"), cost_offset=D("2000"),
    )  # fmt: skip
    assert fill.cum_qty == D("0.05") and fill.avg_px == D("49800")


def test_websocket_trade_carries_the_exact_cum_of_the_venue_order() -> None:
    """The same trade as a WebSocket fill and as a fetched one: same exec id, same cum."""
    _, [trade] = bn.ws_feed([
        execution_report(),
        ws_trade(99, last="0.03000000", cum="0.03000000", price="49999.00000000",
                 cum_quote="1499.97000000"),
    ])  # fmt: skip
    report = cx.ws_fill_exec(VENUE, trade, scope="", cl_ord_id="c1", order_qty=D("0.1"))
    assert report is not None
    [fetched] = cx.fill_execs(
        VENUE, bn.parse_trades([TRADES_28[1]]), scope="", cl_ord_id="c1", venue_order_id="28",
        order_qty=D("0.1"),
    )  # fmt: skip
    assert report.exec_id == fetched.exec_id == "28:t99"
    assert (report.cum_qty, report.avg_px, report.leaves_qty) == (D("0.03"), D("49999"), D("0.07"))
    assert (report.last_qty, report.last_px) == (fetched.last_qty, fetched.last_px)
    assert cm.client_order_id(trade) == "c1"


def test_a_trade_without_the_venue_cumulative_is_left_to_fill_execs() -> None:
    [fetched] = bn.parse_trades([TRADES_28[0]])
    assert cx.ws_fill_exec(VENUE, fetched, scope="", cl_ord_id="c1", order_qty=D("0.1")) is None
    _, [trade] = bn.ws_feed([ws_trade(5, "0.01", "0.01", "50000", "500")])
    del trade["info"]["z"]
    assert cx.ws_fill_exec(VENUE, trade, scope="", cl_ord_id="c1", order_qty=D("0.1")) is None


# --------------------------------------------------------------------- status and identity


@pytest.mark.parametrize(
    ("raw", "executed", "status"),
    [
        ("NEW", "0", OrderStatus.ACCEPTED),
        ("PARTIALLY_FILLED", "0.04", OrderStatus.PARTIALLY_FILLED),
        ("FILLED", "0.1", OrderStatus.FILLED),
        ("CANCELED", "0.04", OrderStatus.CANCELLED),
        ("EXPIRED", "0", OrderStatus.EXPIRED),
        ("REJECTED", "0", OrderStatus.REJECTED),
    ],
)
def test_venue_order_status_follows_the_ccxt_status(
    raw: str, executed: str, status: OrderStatus
) -> None:
    order = rest_order(
        status=raw, executedQty=executed, cummulativeQuoteQty=str(D(executed) * 50000)
    )
    vo = cm.venue_order(order, cl_ord_id="c1")
    assert vo.status is status and vo.cum_qty == D(executed) and vo.order_qty == D("0.1")
    assert vo.venue_order_id == "28" and vo.side is Side.BUY and vo.price == D("50000")
    assert vo.leaves_qty == (0 if status in cm.TERMINAL else D("0.1") - D(executed))
    assert vo.avg_px == (D(50000) if D(executed) else 0)


def test_venue_order_leaves_are_zero_once_final_and_the_rest_while_open() -> None:
    open_ = cm.venue_order(rest_order(status="PARTIALLY_FILLED", executedQty="0.04",
                                      cummulativeQuoteQty="2000"), cl_ord_id="c1")  # fmt: skip
    done = cm.venue_order(rest_order(status="CANCELED", executedQty="0.04",
                                     cummulativeQuoteQty="2000"), cl_ord_id="c1")  # fmt: skip
    assert (open_.leaves_qty, done.leaves_qty) == (D("0.06"), 0)


def test_venue_order_of_a_replaced_order_totals_both_venue_orders() -> None:
    order = rest_order(origQty="0.06", executedQty="0.01", cummulativeQuoteQty="490")
    vo = cm.venue_order(order, cl_ord_id="c1-r1", cum_offset=D("0.04"), cost_offset=D("2000"))
    assert (vo.order_qty, vo.cum_qty, vo.leaves_qty) == (D("0.1"), D("0.05"), D("0.05"))


def test_venue_order_of_an_unmapped_status_is_a_clear_error() -> None:
    order = rest_order(status="PENDING_CANCEL")
    assert order["status"] == "canceling"
    with pytest.raises(ValueError, match="'canceling' is not one of open, closed"):
        cm.venue_order(order, cl_ord_id="c1")


def test_market_venue_order_has_no_price() -> None:
    vo = cm.venue_order(bn.parse_order(FULL_MARKET), cl_ord_id="m1")
    assert vo.order_type is OrdType.MARKET and vo.price is None and vo.avg_px == D("58941.63")


def test_client_order_id_of_each_shape() -> None:
    assert cm.client_order_id(rest_order()) == "c1"
    assert cm.client_order_id(bn.parse_order(FULL_MARKET)) == "m1"
    assert cm.client_order_id(bn.parse_trades([TRADES_28[0]])[0]) == ""  # REST trades name none
    orders, _ = bn.ws_feed([execution_report(x="CANCELED", X="CANCELED", c="x1", C="c1")])
    assert cm.client_order_id(orders[0]) == "c1"
    assert cm.client_order_id({"info": {"c": "raw", "C": ""}}) == "raw"


# ------------------------------------------------------------------------------ positions

ACCOUNT = {
    "makerCommission": 10, "takerCommission": 10, "canTrade": True, "accountType": "SPOT",
    "updateTime": 1700000000000, "permissions": ["SPOT"], "uid": 1,
    "balances": [
        {"asset": "BTC", "free": "1.10000000", "locked": "0.02000000"},
        {"asset": "ETH", "free": "0.00000000", "locked": "0.00000000"},
        {"asset": "USDT", "free": "1000.50000000", "locked": "0.00000000"},
    ],
}  # fmt: skip


def test_positions_are_base_asset_totals_minus_the_baseline() -> None:
    balance = bn.fetch_balance(ACCOUNT)
    views = cm.positions_from_balance(
        VENUE, balance, ["BTC/USDT", "ETH/USDT"], {"BTC": D("1"), "USDT": D("1000")}
    )
    assert [(v.symbol, v.qty) for v in views] == [("BTC/USDT", D("0.12")), ("ETH/USDT", 0)]
    assert all(v.venue == VENUE for v in views)


def test_a_flat_position_reads_0_not_the_balance_exponent() -> None:
    """The demo's ETH: a balance of "1000.00000000" against a baseline of 1000 is flat,
    shown "0" by `tradepulse positions` (VENUE_QTY), not "0E-8"."""
    balance = bn.fetch_balance(ACCOUNT)
    balance["info"]["balances"][1] = {"asset": "ETH", "free": "1000.00000000", "locked": "0"}
    [eth] = cm.positions_from_balance(VENUE, balance, ["ETH/USDT"], {"ETH": D("1000")})
    assert str(eth.qty) == "0" and eth.model_dump(mode="json")["qty"] == "0"


def test_positions_without_raw_balances_use_the_unified_totals() -> None:
    """A WebSocket balance: its raw message lists only what changed."""
    balance = bn.fetch_balance(ACCOUNT)
    balance["info"] = {"e": "outboundAccountPosition", "B": [{"a": "USDT", "f": "1", "l": "0"}]}
    [btc, sol] = cm.positions_from_balance(VENUE, balance, ["BTC/USDT", "SOL/USDT"], {"SOL": D(2)})
    assert (btc.qty, sol.qty) == (D("1.12"), D(-2))


def test_trade_fee_is_read_from_every_trade_shape() -> None:
    """The commission of a buy charged in BTC is what the BTC balance lacks of the fill."""
    rest = bn.parse_trades([{**TRADES_28[0], "commission": "0.00002000", "commissionAsset": "BTC"}])
    assert cm.trade_fee(rest[0]) == (D("0.00002"), "BTC")
    full = bn.parse_order(FULL_MARKET)["trades"][0]
    assert cm.trade_fee(full) == (D("0"), "BNB")
    _, [ws] = bn.ws_feed([ws_trade(5, "0.01", "0.01", "50000", "500")])
    assert cm.trade_fee(ws) == (D("0.0000001"), "BTC")
    unified = {"id": "1", "info": {}, "fee": {"cost": 0.5, "currency": "USDT"}}
    assert cm.trade_fee(unified) == (D("0.5"), "USDT")
    assert cm.trade_fee({"id": "1", "info": {}, "fee": None}) is None
    assert cm.trade_fee({"id": "1", "info": {}, "fee": {"cost": None, "currency": None}}) is None


def test_each_fill_carries_its_trades_fee_from_every_source() -> None:
    """The fill of a trade carries its commission and asset whichever way it came: a
    myTrades row (commission / commissionAsset), a FULL create answer's fill, the
    executionReport (n / N); a trade seen twice keeps the fee it was seen with."""
    raw = [{**TRADES_28[1], "commission": "0.00003000", "commissionAsset": "BTC"}]
    [rest] = cx.fill_execs(VENUE, bn.parse_trades(raw), scope="", cl_ord_id="c1",
                           venue_order_id="28", order_qty=D("0.1"))  # fmt: skip
    assert (rest.fee, rest.fee_asset) == (D("0.00003"), "BTC")
    full = bn.parse_order({**FULL_MARKET, "fills": [
        {**f, "commission": "0.00000030", "commissionAsset": "BTC"} for f in FULL_MARKET["fills"]
    ]})  # fmt: skip
    fills = cx.fill_execs(VENUE, full["trades"] + full["trades"], scope="", cl_ord_id="m1",
                          venue_order_id="5403233939", order_qty=D("0.0005"))  # fmt: skip
    assert [(f.fee, f.fee_asset) for f in fills] == [(D("0.0000003"), "BTC")] * 2
    _, [trade] = bn.ws_feed([ws_trade(5, "0.01", "0.01", "50000", "500")])
    ws = cx.ws_fill_exec(VENUE, trade, scope="", cl_ord_id="c1", order_qty=D("0.1"))
    assert ws is not None and (ws.fee, ws.fee_asset) == (D("0.0000001"), "BTC")
    bare = {**bn.parse_trades([TRADES_28[0]])[0], "info": {}, "fee": None}
    [none] = cx.fill_execs(VENUE, [bare], scope="", cl_ord_id="c1", venue_order_id="28",
                           order_qty=D("0.1"))  # fmt: skip
    assert (none.fee, none.fee_asset) == (0, "")
    for bad in ({"commission": "lots"}, {"commissionAsset": "X" * 33}):  # the fill goes on
        raw = [{**TRADES_28[1], "commission": "0.1", "commissionAsset": "BTC", **bad}]
        [kept] = cx.fill_execs(VENUE, bn.parse_trades(raw), scope="", cl_ord_id="c1",
                               venue_order_id="28", order_qty=D("0.1"))  # fmt: skip
        assert (kept.last_qty, kept.fee, kept.fee_asset) == (D("0.03"), 0, "")


def test_two_symbols_of_one_base_asset_cannot_be_told_apart() -> None:
    with pytest.raises(ValueError, match="share base asset BTC"):
        cm.positions_from_balance(VENUE, bn.fetch_balance(ACCOUNT), ["BTC/USDT", "BTC/FDUSD"], {})
    with pytest.raises(ValueError, match="BASE/QUOTE"):
        cm.base_asset("BTCUSDT")


def test_trade_ids_that_are_not_ascii_numbers_sort_after_the_numeric_ones() -> None:
    """ "²" is a str.isdigit() digit that int() refuses: it sorts with the other ids."""
    trades = [
        {"id": tid, "order": "28", "amount": 0.01, "price": 100.0, "info": {}}
        for tid in ("b", "²", "10", "9")
    ]
    fills = cx.fill_execs(
        VENUE, trades, scope="", cl_ord_id="c1", venue_order_id="28", order_qty=D(1)
    )
    assert [f.exec_id for f in fills] == ["28:t9", "28:t10", "28:tb", "28:t²"]
    assert fills[-1].cum_qty == D("0.04") and fills[-1].avg_px == 100
