"""The simulated exchange's request limits, as strict as Binance's: request weight per IP
over a rolling minute with the documented weights, a 429 (Retry-After) that is not
processed, a 418 ban for an IP that keeps sending into the Retry-After window, bans that
escalate, and the order count per account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import pytest

from actors.exchangesim.weights import MAX_BAN_S, Limiter, LimitsCfg, request_weight
from tests.exchangesim.rig import client, run, running, sim_cfg

IP = "10.0.0.1"


def test_documented_weights() -> None:
    """Binance's weights: GET order 4, openOrders 6 with a symbol / 80 without, myTrades 5
    by order / 20 without, account 20, exchangeInfo 20, new / cancel 1, depth by limit."""
    sym = {"symbol": "BTCUSDT"}
    assert request_weight("GET", "/api/v3/order", sym) == 4
    assert request_weight("GET", "/api/v3/openOrders", sym) == 6
    assert request_weight("GET", "/api/v3/openOrders", {}) == 80
    assert request_weight("GET", "/api/v3/myTrades", {**sym, "orderId": "7"}) == 5
    assert request_weight("GET", "/api/v3/myTrades", sym) == 20
    assert request_weight("GET", "/api/v3/account", {}) == 20
    assert request_weight("GET", "/api/v3/exchangeInfo", {}) == 20
    assert request_weight("POST", "/api/v3/order", sym) == 1
    assert request_weight("DELETE", "/api/v3/order", sym) == 1
    assert request_weight("GET", "/api/v3/time", {}) == 1
    depth = [
        request_weight("GET", "/api/v3/depth", {"limit": str(n)}) for n in (5, 500, 1000, 5000)
    ]
    assert depth == [5, 25, 50, 250]


def test_weight_rolls_over_one_minute_and_a_refusal_is_not_counted() -> None:
    """100 weight a minute: 96 then 4 fit, the next 4 does not (429, Retry-After until the
    first request leaves the window, not counted); after the minute it fits again."""
    lim = Limiter(LimitsCfg(weight_per_min=100))
    assert lim.admit(IP, 96, 0.0, 0).headers["X-MBX-USED-WEIGHT-1M"] == "96"
    assert lim.admit(IP, 4, 10.0, 0).headers["X-MBX-USED-WEIGHT-1M"] == "100"
    refused = lim.admit(IP, 4, 20.0, 0)
    assert refused.status == 429 and refused.body["code"] == -1003
    assert refused.headers["Retry-After"] == "40"  # 96 leaves at 60.0
    assert lim.used(IP, 20.0) == 100
    assert lim.admit("10.0.0.2", 4, 20.0, 0).status == 0  # per IP, not shared
    ok = lim.admit(IP, 4, 60.5, 0)
    assert ok.status == 0 and ok.headers["X-MBX-USED-WEIGHT-1M"] == "8"


def test_sending_into_the_retry_after_window_earns_an_escalating_ban() -> None:
    """After a 429, requests before its Retry-After are violations: the `ban_after`-th is
    418 with the ban's Retry-After; the ban holds until it ends; the next ban is twice as
    long, at most 3 days."""
    lim = Limiter(LimitsCfg(weight_per_min=10, ban_s=120.0, ban_after=2))
    lim.admit(IP, 10, 0.0, 0)
    assert lim.admit(IP, 1, 1.0, 0).status == 429  # Retry-After 59
    assert lim.admit(IP, 1, 2.0, 0).status == 429  # violation 1
    ban = lim.admit(IP, 1, 3.0, 1_000_000)  # violation 2: banned
    assert ban.status == 418 and ban.headers["Retry-After"] == "120"
    assert "IP banned until 1120000" in str(ban.body["msg"])
    assert lim.admit(IP, 1, 122.0, 0).status == 418  # still banned, the window is empty
    assert lim.admit(IP, 1, 123.5, 0).status == 0
    lim.admit(IP, 9, 124.0, 0)
    assert lim.admit(IP, 1, 125.0, 0).status == 429
    lim.admit(IP, 1, 126.0, 0)
    second = lim.admit(IP, 1, 127.0, 0)
    assert second.status == 418 and second.headers["Retry-After"] == "240"
    capped = Limiter(LimitsCfg(weight_per_min=1, ban_s=MAX_BAN_S, ban_after=1))
    for t in (0.0, 1.0):
        capped.admit(IP, 1, t, 0)
    assert capped.admit(IP, 1, 2.0, 0).headers["Retry-After"] == str(int(MAX_BAN_S))


def test_order_count_per_account_over_10_seconds() -> None:
    lim = Limiter(LimitsCfg(orders_per_10s=3))
    for i in range(3):
        assert lim.admit_order(
            "key",
            float(i),
        ).headers["X-MBX-ORDER-COUNT-10S"] == str(i + 1)
    refused = lim.admit_order("key", 3.0)
    assert refused.status == 429 and refused.body["code"] == -1015
    assert "Retry-After" not in refused.headers
    assert lim.admit_order("other", 3.0).status == 0
    assert lim.admit_order("key", 10.5).status == 0  # the first left the 10 s


def test_exchange_info_and_header_report_the_configured_limit(tmp_path: Path) -> None:
    """exchangeInfo advertises the configured REQUEST_WEIGHT limit, and every answer says
    the IP's weight used: exchangeInfo 20, then time 1."""

    async def body() -> tuple[int, list[Any], str | None]:
        async with running(tmp_path, sim_cfg(request_weight_per_min=700)) as rig:
            async with aiohttp.ClientSession() as s:
                async with s.get(rig.base_url + "/api/v3/exchangeInfo") as r:
                    info = await r.json()
                    first = int(r.headers["X-MBX-USED-WEIGHT-1M"])
                async with s.get(rig.base_url + "/api/v3/time") as r:
                    return first, info["rateLimits"], r.headers.get("X-MBX-USED-WEIGHT-1M")

    first, limits, second = run(body())
    weight = next(x for x in limits if x["rateLimitType"] == "REQUEST_WEIGHT")
    assert (weight["limit"], weight["interval"], weight["intervalNum"]) == (700, "MINUTE", 1)
    assert (first, second) == (20, "21")


def test_over_the_limit_the_order_is_not_processed_then_the_ip_is_banned(tmp_path: Path) -> None:
    """Over the weight limit a new order is refused with 429 -1003 and a Retry-After, and
    the exchange never takes it; a client that keeps sending is banned (418)."""

    async def body() -> tuple[Any, list[int]]:
        sim = sim_cfg(request_weight_per_min=30, ip_ban_after=2, ip_ban_s=60.0)
        async with running(tmp_path, sim) as rig, client(rig) as ex:
            await ex.load_markets()  # exchangeInfo: 20
            for _ in range(10):
                await ex.fetch_time()  # 30
            with pytest.raises(ccxt.DDoSProtection):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000)
            headers = dict(ex.last_response_headers)
            assert not rig.exchange.orders
            statuses = []
            async with aiohttp.ClientSession() as s:
                for _ in range(3):
                    async with s.get(rig.base_url + "/api/v3/time") as r:
                        statuses.append(r.status)
            assert not rig.exchange.orders
            return headers, statuses

    headers, statuses = run(body())
    assert int(headers["Retry-After"]) > 0 and headers["X-MBX-USED-WEIGHT-1M"] == "30"
    assert statuses == [429, 418, 418]
