"""The exchange as ccxt gives it, and every REST call to it: built from the venue config
(`new_exchange`: ccxt is imported here, in a ccxt connector only), paced by the venue's
token bucket (calls) and by the exchange's request weight (`weight.WeightBudget`: every
HTTP request ccxt makes passes `Rest.attach`'s gate, weighed by ccxt's own cost of its
endpoint; the budget follows the exchange's `X-MBX-USED-WEIGHT-1M` and holds every
request while a Retry-After runs), and sent again when the exchange refused it before
processing it (a 429 / 418 with its Retry-After, or a backoff; -1021 after a resync of
the time offset). Any other failure goes to the caller, classified (`errors.classify`).
A 418 (a ban), or a Retry-After longer than the weight window and a margin
(`Rest.max_hold_s`), is not waited out: the session is told to end (`Rest.on_long_hold`)
and every request fails at once (`RateHeld`) until it is over; a new order that cannot
leave the gate within its bound is `NotSent`, as is any other request that waited there
`request_timeout_s` (its caller gave up: sent, it would take the room of those awaited).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ccxt.base import errors as ccxt_errors

from actors.connector.ccxt import errors
from actors.connector.ccxt.fence import Fence
from actors.connector.ccxt.gate import NOT_SENT
from actors.connector.ccxt.weight import (
    BINANCE_WEIGHT_PER_COST,
    DEFAULT_ORDERS_10S,
    ORDERS_10S,
    WeightBudget,
)
from actors.connector.ratelimit import TokenBucket
from protocol.ccxt_config import CcxtCfg
from protocol.config import VenueCfg

HOLD_MARGIN_S = 5.0  # a 429's Retry-After up to the weight window plus this is waited out
MAX_RETRIES = 5  # a request refused before processing (429, -1021) is sent again this often
BAN_UNKNOWN_S = 120.0  # a 418 whose Retry-After we cannot read: Binance's shortest ban
MAX_RETRY_AFTER_S = 3 * 86400.0  # Binance's longest ban: a longer Retry-After is cut to it
NEW_ORDER_PATHS = frozenset({"order", "order/cancelReplace"})  # POSTs counted as ORDERS
# the weight budget's share a background request (the poll: `poll.poll_live` sets
# `BACKGROUND`) may use: the rest stays free for orders, cancels and the OMS's queries
BACKGROUND_SHARE = 0.5
BACKGROUND: contextvars.ContextVar[bool] = contextvars.ContextVar("ccxt_background", default=False)
# called (in a submit's task: `gate.Gates`) when a request of it leaves the weight gate and
# goes on the wire: from then on the order may be at the exchange, it is not withdrawn
ON_WIRE: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "ccxt_on_wire", default=None
)
# set around a create (`flows.Flows.noting_sends`): called when its new-order POST leaves
# the gate, the time from which the create may reach the exchange (a wait there is not)
ORDER_OUT: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "ccxt_order_out", default=None
)
# set by a flow whose new order must not go out once a mass cancel began after the flow
# did (a replace: its cancel step's answer may come back after the fence is down): the
# `Fence.epoch` it started in (`Rest.fence`)
FENCE_EPOCH: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "ccxt_fence_epoch", default=None
)
# set by a request that must not wait at the gate (the mass cancel before its answer:
# risk's deadline): a Retry-After that begins meanwhile, or weight spent up to the limit
# it may use, fails it at once (`NotSent`, "rate limited")
HOLD_REFUSES: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "ccxt_hold_refuses", default=False
)
# set by the kill switch's mass cancel: its requests may use the exchange's whole limit,
# the headroom above our budget (`weight_budget_fraction`) too, never beyond the limit
HEADROOM: contextvars.ContextVar[bool] = contextvars.ContextVar("ccxt_headroom", default=False)


class ExchangeSetupError(RuntimeError):
    """The exchange cannot be built (an unknown ccxt id, a credential not set)."""


class NotSent(ccxt_errors.ExchangeNotAvailable):  # type: ignore[misc]
    """A request that never went out: the exchange's limits would hold it past its bound
    (`Rest.max_order_wait_s` for a new order)."""


class RateHeld(NotSent):
    """A request that never went out: a 418 ban, or a 429's Retry-After longer than
    `Rest.max_hold_s`, holds every request; the session ends with this reason
    (`Rest.on_long_hold`)."""


def _raise_swallowed_cancel() -> None:
    """Python 3.11's `asyncio.wait_for` returns when the awaited event is set as the task is
    cancelled (the cancel is lost): a submit withdrawn at the gate as the mass cancel
    raises its fence would go on, be `NotSent` and report a second final state."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def exchange_config(ccfg: CcxtCfg, api_key: str, secret: str, base_url: str) -> dict[str, Any]:
    """The ccxt constructor config of a venue: spot only, no ccxt rate limiter (we pace),
    the venue's recvWindow; with `base_url`, every REST and WebSocket URL of the exchange
    class points there (the local exchange), else the exchange's own URLs."""
    from actors.connector.ccxt.urls import exchange_config as config_at

    config: dict[str, Any] = dict(
        config_at(base_url or "https://unused.invalid", api_key, secret, ccfg.recv_window_ms)
    )
    if not base_url:
        del config["urls"]
    return config


