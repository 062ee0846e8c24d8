"""Binance's request limits, as strict as the real venue: pure, no sockets, a clock passed in.

Request weight (`rateLimitType` REQUEST_WEIGHT) is counted per client IP, not per API key
("The limits on the API are based on the IPs, not the API keys"), over a rolling minute:
a request whose weight would take the IP's last 60 s past `weight_per_min` is refused
with HTTP 429, code -1003, a `Retry-After` (seconds until it would fit) and NOT processed;
its weight is not counted. A request sent while a 429's Retry-After has not passed is a
violation (refused with 429 too); the `ban_after`-th violation bans the IP: every request
is refused with HTTP 418 (-1003 "IP banned until <ms>", `Retry-After` the seconds left)
until the ban ends. Bans escalate per IP: `ban_s`, doubled at each later ban, at most
3 days (Binance: "IP bans are tracked and scale in duration for repeat offenders, from 2
minutes to 3 days"). Every answer carries `X-MBX-USED-WEIGHT-1M`: the IP's weight in the
last minute, this request's included.

Orders (`rateLimitType` ORDERS) are counted per account (API key): new orders (POST
/api/v3/order, /api/v3/order/cancelReplace) in the last 10 s and the last day; one over
either is refused with HTTP 429, code -1015, no Retry-After (as Binance), not processed.
Order answers carry `X-MBX-ORDER-COUNT-10S` and `X-MBX-ORDER-COUNT-1D`.

Weights (`request_weight`) are Binance's documented REST weights of the endpoints the sim
serves, from github.com/binance/binance-spot-api-docs rest-api.md (weights since the
2023-08-25 change) and the "Weight:" lines of Binance's own spot connectors (generated
from its OpenAPI spec), NOT from ccxt (the connector's source: the two must not share an
assumption):

    GET    /api/v3/ping, /api/v3/time                 1
    GET    /api/v3/exchangeInfo                        20
    GET    /api/v3/depth              limit 1-100: 5, 101-500: 25, 501-1000: 50, 1001-5000: 250
    POST   /api/v3/order                               1   (and 1 order)
    DELETE /api/v3/order                               1
    DELETE /api/v3/openOrders                          1
    POST   /api/v3/order/cancelReplace                 1   (and 1 order)
    GET    /api/v3/order                               4
    GET    /api/v3/openOrders          with symbol: 6, without: 80
    GET    /api/v3/myTrades           with orderId: 5, without: 20
    GET    /api/v3/account                             20
    anything else                                      1
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from protocol.sim_config import SimCfg

WINDOW_S: Final = 60.0
ORDERS_SHORT_S: Final = 10.0
DAY_S: Final = 86_400.0
MAX_BAN_S: Final = 3 * DAY_S
_WEIGHTS: Final[Mapping[tuple[str, str], int]] = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("POST", "/api/v3/order"): 1,
    ("DELETE", "/api/v3/order"): 1,
    ("DELETE", "/api/v3/openOrders"): 1,
    ("POST", "/api/v3/order/cancelReplace"): 1,
    ("GET", "/api/v3/order"): 4,
    ("GET", "/api/v3/account"): 20,
}
_DEPTH: Final = ((100, 5), (500, 25), (1000, 50), (5000, 250))
ORDER_PATHS: Final = frozenset({("POST", "/api/v3/order"), ("POST", "/api/v3/order/cancelReplace")})
TOO_MUCH_WEIGHT: Final = (
    "Too much request weight used; current limit is {limit} request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
BANNED: Final = (
    "Way too much request weight used; IP banned until {until_ms}. "
    "Please use WebSocket Streams for live updates to avoid bans."
)
TOO_MANY_ORDERS: Final = "Too many new orders; current limit is {limit} orders per {interval}."


def request_weight(method: str, path: str, params: Mapping[str, str]) -> int:
    """Binance's weight of one REST request (the table in the module docstring)."""
    if (method, path) == ("GET", "/api/v3/openOrders"):
        return 6 if params.get("symbol") else 80
    if (method, path) == ("GET", "/api/v3/myTrades"):
        return 5 if params.get("orderId") else 20
    if (method, path) == ("GET", "/api/v3/depth"):
        limit = int(params["limit"]) if params.get("limit", "").isdigit() else 100
        return next((w for top, w in _DEPTH if limit <= top), _DEPTH[-1][1])
    return _WEIGHTS.get((method, path), 1)


@dataclass(frozen=True, slots=True)
class LimitsCfg:
    weight_per_min: int = 6000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000
    ban_s: float = 120.0  # the first ban; each later one of the IP twice the last
    ban_after: int = 3  # requests sent into a 429's Retry-After window before the ban

    def rate_limits(self) -> list[dict[str, object]]:
        """exchangeInfo's `rateLimits` for these limits."""
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": self.weight_per_min},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": self.orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
             "limit": self.orders_per_day},
            {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5,
             "limit": 61000},
        ]  # fmt: skip


