"""The exchange's request-weight budget, kept on our side (pure: a clock passed in, no I/O).
The same class keeps the account's order count (ORDERS, 100 new orders per 10 s on
Binance: `kind=ORDERS_10S`, a weight of 1 per new order, `X-MBX-ORDER-COUNT-10S`).

Binance limits the REQUEST_WEIGHT an IP spends per minute (6,000 by default; the
exchange says its own in exchangeInfo's `rateLimits`, `learn`). Over it the exchange
answers 429, and an IP that keeps sending is banned (418) for minutes to days. So every
REST request of the connector reserves its weight here before it goes out (`wait_s`,
`take`), and none goes out while the budget is spent or a Retry-After holds (`hold`).

- The budget is `fraction` of the exchange's limit (the rest is headroom for what we do
  not see: another process behind the same IP, the WebSocket API's requests). The kill
  switch's mass cancel may use that headroom (`wait_s(whole_limit=True)`), never more.
- What we sent is kept for a rolling minute from when its answer came (`done`), not from
  when it left: the exchange counts it from its arrival, which lies between, so our window
  never forgets a request before the exchange does.
- `X-MBX-USED-WEIGHT-1M` of an answer (`sync`) is the exchange's count for our IP: when it
  is above ours, the difference (weight spent by someone else on the IP) is counted too.
- A request's weight (`exchange.Rest.attach`) is ccxt's `cost` of the endpoint times
  `BINANCE_WEIGHT_PER_COST` (ccxt's binance describes each endpoint's weight / 5: its
  `rateLimit` of 50 ms is 1,200 requests a minute against 6,000 weight): GET
  /api/v3/order 0.8 -> 4, GET /api/v3/openOrders 1.2 -> 6 (16 -> 80 without a symbol),
  POST / DELETE /api/v3/order 0.2 -> 1, GET /api/v3/account and /api/v3/myTrades 4 -> 20,
  exchangeInfo 4 -> 20, time 0.2 -> 1.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

DEFAULT_LIMIT: Final = 6000  # Binance's REQUEST_WEIGHT per minute until the exchange says
DEFAULT_ORDERS_10S: Final = 100  # Binance's ORDERS per 10 s per account until it says
ORDERS_10S: Final = ("ORDERS", "SECOND", 10)
_SECONDS: Final = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}
BINANCE_WEIGHT_PER_COST: Final = 5.0
IN_FLIGHT_RECHECK_S: Final = 0.05  # the budget is in flight: look again after answers
# a background request (share < 1) that has waited this long for its share goes as an
# order would (the whole budget), and new foreground requests leave it room: a steady
# order flow above the share must not starve the poll for good
BACKGROUND_PATIENCE_S: Final = 3.0
BACKGROUND_RECHECK_S: Final = 0.5  # a waiting background request asks again this often


class WeightBudget:
    """Request weight spent over the last minute against `fraction` of the exchange's limit."""

    def __init__(
        self,
        fraction: float = 0.8,
        limit: int = DEFAULT_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        *,
        kind: tuple[str, str, int] = ("REQUEST_WEIGHT", "MINUTE", 1),
    ) -> None:
        if not 0 < fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")
        self.fraction = fraction
        self.limit = limit
        self._clock = clock
        # the exchangeInfo row this budget follows: (rateLimitType, interval, intervalNum)
        self.kind = kind
        self.window_s = float(_SECONDS[kind[1]] * kind[2])
        self._done: deque[tuple[float, int]] = deque()  # (answered at, weight), time order
        self._done_sum = 0
        self._in_flight = 0
        self._hold_until = 0.0
        self.waits = 0  # requests that had to wait for the budget or a hold
        # background requests held back by their share: since when (0: none), the
        # heaviest, and when one last asked (a request that stopped asking is not waited for)
        self._bg_since = 0.0
        self._bg_weight = 0
        self._bg_asked_at = 0.0
        self.peak_seen = 0  # the most the exchange said we used (its header)

    @property
    def budget(self) -> int:
        return max(1, int(self.limit * self.fraction))

    def learn(self, rate_limits: Iterable[Mapping[str, Any]]) -> None:
        """The exchange's own limit of this budget's `kind` (exchangeInfo `rateLimits`)."""
        for row in rate_limits:
            limit = row.get("limit")
            key = (row.get("rateLimitType"), row.get("interval"), row.get("intervalNum"))
            if key == self.kind and isinstance(limit, int) and limit > 0:
                self.limit = limit

    def used(self) -> int:
        """Weight counted in the last minute (ours, answered or in flight, and others')."""
        now = self._clock()
        while self._done and self._done[0][0] <= now - self.window_s:
            self._done_sum -= self._done.popleft()[1]
        return self._done_sum + self._in_flight

    def wait_s(self, weight: int, share: float = 1.0, *, whole_limit: bool = False) -> float:
        """Seconds until a request of `weight` may go (0: now) when it may use `share` of
        the budget (a background request leaves the rest to the order flow). A background
        request kept back by its share for `BACKGROUND_PATIENCE_S` may use the whole
        budget, and foreground requests leave it room until it went. `whole_limit` (the
        kill switch's cancels): up to the exchange's limit itself, the headroom too."""
        now = self._clock()
        if self._hold_until > now:
            return self._hold_until - now
        if whole_limit:
            return self._fit_s(weight, self.limit, 0, now)
        if share < 1:
            return self._background_wait_s(weight, share, now)
        reserve = self._bg_weight if self._bg_overdue(now) else 0
        return self._fit_s(weight, self.budget, reserve, now)

    def _background_wait_s(self, weight: int, share: float, now: float) -> float:
        if now - self._bg_asked_at > 2 * BACKGROUND_RECHECK_S:  # none waited meanwhile
            self._bg_since, self._bg_weight = 0.0, 0
        self._bg_asked_at = now
        wait_s = self._fit_s(weight, max(1, int(self.budget * share)), 0, now)
        if wait_s == 0:  # within its share: no pressure from the order flow
            self._bg_since, self._bg_weight = 0.0, 0
            return 0.0
        if not self._bg_since:
            self._bg_since = now
        self._bg_weight = max(self._bg_weight, weight)
        if self._bg_overdue(now):
            wait_s = self._fit_s(weight, self.budget, 0, now)
            if wait_s == 0:
                self._bg_weight = 0  # it goes; one waiting still says so when it asks
                return 0.0
        return min(wait_s, BACKGROUND_RECHECK_S)

    def _bg_overdue(self, now: float) -> bool:
        return bool(self._bg_since) and (
            now - self._bg_since >= BACKGROUND_PATIENCE_S
            and now - self._bg_asked_at <= 2 * BACKGROUND_RECHECK_S
        )

    def _fit_s(self, weight: int, budget: int, reserve: int, now: float) -> float:
        """Seconds until `weight` fits `budget` less `reserve` (0: now)."""
        free = budget - reserve - self.used()
        weight = min(weight, max(1, budget - reserve))  # heavier than the budget: alone
        if free >= weight:
            return 0.0
        for at, w in self._done:  # oldest first: when enough has left the window
            free += w
            if free >= weight:
                return max(at + self.window_s - now, 0.001)
        return IN_FLIGHT_RECHECK_S

    def take(self, weight: int) -> None:
        """Count a request of `weight` going out now; `done(weight)` once it is answered."""
        self._in_flight += weight

    def done(self, weight: int) -> None:
        """Its answer came (or it failed): it leaves the window a minute from now."""
        self._in_flight -= weight
        if not weight:
            return
        self._done.append((self._clock(), weight))
        self._done_sum += weight

    def sync(self, used_by_exchange: int) -> None:
        """The exchange's count for our IP (`X-MBX-USED-WEIGHT-1M`): weight it counts that
        we do not (someone else on the IP) is counted as spent now."""
        self.peak_seen = max(self.peak_seen, used_by_exchange)
        extra = used_by_exchange - self.used()
        if extra > 0:
            self._done.append((self._clock(), extra))
            self._done_sum += extra

    def hold(self, seconds: float) -> None:
        """A Retry-After (429 / 418): nothing goes out for `seconds`."""
        self._hold_until = max(self._hold_until, self._clock() + seconds)

    def hold_s(self) -> float:
        return max(self._hold_until - self._clock(), 0.0)