def import_ccxt() -> None:
    """Import ccxt.pro (~0.6 s of CPU: its exchange classes). The adapter calls it while the
    connector starts, before READY: imported at the first session instead, it blocked the
    connector's loop past the hang limit on a loaded machine, and the supervisor killed it
    as hung after every restart (12 restarts in a short chaos run at load 25)."""
    import ccxt.pro  # noqa: F401


def new_exchange(ccfg: CcxtCfg, environ: Mapping[str, str], base_url: str) -> Any:
    """A ccxt.pro exchange instance (ccxt is imported here, in the connector only)."""
    missing = [v for v in (ccfg.api_key_env, ccfg.secret_env) if not environ.get(v)]
    if missing:
        raise ExchangeSetupError(f"environment variable {missing[0]} is not set")
    import ccxt.pro as ccxtpro

    cls = getattr(ccxtpro, ccfg.exchange, None)
    if cls is None:
        raise ExchangeSetupError(f"ccxt has no websocket exchange {ccfg.exchange!r}")
    key, secret = environ[ccfg.api_key_env], environ[ccfg.secret_env]
    exchange = cls(exchange_config(ccfg, key, secret, base_url))
    if ccfg.sandbox:
        exchange.set_sandbox_mode(True)
    return exchange


class Rest:
    """REST calls to one exchange (`ex`, set once a session built it)."""

    def __init__(self, vcfg: VenueCfg, log: Any, secrets: Sequence[str]) -> None:
        self.ex: Any = None
        self.log = log
        self._secrets = tuple(secrets)
        self._bucket = TokenBucket(vcfg.rate_limit_per_s, vcfg.rate_burst)
        self._request_timeout_s = vcfg.request_timeout_s
        fraction = vcfg.ccxt.weight_budget_fraction if vcfg.ccxt is not None else 0.8
        self.budget = WeightBudget(fraction)
        self.orders = WeightBudget(fraction, DEFAULT_ORDERS_10S, kind=ORDERS_10S)
        self.failures: dict[str, int] = {}
        # a Retry-After longer than this (or any 418: a ban) is not waited out: the session
        # ends (the venue goes DOWN, the OMS stops sending) and no connect goes out until
        # it is over. A 429 of the IP's minute window (Retry-After <= 60 s, Binance's
        # usual) is waited out: requests hold, new orders keep their bound at the gate
        self.max_hold_s = self.budget.window_s + HOLD_MARGIN_S
        # a new order waits at most this long at the gate (one ORDERS window and a
        # request's time), else it is not sent and reported so
        self.max_order_wait_s = vcfg.request_timeout_s + self.orders.window_s
        self.on_long_hold: Callable[[str], None] = lambda _reason: None
        self._held_reason = ""
        self.orders_waiting = 0  # new orders waiting at the gate now
        self._held_until = 0.0  # monotonic end of the hold last reported to `on_long_hold`
        self.fence = Fence()  # the mass cancel's: no new-order POST leaves the gate

    def attach(self, ex: Any) -> Any:
        """`ex` with every HTTP request it makes gated by the weight budget and, a new
        order, the order count (its `fetch2`, which ccxt's `request` calls for each one),
        timed out `request_timeout_s` after it went out, and every answer's headers read
        (`on_rest_response`: the used weight and order count, a Retry-After, exchangeInfo's
        limits)."""
        inner_fetch2 = ex.fetch2
        inner_answer = ex.on_rest_response

        async def fetch2(
            path: str, api: Any = "public", method: str = "GET", params: Any = None,
            config: Any = None,
        ) -> Any:  # fmt: skip
            params = {} if params is None else params
            config = {} if config is None else config
            cost = ex.calculate_rate_limiter_cost(api, method, path, params, config)
            weight = max(1, round(float(cost) * BINANCE_WEIGHT_PER_COST))
            orders = int(method == "POST" and path in NEW_ORDER_PATHS)
            await self._weigh_in(weight, orders)
            if self.ex is not ex:  # the session ended while it waited: never sent
                raise ccxt_errors.ExchangeClosedByUser("the session ended before it was sent")
            if (on_wire := ON_WIRE.get()) is not None:
                on_wire()
            if orders and (order_out := ORDER_OUT.get()) is not None:
                order_out()
            self.budget.take(weight)
            self.orders.take(orders)
            self.fence.on_wire(orders)
            try:  # the answer's time limit starts when it goes out, not while it waits
                return await asyncio.wait_for(
                    inner_fetch2(path, api, method, params, config), self._request_timeout_s
                )
            finally:
                self.budget.done(weight)
                self.orders.done(orders)
                self.fence.on_wire(-orders)

        def on_rest_response(
            code: Any, reason: Any, url: str, method: str, headers: Any, body: Any,
            request_headers: Any, request_body: Any,
        ) -> Any:  # fmt: skip
            self._read_answer(code, url, headers, body)
            return inner_answer(
                code, reason, url, method, headers, body, request_headers, request_body
            )

        ex.fetch2 = fetch2
        ex.on_rest_response = on_rest_response
        return ex

    async def _weigh_in(self, weight: int, orders: int) -> None:
        """Wait until `weight` fits the budget, `orders` new orders the order count, and
        no Retry-After holds. Raises `RateHeld` while a hold that ended the session runs, and
        `NotSent` for a new order that cannot leave within `max_order_wait_s` (the orders
        waiting ahead of it fill the count for longer) or waited that long already, and for
        any other request that waited `request_timeout_s` (`_bounded_wait_s`)."""
        waited = counted = False
        share = BACKGROUND_SHARE if BACKGROUND.get() else 1.0
        whole_limit = HEADROOM.get()
        since = time.monotonic()
        self._check_fence(orders)
        try:
            while (
                wait_s := max(
                    self.budget.wait_s(weight, share, whole_limit=whole_limit),
                    self.orders.wait_s(orders) if orders else 0,
                )
            ) > 0:
                self.check_hold()
                if HOLD_REFUSES.get():
                    raise NotSent(f"{NOT_SENT} rate limited: {self.weight_spent()}")
                if orders and not counted:
                    self._order_can_leave()
                    self.orders_waiting += 1
                    counted = True
                wait_s = self._bounded_wait_s(wait_s, since, orders)
                if not waited:
                    waited = True
                    self.budget.waits += 1
                    self.log.info(
                        "ccxt_weight_wait", weight=weight, used=self.budget.used(),
                        budget=self.budget.budget, orders=self.orders.used(),
                        background=share < 1, wait_s=round(wait_s, 3),
                    )  # fmt: skip
                if orders:  # woken by a mass cancel's fence
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.fence.raised.wait(), wait_s)
                    _raise_swallowed_cancel()
                    self._check_fence(orders)
                else:
                    await asyncio.sleep(wait_s)
        finally:
            if counted:
                self.orders_waiting -= 1

    def weight_spent(self) -> str:
        """Why a request cannot go now: a hold's time left, or the weight used of the
        exchange's limit this minute."""
        if (hold_s := self.budget.hold_s()) > 0:
            return f"{hold_s:.0f} s left"
        used, limit = self.budget.used(), self.budget.limit
        return f"request weight {used} of its limit {limit} used this minute"

    def _check_fence(self, orders: int) -> None:
        if orders and (refusal := self.fence.refusal(FENCE_EPOCH.get())):
            raise NotSent(f"{NOT_SENT} {refusal}")

    def _order_can_leave(self) -> None:
        """Raise `NotSent` when the new orders waiting already (each before this one)
        keep the order count full past `max_order_wait_s`."""
        ahead = self.orders_waiting
        if ahead + 1 <= self.orders.budget:
            leaves_in_s = self.orders.wait_s(ahead + 1)
            if leaves_in_s <= self.max_order_wait_s:
                return
        raise NotSent(
            f"{NOT_SENT} {ahead} new orders wait for the exchange's ORDERS count before it "
            f"({self.orders.budget} per {self.orders.window_s:g} s): it could not go out "
            f"within {self.max_order_wait_s:g} s"
        )

    def _bounded_wait_s(self, wait_s: float, since: float, orders: int) -> float:
        """`wait_s`, cut to what is left of the request's bound at the gate; `NotSent` once
        none is. A new order's is `max_order_wait_s`; any other request's is
        `request_timeout_s`: its caller (the OMS, the heartbeat) has given up by then, and
        sent it would only take room from the requests still awaited (a cancel)."""
        bound_s = self.max_order_wait_s if orders else self._request_timeout_s
        left_s = bound_s - (time.monotonic() - since)
        if left_s <= 0:
            spent = f"ORDERS {self.orders.used()}/{self.orders.budget}" if orders else ""
            raise NotSent(
                f"{NOT_SENT} waited {bound_s:g} s for the exchange's request limits "
                f"({spent or self.weight_spent()})"
            )
        return min(wait_s, left_s)

    def _read_answer(self, code: Any, url: str, headers: Any, body: Any) -> None:
        if not isinstance(headers, Mapping):
            return
        lower = {str(k).lower(): v for k, v in headers.items()}
        used = lower.get("x-mbx-used-weight-1m")
        if used is not None and str(used).isdigit():
            self.budget.sync(int(used))
        orders = lower.get("x-mbx-order-count-10s")
        if orders is not None and str(orders).isdigit():
            self.orders.sync(int(orders))
        if code in (418, 429):
            failure = errors.classify(
                ccxt_errors.DDoSProtection(str(body)[:300]), headers=headers,
                now_ms=time.time_ns() // 1_000_000,
            )  # fmt: skip
            hold = failure.retry_after_s
            if hold is None and code == 418:
                hold = BAN_UNKNOWN_S
            if hold is not None:  # the IP's limit: no request at all until it has passed
                self._hold(hold, banned=code == 418)
            # a 429 without one is the account's order count (Binance -1015): only that
            # call backs off (`call`), cancels and lookups go on
            self.log.warning(
                "ccxt_rate_limited", status=code, hold_s=round(hold or 0.0, 3),
                reason=failure.reason,
            )  # fmt: skip
        elif code == 200 and "/exchangeInfo" in url and isinstance(body, str):
            try:
                limits = json.loads(body).get("rateLimits")
            except (ValueError, AttributeError):
                return
            if isinstance(limits, list):
                rows = [x for x in limits if isinstance(x, Mapping)]
                self.budget.learn(rows)
                self.orders.learn(rows)
                self.log.info(
                    "ccxt_weight_limit", limit=self.budget.limit, budget=self.budget.budget,
                    orders_10s=self.orders.limit, orders_budget=self.orders.budget,
                )  # fmt: skip

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One REST call: paced by the token bucket and any rate-limit hold; sent again
        (at most MAX_RETRIES) when the exchange refused it before processing it (429 /
        418 with its Retry-After, -1021 after a time resync). Other failures raise. Each
        HTTP request of it has `request_timeout_s` from when it goes out (`attach`): the
        time it waits for the weight budget is not a lost answer."""
        for attempt in range(MAX_RETRIES + 1):
            await self._pace()
            try:
                return await fn(*args, **kwargs)
            except TimeoutError as exc:
                raise ccxt_errors.RequestTimeout(
                    f"no answer in {self._request_timeout_s} s"
                ) from exc
            except Exception as exc:
                failure = self.classify(exc)
                if attempt == MAX_RETRIES or failure.kind not in ("backoff", "clock"):
                    raise
                self.count(failure.kind)
                if failure.kind == "backoff":
                    if failure.retry_after_s:  # the IP's: every request holds
                        self._hold(failure.retry_after_s, banned=False)
                    else:  # this call backs off
                        await asyncio.sleep(min(0.5 * 2**attempt, 10.0))
                else:
                    self.log.warning("ccxt_clock_resync", reason=failure.reason)
                    await self.ex.load_time_difference()
        raise AssertionError("unreachable")

    def _hold(self, seconds: float, *, banned: bool) -> None:
        """A Retry-After: every request waits `seconds`; a ban (418), or a hold past
        `max_hold_s`, tells the session to end (`on_long_hold`, once per hold) with a
        reason an operator can read. A Retry-After past `MAX_RETRY_AFTER_S` (malformed:
        "1e300") is held that long."""
        seconds = min(seconds, MAX_RETRY_AFTER_S)
        self.budget.hold(seconds)
        if not banned and seconds <= self.max_hold_s:
            return  # the IP's minute window: waited out
        if time.monotonic() + seconds <= self._held_until:
            return
        self._held_until = time.monotonic() + seconds
        if banned:
            until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time.time() + seconds))
            self._held_reason = f"IP banned until {until} (418, Retry-After {seconds:g} s)"
        else:
            self._held_reason = f"rate limited for {seconds:g} s (429 Retry-After)"
        self.log.error("ccxt_rate_hold_too_long", hold_s=round(seconds, 3),
                       reason=self._held_reason)  # fmt: skip
        self.on_long_hold(self._held_reason)

    def check_hold(self) -> None:
        """Raise `RateHeld` while a hold that ended the session runs (a ban, or longer than
        `max_hold_s`: nothing is sent until it is over, a session started meanwhile fails
        at once with its reason)."""
        hold_s = self.budget.hold_s()
        if hold_s > 0 and time.monotonic() < self._held_until:
            reason = self._held_reason or f"rate limited for {hold_s:.0f} s"
            raise RateHeld(f"{reason}: {hold_s:.0f} s left")

    async def hold_over(self) -> None:
        """Until a hold waited out (a 429 of the minute window) is over; `RateHeld` at once
        while one that ended the session runs. A connect waits here before it builds an
        exchange (not one built and closed at each backoff)."""
        while (hold_s := self.budget.hold_s()) > 0:
            self.check_hold()
            await asyncio.sleep(hold_s)

    async def _pace(self) -> None:
        """The token bucket. A Retry-After is waited out at the weight gate (`_weigh_in`),
        where a new order keeps its bound (`max_order_wait_s`) and a mass cancel's fence
        wakes it; here only a hold that ended the session fails the call (`RateHeld`)."""
        while True:
            self.check_hold()
            wait_s = self._bucket.wait_s()
            if wait_s <= 0 and self._bucket.try_take():
                return
            await asyncio.sleep(max(wait_s, 0.001))

    def classify(self, exc: BaseException) -> errors.Failure:
        headers = getattr(self.ex, "last_response_headers", None)
        return errors.classify(
            exc,
            headers=headers if isinstance(headers, Mapping) else None,
            now_ms=time.time_ns() // 1_000_000,
            secrets=self._secrets,
        )

    def count(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1
