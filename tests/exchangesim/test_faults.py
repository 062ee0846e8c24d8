"""Each exchange fault, as the connector will meet it through ccxt (or a raw client where
ccxt would hide what the wire carried)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import pytest

from actors.exchangesim.faults import FaultError, Faults, parse_value
from tests.exchangesim.rig import client, run, running, user_stream


def test_timeout_after_accept_keeps_the_order_and_withholds_the_answer(tmp_path: Path) -> None:
    """The order is taken and persisted, the client times out; a query by client id finds
    it, a resend with the same id while it is open is a duplicate, the next order is
    answered normally."""

    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            await ex.load_markets()
            ex.timeout = 1000
            rig.faults.apply("timeout_after_accept", 1)
            params = {"clientOrderId": "held-1"}
            with pytest.raises(ccxt.RequestTimeout):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000, params)
            got = await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "held-1"})
            assert got["status"] == "open"
            with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent."):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000, params)
            o = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000)
            assert o["status"] == "open" and len(rig.exchange.orders) == 2

    run(body())


def test_delay_create_holds_the_order_before_it_is_processed(tmp_path: Path) -> None:
    """delay_create_ms: the client times out, the exchange has no such order yet; once
    the hold is over the order is there (a create that lands late)."""

    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex, client(rig) as other:
            await asyncio.gather(ex.load_markets(), other.load_markets())
            ex.timeout = 200
            rig.faults.apply("delay_create_ms", 1000)
            params = {"clientOrderId": "late-1"}
            with pytest.raises(ccxt.RequestTimeout):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000, params)
            ask = {"origClientOrderId": "late-1"}
            with pytest.raises(ccxt.OrderNotFound):
                await other.fetch_order(None, "BTC/USDT", ask)
            deadline = time.monotonic() + 10.0
            while not rig.exchange.orders:
                assert time.monotonic() < deadline, "the held create never landed"
                await asyncio.sleep(0.05)
            assert (await other.fetch_order(None, "BTC/USDT", ask))["status"] == "open"

    run(body())


def test_http_5xx_answers_503_without_processing(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            await ex.load_markets()
            rig.faults.apply("http_5xx", 2)
            for _ in range(2):
                with pytest.raises(ccxt.ExchangeNotAvailable):
                    await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000)
            assert not rig.exchange.orders
            await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000)
            assert len(rig.exchange.orders) == 1

    run(body())


def test_rate_limit_answers_429_with_retry_after(tmp_path: Path) -> None:
    async def body() -> tuple[int, str | None, Any]:
        async with running(tmp_path) as rig:
            rig.faults.apply("rate_limit", 2)
            async with aiohttp.ClientSession() as s:
                async with s.get(rig.base_url + "/api/v3/time") as r:
                    raw = r.status, r.headers.get("Retry-After"), await r.json()
            async with client(rig) as ex:
                with pytest.raises(ccxt.DDoSProtection):
                    await ex.fetch_time()
                assert await ex.fetch_time() > 0
            return raw

    status, retry_after, answer = run(body())
    assert (status, retry_after, answer["code"]) == (429, "1", -1003)
    assert answer["msg"].startswith("Too much request weight used")


def test_duplicate_and_delayed_events(tmp_path: Path) -> None:
    """duplicate_trade_events: every executionReport twice (the account position once);
    delay_trade_events_ms: nothing arrives before the delay."""

    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex, aiohttp.ClientSession() as s:
            await ex.load_markets()
            ws = await user_stream(s, rig)
            rig.faults.apply("duplicate_trade_events", "on")
            rig.faults.apply("delay_trade_events_ms", 300)
            sent_at = time.monotonic()
            await ex.create_order("BTC/USDT", "market", "buy", 0.01)
            frames = [await ws.receive_json(timeout=10) for _ in range(5)]
            assert time.monotonic() - sent_at >= 0.3
            kinds = [
                (f["event"]["e"], f["event"]["x"] if "x" in f["event"] else "") for f in frames
            ]
            assert kinds == [
                ("executionReport", "NEW"), ("executionReport", "NEW"),
                ("executionReport", "TRADE"), ("executionReport", "TRADE"),
                ("outboundAccountPosition", ""),
            ]  # fmt: skip
            assert frames[2] == frames[3] and {f["subscriptionId"] for f in frames} == {0}
            await ws.close()

    run(body())


def test_timestamps_us_gives_order_and_event_times_in_microseconds(tmp_path: Path) -> None:
    """timestamps_us: a create's answer and its user-data events carry their times in
    microseconds (what a client sees ~1000 times too large as ms); the server time (the
    clients' clock offset) stays in ms."""

    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex, aiohttp.ClientSession() as s:
            await ex.load_markets()
            ws = await user_stream(s, rig)
            rig.faults.apply("timestamps_us", "on")
            before_ms = int(time.time() * 1000)
            order = await ex.create_order("BTC/USDT", "market", "buy", 0.01)
            assert order["timestamp"] >= before_ms * 1000
            assert abs(await ex.fetch_time() - before_ms) < 60_000
            frame = await ws.receive_json(timeout=10)
            assert frame["event"]["E"] >= before_ms * 1000
            await ws.close()

    run(body())


def test_drop_ws_closes_every_user_stream(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as rig, aiohttp.ClientSession() as s:
            a, b = await user_stream(s, rig), await user_stream(s, rig)
            assert rig.server.subscribers == 2
            await rig.server.drop_ws()
            for ws in (a, b):
                msg = await ws.receive(timeout=10)
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert rig.server.subscribers == 0

    run(body())


def test_fault_values_are_validated_and_clear_resets() -> None:
    assert parse_value("http_5xx", None) == 1
    assert parse_value("clock_skew_ms", "-1500") == -1500
    assert parse_value("duplicate_trade_events", "off") is False
    assert parse_value("timestamps_us", None) is True
    assert parse_value("garble_events", None) == 1
    assert parse_value("html_answer", "2") == 2
    for kind, value in [
        ("http_5xx", "-1"),
        ("http_5xx", "1.5"),
        ("delay_trade_events_ms", None),
        ("delay_trade_events_ms", "nan"),
        ("duplicate_trade_events", "maybe"),
        ("nope", 1),
        ("http_5xx", "1e23"),  # past what the reply that reports it can carry
        ("clock_skew_ms", "-1e23"),
    ]:
        with pytest.raises(FaultError):
            parse_value(kind, value)
    f = Faults()
    f.apply("rate_limit", 1)
    f.apply("clock_skew_ms", 5)
    assert f.active() == {"rate_limit": 1, "clock_skew_ms": 5}
    assert f.take("rate_limit") and not f.take("rate_limit")
    f.apply("clear", None)
    assert f.active() == {}


def test_events_go_out_in_order_under_load(tmp_path: Path) -> None:
    """Many orders at once: every event reaches the stream, in the order produced."""

    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex, aiohttp.ClientSession() as s:
            await ex.load_markets()
            ws = await user_stream(s, rig)
            orders = await asyncio.gather(
                *(ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000 + i) for i in range(20))
            )
            frames = [await ws.receive_json(timeout=10) for _ in range(40)]
            news = [f["event"]["i"] for f in frames if f["event"]["e"] == "executionReport"]
            assert sorted(news) == sorted(int(o["id"]) for o in orders)
            assert news == sorted(news)

    run(body())
