"""Fixtures made by ccxt itself: raw Binance spot JSON (as the API documents it) run
through ccxt's own parsers, so the tests see what the adapter will see. No network: the
one REST call each parser needs is answered by a stub set on the exchange instance.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

import ccxt
import ccxt.pro

FILTERS_BTC = [
    {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
     "tickSize": "0.01000000"},
    {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
     "stepSize": "0.00001000"},
    {"filterType": "ICEBERG_PARTS", "limit": 10},
    {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "114.21463318",
     "stepSize": "0.00000000"},
    {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
     "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000},
    {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
     "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
    {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
     "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
    {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
    {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
]  # fmt: skip


def _symbol(
    symbol: str, base: str, quote: str, filters: list[dict[str, Any]], status: str = "TRADING"
) -> dict[str, Any]:
    return {
        "symbol": symbol, "status": status, "baseAsset": base, "baseAssetPrecision": 8,
        "quoteAsset": quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT",
                       "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": True,
        "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False, "filters": filters, "permissions": [],
        "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }  # fmt: skip


FILTERS_ETH = [
    {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
     "tickSize": "0.01000000"},
    {"filterType": "LOT_SIZE", "minQty": "0.00010000", "maxQty": "9000.00000000",
     "stepSize": "0.00010000"},
    {"filterType": "MIN_NOTIONAL", "minNotional": "10.00000000", "applyToMarket": True,
     "avgPriceMins": 5},
]  # fmt: skip

EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": 1_700_000_000_000,
    "rateLimits": [],
    "exchangeFilters": [],
    "symbols": [
        _symbol("BTCUSDT", "BTC", "USDT", FILTERS_BTC),
        _symbol("ETHUSDT", "ETH", "USDT", FILTERS_ETH),
        _symbol("LUNAUSDT", "LUNA", "USDT", FILTERS_ETH, status="BREAK"),
    ],
}


@cache
def rest() -> Any:
    """A ccxt binance (REST) whose markets came from EXCHANGE_INFO via load_markets."""
    exchange = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    exchange.publicGetExchangeInfo = lambda params=None: copy.deepcopy(EXCHANGE_INFO)
    exchange.load_markets()
    return exchange


def market(symbol: str) -> dict[str, Any]:
    return copy.deepcopy(rest().market(symbol))


def parse_order(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A REST order answer (create / fetch / cancel) as ccxt binance parses it."""
    parsed: dict[str, Any] = rest().parse_order(copy.deepcopy(dict(raw)))
    return parsed


def parse_trades(raws: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """GET /api/v3/myTrades rows as fetch_my_trades parses them."""
    return [rest().parse_trade(copy.deepcopy(dict(r))) for r in raws]


def fetch_balance(account: Mapping[str, Any]) -> dict[str, Any]:
    """GET /api/v3/account as fetch_balance parses it."""
    exchange = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    exchange.set_markets(rest().markets, rest().currencies)
    exchange.privateGetAccount = lambda params=None: copy.deepcopy(dict(account))
    balance: dict[str, Any] = exchange.fetch_balance()
    return balance


class _Client:
    """What ccxt.pro's message handlers need of a WebSocket client."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, Any] = {}

    def resolve(self, result: object, message_hash: str) -> None:
        pass


def ws_feed(
    events: Iterable[Mapping[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """executionReport events through ccxt.pro binance's user-data handler (the WS API
    wraps each in {"subscriptionId", "event"}): the order as watch_orders returns it after
    each event, and the trades watch_my_trades returns."""
    exchange = ccxt.pro.binance()
    exchange.set_markets(rest().markets, rest().currencies)
    client = _Client()
    orders: list[dict[str, Any]] = []
    for event in events:
        exchange.handle_message(client, {"subscriptionId": 0, "event": copy.deepcopy(dict(event))})
        symbol = exchange.safe_symbol(event["s"], None, None, "spot")
        orders.append(copy.deepcopy(exchange.orders.hashmap[symbol][str(event["i"])]))
    trades = [copy.deepcopy(t) for t in (exchange.myTrades or [])]
    return orders, trades


SIGNED_URL = (
    "https://api.binance.com/api/v3/order?symbol=BTCUSDT&origClientOrderId=c1"
    "&newClientOrderId=x1&timestamp=1700000000000&recvWindow=5000"
    "&signature=3f1b8a0c2d9e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
)


def raised(
    status: int, body: str | Mapping[str, Any], *, url: str = SIGNED_URL, method: str = "DELETE"
) -> Exception:
    """The exception ccxt binance raises for an HTTP answer (its fetch runs handle_errors,
    then handle_http_status_code, with the same arguments)."""
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    try:
        response = json.loads(text)
    except ValueError:
        response = None
    exchange = ccxt.binance()
    try:
        exchange.handle_errors(status, "Error", url, method, {}, text, response, {}, None)
        exchange.handle_http_status_code(status, "Error", url, method, text)
    except Exception as exc:  # noqa: BLE001 - the exception under test
        return exc
    raise AssertionError(f"ccxt raised nothing for {status} {text}")
