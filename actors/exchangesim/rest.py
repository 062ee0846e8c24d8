"""The REST endpoints of Binance spot that ccxt's `binance` class uses, as plain functions
of a request (no HTTP server here: `actors.exchangesim.server` adapts aiohttp to this).

    GET    /api/v3/ping, /api/v3/time, /api/v3/exchangeInfo        public
    POST   /api/v3/order                  LIMIT / MARKET, GTC / IOC / FOK, ACK/RESULT/FULL
    DELETE /api/v3/order                  by orderId or origClientOrderId
    DELETE /api/v3/openOrders             every open order of a symbol
    GET    /api/v3/order                  by orderId or origClientOrderId
    GET    /api/v3/openOrders             (symbol optional)
    GET    /api/v3/myTrades               symbol; orderId, fromId, startTime, endTime, limit
    GET    /api/v3/account                balances
    POST   /api/v3/order/cancelReplace    what ccxt's edit_order sends for spot
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from actors.exchangesim import errors
from actors.exchangesim.auth import Credentials
from actors.exchangesim.book import Exchange
from actors.exchangesim.errors import CLIENT_ID_PATTERN, ApiError
from actors.exchangesim.market import fmt
from actors.exchangesim.orders import XOrder, new_client_id, select_trades
from actors.exchangesim.wire import (
    Json,
    cancel_json,
    new_order_ack,
    new_order_full,
    new_order_result,
    order_json,
    trade_json,
)
from protocol.domain import OrdType, Side, TimeInForce

_CLIENT_ID = re.compile(CLIENT_ID_PATTERN)
_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_DECIMAL_LEGAL = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_INT_LEGAL = r"^[0-9]{1,20}$"
_TIFS = {"GTC": TimeInForce.GTC, "IOC": TimeInForce.IOC, "FOK": TimeInForce.FOK}
DAY_MS = 24 * 3600 * 1000
# the parameter sets GET /api/v3/myTrades takes besides symbol (Binance's documented list)
_TRADE_QUERIES = frozenset(
    frozenset(c)
    for c in ((), ("orderId",), ("startTime",), ("endTime",), ("fromId",),
              ("startTime", "endTime"), ("orderId", "fromId"))
)  # fmt: skip
RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
]


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    path: str
    query: str = ""  # raw, as sent
    body: str = ""  # raw, as sent (application/x-www-form-urlencoded)
    api_key: str | None = None  # the X-MBX-APIKEY header


@dataclass(slots=True)
class Response:
    status: int
    body: Any
    events: list[Json] = field(default_factory=list)  # user-data events to push
    order_placed: bool = False  # an order was accepted (timeout_after_accept applies)


Handler = Callable[[dict[str, str], int], Response]


class RestApi:
    """Answers requests against one `Exchange`; `clock()` is the server's time in ms."""

    def __init__(self, exchange: Exchange, creds: Credentials, clock: Callable[[], int]) -> None:
        self.exchange = exchange
        self.creds = creds
        self.clock = clock
        self._public: dict[tuple[str, str], Handler] = {
            ("GET", "/api/v3/ping"): lambda p, now: Response(200, {}),
            ("GET", "/api/v3/time"): lambda p, now: Response(200, {"serverTime": now}),
            ("GET", "/api/v3/exchangeInfo"): self._exchange_info,
        }
        self._signed: dict[tuple[str, str], Handler] = {
            ("POST", "/api/v3/order"): self._new_order,
            ("DELETE", "/api/v3/order"): self._cancel,
            ("DELETE", "/api/v3/openOrders"): self._cancel_all,
            ("GET", "/api/v3/order"): self._query,
            ("GET", "/api/v3/openOrders"): self._open_orders,
            ("GET", "/api/v3/myTrades"): self._my_trades,
            ("GET", "/api/v3/account"): self._account,
            ("POST", "/api/v3/order/cancelReplace"): self._cancel_replace,
        }

    def handle(self, req: Request) -> Response:
        key = (req.method, req.path)
        now = self.clock()
        params = dict(parse_qsl(req.query, keep_blank_values=True))
        params.update(parse_qsl(req.body, keep_blank_values=True))
        try:
            public = self._public.get(key)
            if public is not None:
                return public(params, now)
            handler = self._signed.get(key)
            if handler is None:
                return Response(404, {"code": -1000, "msg": f"No such endpoint {req.path}"})
            self.creds.check_rest(req.api_key, req.query, req.body, params, now)
            return handler(params, now)
        except ApiError as exc:
            return Response(exc.status, exc.body())

    # ------------------------------------------------------------------ public

    def _exchange_info(self, params: dict[str, str], now: int) -> Response:
        wanted = params.get("symbol")
        markets = self.exchange.markets
        if wanted is not None and wanted not in markets:
            raise errors.error(errors.INVALID_SYMBOL)
        body = {
            "timezone": "UTC",
            "serverTime": now,
            "rateLimits": RATE_LIMITS,
            "exchangeFilters": [],
            "symbols": [m.info() for mid, m in markets.items() if wanted in (None, mid)],
        }
        return Response(200, body)

    # ------------------------------------------------------------------ orders

    def _new_order(self, params: dict[str, str], now: int) -> Response:
        o, fills, events = self._place(params, "newClientOrderId", now)
        return Response(200, self._order_answer(params, o, fills, now), events, True)

    def _place(
        self, p: dict[str, str], cl_param: str, now: int
    ) -> tuple[XOrder, list[Any], list[Json]]:
        symbol = _symbol(p, self.exchange)
        side = _enum(p, "side", {"BUY": Side.BUY, "SELL": Side.SELL}, errors.INVALID_SIDE)
        ord_type = _enum(
            p, "type", {"LIMIT": OrdType.LIMIT, "MARKET": OrdType.MARKET}, errors.INVALID_TYPE
        )
        if "quoteOrderQty" in p:
            raise errors.not_required("quoteOrderQty")
        qty = _decimal(p, "quantity")
        if ord_type is OrdType.LIMIT:
            tif = _enum(p, "timeInForce", _TIFS, errors.INVALID_TIF)
            price: Decimal | None = _decimal(p, "price")
        else:
            for name in ("price", "timeInForce"):
                if p.get(name):
                    raise errors.not_required(name)
            tif, price = TimeInForce.GTC, None
        cl = _client_id(p, cl_param) or new_client_id()
        _resp_type(p)
        return self.exchange.new_order(symbol, side, ord_type, tif, qty, price, cl, now)

    def _order_answer(self, p: dict[str, str], o: XOrder, fills: list[Any], now: int) -> Json:
        resp_type = _resp_type(p)
        if resp_type == "ACK":
            return new_order_ack(o, now)
        if resp_type == "RESULT":
            return new_order_result(o, now)
        return new_order_full(o, fills, now)

    def _target(
        self, p: dict[str, str], id_param: str, cl_param: str
    ) -> tuple[int | None, str | None]:
        order_id = _int(p, id_param) if p.get(id_param) else None
        client_id = p.get(cl_param) or None
        if order_id is None and client_id is None:
            raise ApiError(
                -1102, f"Param '{cl_param}' or '{id_param}' must be sent, but both were empty/null!"
            )
        return order_id, client_id

    def _cancel(self, params: dict[str, str], now: int) -> Response:
        symbol = _symbol(params, self.exchange)
        order_id, client_id = self._target(params, "orderId", "origClientOrderId")
        cancel_cl = _client_id(params, "newClientOrderId") or new_client_id()
        o = self.exchange.find_open(symbol, order_id, client_id)
        events = self.exchange.cancel(symbol, o, cancel_cl, now)
        return Response(200, cancel_json(o, cancel_cl, now), events)

    def _cancel_all(self, params: dict[str, str], now: int) -> Response:
        symbol = _symbol(params, self.exchange)
        orders = self.exchange.open_orders(symbol)
        if not orders:
            raise errors.error(errors.UNKNOWN_ORDER)
        body, events = [], []
        for o in orders:
            cancel_cl = new_client_id()
            events += self.exchange.cancel(symbol, o, cancel_cl, now)
            body.append(cancel_json(o, cancel_cl, now))
        return Response(200, body, events)

    def _cancel_replace(self, p: dict[str, str], now: int) -> Response:
        symbol = _symbol(p, self.exchange)
        mode = p.get("cancelReplaceMode", "")
        if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
            raise errors.mandatory("cancelReplaceMode")
        order_id, client_id = self._target(p, "cancelOrderId", "cancelOrigClientOrderId")
        cancel_cl = _client_id(p, "cancelNewClientOrderId") or new_client_id()
        events: list[Json] = []
        cancel: Json
        try:
            o = self.exchange.find_open(symbol, order_id, client_id)
            events += self.exchange.cancel(symbol, o, cancel_cl, now)
            cancel, cancel_ok = cancel_json(o, cancel_cl, now), True
        except ApiError as exc:
            cancel, cancel_ok = exc.body(), False
        if not cancel_ok and mode == "STOP_ON_FAILURE":
            data = {
                "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
                "cancelResponse": cancel, "newOrderResponse": None,
            }  # fmt: skip
            code, msg = errors.CANCEL_REPLACE_FAILED
            return Response(400, {"code": code, "msg": msg, "data": data}, events)
        try:
            new, fills, new_events = self._place(p, "newClientOrderId", now)
        except ApiError as exc:
            data = {
                "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
                "newOrderResult": "FAILURE", "cancelResponse": cancel,
                "newOrderResponse": exc.body(),
            }  # fmt: skip
            code, msg = (
                errors.CANCEL_REPLACE_FAILED if not cancel_ok else (errors.CANCEL_REPLACE_PARTIAL)
            )
            return Response(
                400 if not cancel_ok else 409, {"code": code, "msg": msg, "data": data}, events
            )
        body = {
            "cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
            "newOrderResult": "SUCCESS",
            "cancelResponse": cancel,
            "newOrderResponse": self._order_answer(p, new, fills, now),
        }
        if not cancel_ok:
            code, msg = errors.CANCEL_REPLACE_PARTIAL
            return Response(
                409, {"code": code, "msg": msg, "data": body}, events + new_events, True
            )
        return Response(200, body, events + new_events, True)

    # ------------------------------------------------------------------ queries

    def _query(self, params: dict[str, str], now: int) -> Response:
        symbol = _symbol(params, self.exchange)
        order_id, client_id = self._target(params, "orderId", "origClientOrderId")
        return Response(200, order_json(self.exchange.find(symbol, order_id, client_id)))

    def _open_orders(self, params: dict[str, str], now: int) -> Response:
        symbol = _symbol(params, self.exchange) if params.get("symbol") else None
        return Response(200, [order_json(o) for o in self.exchange.open_orders(symbol)])

    def _my_trades(self, p: dict[str, str], now: int) -> Response:
        symbol = _symbol(p, self.exchange)
        given = frozenset(k for k in ("orderId", "startTime", "endTime", "fromId") if p.get(k))
        if given not in _TRADE_QUERIES:
            raise ApiError(-1128, "Combination of optional parameters invalid.")
        if p.get("startTime") and p.get("endTime"):
            if _int(p, "endTime") - _int(p, "startTime") > DAY_MS:
                raise ApiError(-1127, "More than 24 hours between startTime and endTime.")
        limit = min(_int(p, "limit"), 1000) if p.get("limit") else 500
        trades = select_trades(
            self.exchange.trades,
            symbol,
            order_id=_int(p, "orderId") if p.get("orderId") else None,
            from_id=_int(p, "fromId") if p.get("fromId") else None,
            start_ms=_int(p, "startTime") if p.get("startTime") else None,
            end_ms=_int(p, "endTime") if p.get("endTime") else None,
            limit=max(limit, 1),
        )
        return Response(200, [trade_json(t) for t in trades])

    def _account(self, params: dict[str, str], now: int) -> Response:
        omit_zero = params.get("omitZeroBalances", "false").lower() == "true"
        rate = self.exchange.commission_rate
        bps = int(rate * 10000)
        balances = [
            {"asset": a, "free": fmt(f), "locked": fmt(lk)}
            for a, (f, lk) in self.exchange.balances().items()
            if not (omit_zero and not f and not lk)
        ]
        body = {
            "makerCommission": bps, "takerCommission": bps,
            "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {
                "maker": fmt(rate), "taker": fmt(rate), "buyer": fmt(Decimal(0)),
                "seller": fmt(Decimal(0)),
            },
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now,
            "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 1,
        }  # fmt: skip
        return Response(200, body)


