"""check_order against markets ccxt binance built from an exchangeInfo answer
(tests/connector/ccxt/binance.py): BTC/USDT step 0.00001, min 0.00001, max 9000, tick
0.01, price 0.01..1000000, NOTIONAL 5..9000000, MARKET_LOT_SIZE max 114.21463318;
ETH/USDT step 0.0001 and MIN_NOTIONAL 10; LUNA/USDT not trading."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.connector.ccxt.limits import DECIMAL_PLACES, check_order, check_order_in
from protocol.messages import OrdType, PlaceOrder, ReplaceOnVenue, Side
from tests.connector.ccxt import binance as bn

D = Decimal


def order(
    qty: str, price: str | None = "50000", symbol: str = "BTC/USDT", kind: OrdType = OrdType.LIMIT
) -> PlaceOrder:
    return PlaceOrder(
        cl_ord_id="c1", symbol=symbol, side=Side.BUY, qty=D(qty), order_type=kind,
        price=None if price is None else D(price),
    )  # fmt: skip


def unified_only(symbol: str) -> dict[str, Any]:
    """The market with no exchange filters: ccxt's unified precision and limits only."""
    market = bn.market(symbol)
    market["info"] = {}
    return market


def test_an_order_on_the_grid_within_every_limit_fits() -> None:
    assert check_order(order("0.12345", "50000.01"), bn.market("BTC/USDT")) is None
    assert check_order_in(order("0.5", "2000", symbol="ETH/USDT"), bn.rest().markets) is None


@pytest.mark.parametrize(
    ("qty", "price", "expected"),
    [
        ("0.000015", "50000", "qty 0.000015 is not a multiple of the amount step 0.00001000 "
                              "(LOT_SIZE stepSize)"),
        ("0.000001", "50000", "qty 0.000001 is below the minimum amount 0.00001000 "
                              "(LOT_SIZE minQty)"),
        ("9000.00001", "1", "qty 9000.00001 is above the maximum amount 9000.00000000 "
                            "(LOT_SIZE maxQty)"),
        ("0.1", "50000.005", "price 50000.005 is not a multiple of the tick 0.01000000 "
                             "(PRICE_FILTER tickSize)"),
        ("1", "0.001", "price 0.001 is below the minimum price 0.01000000 (PRICE_FILTER minPrice)"),
        ("0.1", "1000000.01", "price 1000000.01 is above the maximum price 1000000.00000000 "
                              "(PRICE_FILTER maxPrice)"),
        ("0.0001", "49999.99", "notional 4.999999 is below the minimum cost 5.00000000 "
                               "(NOTIONAL minNotional)"),
        ("9000", "1000.01", "notional 9000090.00 is above the maximum cost 9000000.00000000 "
                            "(NOTIONAL maxNotional)"),
        ("0.1", "0", "price 0 must be positive"),
        ("0", "1", "qty 0 must be positive"),
    ],
)  # fmt: skip
def test_a_limit_order_outside_the_filters_names_the_field(
    qty: str, price: str, expected: str
) -> None:
    assert check_order(order(qty, price), bn.market("BTC/USDT")) == expected


def test_min_notional_filter_of_older_markets_is_read_too() -> None:
    problem = check_order(order("0.0049", "2000", symbol="ETH/USDT"), bn.market("ETH/USDT"))
    assert (
        problem
        == "notional 9.8000 is below the minimum cost 10.00000000 (MIN_NOTIONAL minNotional)"
    )


def test_a_market_order_skips_price_and_notional_but_obeys_the_market_lot_size() -> None:
    assert check_order(order("0.0001", None, kind=OrdType.MARKET), bn.market("BTC/USDT")) is None
    big = check_order(order("200", None, kind=OrdType.MARKET), bn.market("BTC/USDT"))
    assert big == "qty 200 is above the maximum amount 114.21463318 (MARKET_LOT_SIZE maxQty)"
    assert check_order(order("200", "1"), bn.market("BTC/USDT")) is None  # a limit order: LOT_SIZE


