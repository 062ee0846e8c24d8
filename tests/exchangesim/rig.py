"""An in-process simulated exchange on a plain asyncio loop, and a real ccxt client for it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import ccxt.pro

from actors.connector.ccxt.urls import exchange_config
from actors.exchangesim.auth import Credentials
from actors.exchangesim.book import Exchange
from actors.exchangesim.faults import Faults
from actors.exchangesim.rest import RestApi
from actors.exchangesim.server import ExchangeServer
from actors.exchangesim.wsapi import WsApi
from actors.venuesim.store import SimStore
from protocol.config import SimCfg

API_KEY = "simKey0123456789"
SECRET = "simSecret0123456789"
T = TypeVar("T")


def sim_cfg(**kw: Any) -> SimCfg:
    base: dict[str, Any] = {
        "reference_prices": {"BTC/USDT": Decimal("50000"), "ETH/USDT": Decimal("3000")},
        "tick_size": Decimal("0.01"),
        "quote_qty": Decimal("2"),
        "quote_levels": 5,
        "volatility_bps": 5.0,
    }
    return SimCfg(**{**base, **kw})


@dataclass
class Rig:
    server: ExchangeServer
    exchange: Exchange
    faults: Faults
    store: SimStore
    base_url: str

    def client(self, *, key: str = API_KEY, secret: str = SECRET, recv_ms: int = 5000) -> Any:
        return ccxt.pro.binance(exchange_config(self.base_url, key, secret, recv_ms))


@asynccontextmanager
async def running(
    state_dir: Path, sim: SimCfg | None = None, **exchange_kw: Any
) -> AsyncIterator[Rig]:
    store = SimStore.open(state_dir)
    exchange = Exchange(sim or sim_cfg(), store, seed=7, **exchange_kw)
    faults = Faults()
    creds = Credentials(API_KEY, SECRET)

    def clock() -> int:
        return int(time.time() * 1000) + faults.clock_skew_ms

    server = ExchangeServer(RestApi(exchange, creds, clock), WsApi(creds, clock), faults)
    port = await server.start("127.0.0.1", 0)
    try:
        yield Rig(server, exchange, faults, store, f"http://127.0.0.1:{port}")
    finally:
        await server.close()
        store.close()


@asynccontextmanager
async def client(rig: Rig, **kw: Any) -> AsyncIterator[Any]:
    ex = rig.client(**kw)
    try:
        yield ex
    finally:
        await ex.close()


def run(coro: Awaitable[T], timeout_s: float = 60.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout_s)

    return asyncio.run(bounded())


async def eventually(pred: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def user_stream(session: Any, rig: Rig) -> Any:
    """A raw WebSocket API connection subscribed to the user-data stream (signed)."""
    from actors.exchangesim.auth import sign

    url = rig.base_url.replace("http", "ws") + "/ws-api/v3"
    ws = await session.ws_connect(url)
    params: dict[str, Any] = {"apiKey": API_KEY, "timestamp": int(time.time() * 1000)}
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params))
    params["signature"] = sign(payload, SECRET)
    await ws.send_json(
        {"id": "s", "method": "userDataStream.subscribe.signature", "params": params}
    )
    reply = await ws.receive_json(timeout=10)
    assert reply["status"] == 200, reply
    return ws