# ---------------------------------------------------------------------- parameters


def _symbol(p: dict[str, str], exchange: Exchange) -> str:
    symbol = p.get("symbol", "")
    if not symbol:
        raise errors.mandatory("symbol")
    exchange.market(symbol)
    return symbol


def _enum(p: dict[str, str], name: str, values: dict[str, Any], invalid: tuple[int, str]) -> Any:
    text = p.get(name, "")
    if not text:
        raise errors.mandatory(name)
    if text not in values:
        raise errors.error(invalid)
    return values[text]


def _decimal(p: dict[str, str], name: str) -> Decimal:
    text = p.get(name, "")
    if not text:
        raise errors.mandatory(name)
    if not _DECIMAL.match(text):
        raise errors.illegal(name, _DECIMAL_LEGAL)
    value = Decimal(text)
    if value <= 0:
        raise ApiError(-1013, "Invalid quantity." if name == "quantity" else "Invalid price.")
    return value


def _int(p: dict[str, str], name: str) -> int:
    text = p.get(name, "")
    if not text.isdigit() or len(text) > 20:
        raise errors.illegal(name, _INT_LEGAL)
    return int(text)


def _client_id(p: dict[str, str], name: str) -> str | None:
    cl = p.get(name)
    if cl is None or cl == "":
        return None
    if not _CLIENT_ID.match(cl):
        raise errors.illegal(name, CLIENT_ID_PATTERN)
    return cl


def _resp_type(p: dict[str, str]) -> str:
    resp_type = p.get("newOrderRespType", "FULL")
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise ApiError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
    return resp_type
