"""The WebSocket API user-data stream driven by ccxt.pro's watch_orders, watch_my_trades
and watch_balance (userDataStream.subscribe.signature, then executionReport and
outboundAccountPosition events framed as {"subscriptionId": N, "event": {...}})."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from actors.exchangesim.auth import sign
from tests.exchangesim.rig import API_KEY, SECRET, client, eventually, run, running, sim_cfg


def test_watch_orders_and_my_trades_see_a_resting_order_fill(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, sim_cfg(volatility_bps=0.0)) as rig, client(rig) as ex:
            await ex.load_markets()
            orders: list[dict[str, Any]] = []
            trades: list[dict[str, Any]] = []

            async def pump(watch: Any, into: list[dict[str, Any]]) -> None:
                while True:
                    into.extend(await watch("BTC/USDT"))

            ex.newUpdates = True
            tasks = [
                asyncio.ensure_future(pump(ex.watch_orders, orders)),
                asyncio.ensure_future(pump(ex.watch_my_trades, trades)),
            ]
            try:
                await eventually(lambda: rig.server.subscribers == 1)
                o = await ex.create_order(
                    "BTC/USDT", "limit", "buy", 3, 50000.0, {"clientOrderId": "ws-1"}
                )
                await eventually(lambda: any(x["id"] == o["id"] for x in orders))
                assert orders[-1]["status"] == "open" and orders[-1]["clientOrderId"] == "ws-1"
                rig.exchange.references["BTCUSDT"] = Decimal("49990")
                rig.server.publish(rig.exchange.liquidity_step(0))
                await eventually(lambda: sum(t["amount"] for t in trades) == 3)
                await eventually(lambda: orders[-1]["status"] == "closed")
                assert {t["order"] for t in trades} == {o["id"]}
                assert {t["takerOrMaker"] for t in trades} == {"maker"}
                assert orders[-1]["filled"] == 3 and orders[-1]["clientOrderId"] == "ws-1"
            finally:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    run(body())


def test_cancel_event_carries_the_original_client_id(tmp_path: Path) -> None:
    """Binance's executionReport of a cancel has c = the cancel's id, C = the order's;
    ccxt reports C as the order's clientOrderId."""

    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            await ex.load_markets()
            watch = asyncio.ensure_future(ex.watch_orders("BTC/USDT"))
            await eventually(lambda: rig.server.subscribers == 1)
            o = await ex.create_order(
                "BTC/USDT", "limit", "sell", 0.1, 60000, {"clientOrderId": "keep-me"}
            )
            await watch
            ex.newUpdates = True
            watch = asyncio.ensure_future(ex.watch_orders("BTC/USDT"))
            await ex.cancel_order(o["id"], "BTC/USDT", {"newClientOrderId": "the-cancel"})
            (update,) = await watch
            assert update["status"] == "canceled" and update["clientOrderId"] == "keep-me"
            assert update["info"]["c"] == "the-cancel"

    run(body())


def test_watch_balance_follows_locks(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            await ex.load_markets()
            watch = asyncio.ensure_future(ex.watch_balance())
            await eventually(lambda: rig.server.subscribers == 1)
            await ex.create_order("BTC/USDT", "limit", "sell", 0.25, 60000)
            bal = await watch
            assert bal["BTC"]["used"] == 0.25 and bal["BTC"]["free"] == 999.75

    run(body())


async def _ws_request(url: str, message: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.ws_connect(url) as ws:
        await ws.send_str(json.dumps(message))
        reply: dict[str, Any] = json.loads((await ws.receive(timeout=10)).data)
        return reply


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"apiKey": "someoneElse1"}, -2015),
        ({"signature": "0" * 64}, -1022),
        ({"timestamp": 1}, -1021),
    ],
)
def test_subscribe_is_refused_like_binance(
    tmp_path: Path, change: dict[str, Any], code: int
) -> None:
    async def body() -> dict[str, Any]:
        async with running(tmp_path) as rig:
            async with aiohttp.ClientSession() as s:
                async with s.get(rig.base_url + "/api/v3/time") as r:
                    now = (await r.json())["serverTime"]
            params: dict[str, Any] = {"apiKey": API_KEY, "timestamp": now}
            payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
            params["signature"] = sign(payload, SECRET)
            params.update(change)
            url = rig.base_url.replace("http", "ws") + "/ws-api/v3"
            msg = {"id": "7", "method": "userDataStream.subscribe.signature", "params": params}
            reply = await _ws_request(url, msg)
            assert rig.server.subscribers == 0
            return reply

    reply = run(body())
    assert reply["id"] == "7" and reply["status"] in (400, 401)
    assert reply["error"]["code"] == code