def test_a_replace_is_checked_with_the_amount_it_sends() -> None:
    replace = ReplaceOnVenue(
        cl_ord_id="c1-r1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY,
        qty=D("0.1"), order_type=OrdType.LIMIT, price=D("50000"),
    )  # fmt: skip
    assert check_order(replace, bn.market("BTC/USDT")) is None
    assert check_order(replace, bn.market("BTC/USDT"), amount=D("0.000001")) is not None


def test_unknown_inactive_or_other_markets_are_reasons() -> None:
    markets = bn.rest().markets
    assert check_order_in(order("1", symbol="DOGE/USDT"), markets) == (
        "unknown symbol DOGE/USDT: not among the exchange's markets"
    )
    assert check_order_in(order("1", "1", symbol="LUNA/USDT"), markets) == (
        "market LUNA/USDT is not active (not trading)"
    )
    assert check_order(order("1"), bn.market("ETH/USDT")) == (
        "market ETH/USDT is not the order's symbol BTC/USDT"
    )
    assert check_order(order("1", None), bn.market("BTC/USDT")) == "limit order without a price"


def test_an_order_type_the_market_does_not_allow_is_a_reason() -> None:
    market = bn.market("BTC/USDT")
    market["info"]["orderTypes"] = ["LIMIT"]
    problem = check_order(order("0.1", None, kind=OrdType.MARKET), market)
    assert problem == "order type MARKET not allowed on BTC/USDT"


@pytest.mark.parametrize(
    ("qty", "price", "expected"),
    [
        ("0.12345", "50000.01", None),
        ("0.000015", "50000", "qty 0.000015 is not a multiple of the amount step 0.00001"),
        ("0.000001", "50000", "qty 0.000001 is below the minimum amount 0.00001"),
        ("9001", "1", "qty 9001 is above the maximum amount 9000.0"),
        ("0.1", "50000.005", "price 50000.005 is not a multiple of the tick 0.01"),
        ("1", "0.001", "price 0.001 is below the minimum price 0.01"),
        ("0.1", "1000001", "price 1000001 is above the maximum price 1000000.0"),
        ("0.0001", "49999.99", "notional 4.999999 is below the minimum cost 5.0"),
        ("9000", "1000.01", "notional 9000090.00 is above the maximum cost 9000000.0"),
    ],
)
def test_without_exchange_filters_the_unified_precision_and_limits_apply(
    qty: str, price: str, expected: str | None
) -> None:
    assert check_order(order(qty, price), unified_only("BTC/USDT")) == expected


def test_decimal_places_precision_is_a_count_of_decimals() -> None:
    market = unified_only("BTC/USDT")
    market["precision"] = {"amount": 3, "price": 1}
    assert check_order(order("0.123", "50000.1"), market, precision_mode=DECIMAL_PLACES) is None
    assert check_order(order("0.1234", "50000.1"), market, precision_mode=DECIMAL_PLACES) == (
        "qty 0.1234 is not a multiple of the amount step 0.001"
    )


@settings(deadline=None)
@given(
    steps=st.integers(min_value=1, max_value=900_000_000),
    ticks=st.integers(min_value=1, max_value=100_000_000),
)
def test_filters_and_unified_values_agree_on_binance_markets(steps: int, ticks: int) -> None:
    """ccxt derives its unified precision and limits from the same filters: both ways of
    reading them accept and refuse the same orders (up to the field's source name)."""
    o = order(str(D(steps) * D("0.00001")), str(D(ticks) * D("0.01")))
    from_filters = check_order(o, bn.market("BTC/USDT"))
    from_unified = check_order(o, unified_only("BTC/USDT"))
    assert (from_filters is None) == (from_unified is None), (from_filters, from_unified)


def test_a_step_far_finer_than_the_quantity_is_still_checked_exactly() -> None:
    """9000 / 3e-30 has 34 digits, past the default decimal precision (28), where `%`
    raises InvalidOperation instead of answering."""
    market = unified_only("BTC/USDT")
    market["precision"] = {"amount": 3e-30, "price": 0.01}
    assert check_order(order("9000", "1"), market) is None
    assert check_order(order("8999", "1"), market) == (
        "qty 8999 is not a multiple of the amount step 3E-30"
    )