def limits_cfg(sim: SimCfg) -> LimitsCfg:
    """The limits `[venues.sim]` sets."""
    return LimitsCfg(
        weight_per_min=sim.request_weight_per_min,
        orders_per_10s=sim.orders_per_10s,
        orders_per_day=sim.orders_per_day,
        ban_s=sim.ip_ban_s,
        ban_after=sim.ip_ban_after,
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with one request: `status` 0 = process it, else refuse with that HTTP
    status and `body`; `headers` go on the answer either way."""

    status: int = 0
    body: dict[str, object] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Ip:
    sent: deque[tuple[float, int]] = field(default_factory=deque)  # (time, weight) admitted
    used: int = 0
    back_off_until: float = 0.0  # a 429's Retry-After ends here
    violations: int = 0
    banned_until: float = 0.0
    bans: int = 0

    def expire(self, now: float) -> None:
        while self.sent and self.sent[0][0] <= now - WINDOW_S:
            self.used -= self.sent.popleft()[1]


class Limiter:
    """The request-weight and order-count limits of one exchange (module docstring)."""

    def __init__(self, cfg: LimitsCfg) -> None:
        self.cfg = cfg
        self._ips: dict[str, _Ip] = {}
        self._orders: dict[str, deque[float]] = {}  # API key -> times of new orders (a day)
        self.refused: dict[int, int] = {}  # HTTP status -> requests refused with it

    def used(self, ip: str, now: float) -> int:
        """The IP's request weight over the last minute."""
        state = self._ips.get(ip)
        if state is None:
            return 0
        state.expire(now)
        return state.used

    def admit(self, ip: str, weight: int, now: float, now_ms: int) -> Verdict:
        """Count a request of `weight` from `ip` at `now` (monotonic s; `now_ms` the server
        clock for a ban's "until"), or refuse it (not counted, not to be processed)."""
        s = self._ips.setdefault(ip, _Ip())
        s.expire(now)
        if now < s.banned_until:
            return self._ban_answer(s, now, now_ms)
        if now < s.back_off_until:  # sent while told to back off
            s.violations += 1
            if s.violations >= self.cfg.ban_after:
                ban_s = min(self.cfg.ban_s * 2**s.bans, MAX_BAN_S)
                s.bans += 1
                s.banned_until = now + ban_s
                s.violations = 0
                return self._ban_answer(s, now, now_ms)
            return self._too_much(s, now, math.ceil(s.back_off_until - now))
        if s.used + weight > self.cfg.weight_per_min:
            retry_s = self._fits_in_s(s, weight, now)
            s.back_off_until = now + retry_s
            return self._too_much(s, now, retry_s)
        s.violations = 0
        s.sent.append((now, weight))
        s.used += weight
        return Verdict(headers={"X-MBX-USED-WEIGHT-1M": str(s.used)})

    def admit_order(self, api_key: str, now: float) -> Verdict:
        """Count a new order of the account, or refuse it (-1015, not to be processed)."""
        times = self._orders.setdefault(api_key, deque())
        while times and times[0] <= now - DAY_S:
            times.popleft()
        short = sum(1 for t in reversed(times) if t > now - ORDERS_SHORT_S)
        over = None
        if short >= self.cfg.orders_per_10s:
            over = (self.cfg.orders_per_10s, "10 SECOND")
        elif len(times) >= self.cfg.orders_per_day:
            over = (self.cfg.orders_per_day, "1 DAY")
        if over is not None:
            self.refused[429] = self.refused.get(429, 0) + 1
            msg = TOO_MANY_ORDERS.format(limit=over[0], interval=over[1])
            return Verdict(429, {"code": -1015, "msg": msg})
        times.append(now)
        counts = {"X-MBX-ORDER-COUNT-10S": str(short + 1), "X-MBX-ORDER-COUNT-1D": str(len(times))}
        return Verdict(headers=counts)

    def _fits_in_s(self, s: _Ip, weight: int, now: float) -> int:
        """Whole seconds until `weight` more fits in the IP's window."""
        free, at = self.cfg.weight_per_min - s.used, now
        for t, w in s.sent:
            if free >= weight:
                break
            free, at = free + w, t + WINDOW_S
        return max(1, math.ceil(at - now))

    def _too_much(self, s: _Ip, now: float, retry_s: int) -> Verdict:
        self.refused[429] = self.refused.get(429, 0) + 1
        msg = TOO_MUCH_WEIGHT.format(limit=self.cfg.weight_per_min)
        headers = {"Retry-After": str(retry_s), "X-MBX-USED-WEIGHT-1M": str(s.used)}
        return Verdict(429, {"code": -1003, "msg": msg}, headers)

    def _ban_answer(self, s: _Ip, now: float, now_ms: int) -> Verdict:
        self.refused[418] = self.refused.get(418, 0) + 1
        left_s = s.banned_until - now
        until_ms = now_ms + int(left_s * 1000)
        headers = {"Retry-After": str(math.ceil(left_s)), "X-MBX-USED-WEIGHT-1M": str(s.used)}
        return Verdict(418, {"code": -1003, "msg": BANNED.format(until_ms=until_ms)}, headers)
