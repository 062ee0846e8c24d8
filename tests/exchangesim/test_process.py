"""The real simulated-exchange process: port file, kill -9 survival (orders, trades,
balances, id counters), credentials check, control faults and inspect."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest

from actors.connector.ccxt.urls import exchange_config as ccxt_config
from actors.exchangesim.book import Exchange
from actors.exchangesim.store import open_store
from protocol.config import load_config
from protocol.domain import OrdType, Side, TimeInForce
from tests.exchangesim.process import (
    KEY_ENV,
    SECRET_ENV,
    VENUE,
    ExchangeProcess,
    exchange_config,
)
from tests.exchangesim.rig import API_KEY, SECRET, run
from tests.helpers import eventually

pytestmark = pytest.mark.integration


@pytest.fixture
def xsim(short_tmp: Path) -> Iterator[ExchangeProcess]:
    proc = ExchangeProcess(short_tmp / "x", exchange_config())
    try:
        yield proc
    finally:
        proc.destroy()


def _client(proc: ExchangeProcess) -> Any:
    return ccxt.pro.binance(ccxt_config(proc.base_url, API_KEY, SECRET, 5000))


def test_state_survives_kill9(xsim: ExchangeProcess) -> None:
    """Orders (open and filled), trades, balances and the order id counter come back after
    a kill -9, on the same port; inspect shows the same ground truth as the REST API."""
    xsim.start()
    port = xsim.port

    async def before() -> dict[str, Any]:
        ex = _client(xsim)
        try:
            rest = await ex.create_order(
                "BTC/USDT", "limit", "buy", 1, 40000, {"clientOrderId": "rest-1"}
            )
            done = await ex.create_order(
                "BTC/USDT", "market", "sell", 0.5, None, {"clientOrderId": "mkt-1"}
            )
            bal = await ex.fetch_balance()
            return {"rest": rest["id"], "done": done["id"], "bal": bal["total"]}
        finally:
            await ex.close()

    seen = run(before())
    xsim.kill9()
    xsim.start()
    assert xsim.port == port

    async def after() -> dict[str, Any]:
        ex = _client(xsim)
        try:
            rest = await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "rest-1"})
            done = await ex.fetch_order(seen["done"], "BTC/USDT")
            trades = await ex.fetch_my_trades("BTC/USDT")
            bal = await ex.fetch_balance()
            new = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000)
            return {"rest": rest, "done": done, "trades": trades, "bal": bal, "new": new}
        finally:
            await ex.close()

    got = run(after())
    assert got["rest"]["id"] == seen["rest"] and got["rest"]["status"] == "open"
    assert got["done"]["status"] == "closed" and got["done"]["filled"] == 0.5
    assert [t["order"] for t in got["trades"]] == [seen["done"]]
    assert got["bal"]["total"] == seen["bal"]
    assert int(got["new"]["id"]) == int(seen["done"]) + 1
    data = xsim.inspect()
    by_cl = {o["client_order_id"]: o for o in data["orders"]}
    assert by_cl["rest-1"]["status"] == "NEW" and by_cl["rest-1"]["is_open"]
    assert by_cl["mkt-1"]["status"] == "FILLED" and by_cl["mkt-1"]["filled_qty"] == "0.5"
    assert [t["order_id"] for t in data["trades"]] == [seen["done"]]
    assert data["balances"]["BTC"]["total"] == "999.5"
    assert data["balances"]["USDT"]["locked"] == "44000.0"  # 40000 + 4000 resting buys


def test_missing_credentials_refuse_to_start(xsim: ExchangeProcess) -> None:
    xsim.start(env={KEY_ENV: "", SECRET_ENV: ""})
    assert xsim.proc is not None
    assert xsim.proc.wait(timeout=30) == 2
    eventually(lambda: xsim.stderr, timeout_s=5)
    assert xsim.stderr == [
        f"exchangesim binance-local: credential variable(s) {KEY_ENV}, {SECRET_ENV} unset"
    ]


async def _until_subscribed(proc: ExchangeProcess, timeout_s: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while (await asyncio.to_thread(proc.control, "status"))["data"]["subscribers"] < 1:
        assert loop.time() < deadline, "no user-data subscription in time"
        await asyncio.sleep(0.05)


def test_faults_set_through_control(xsim: ExchangeProcess) -> None:
    """http_5xx answers 503 (ccxt ExchangeNotAvailable) once; drop_ws closes the
    user-data stream (ccxt's watch fails); status reports the faults; clear ends them."""
    xsim.start()
    reply = xsim.control("http_5xx", 1)
    assert reply["status"] == "ok" and reply["data"]["faults"] == {"http_5xx": 1}
    assert xsim.control("duplicate_trade_events")["data"]["faults"] == {
        "http_5xx": 1,
        "duplicate_trade_events": True,
    }
    off = xsim.control("duplicate_trade_events", "off")  # each report once from here on
    assert off["data"]["faults"] == {"http_5xx": 1}

    async def body() -> None:
        ex = _client(xsim)
        try:
            with pytest.raises(ccxt.ExchangeNotAvailable):
                await ex.load_markets()
            await ex.load_markets()
            watch = asyncio.ensure_future(ex.watch_orders())
            await _until_subscribed(xsim)
            await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000)
            await watch
            watch = asyncio.ensure_future(ex.watch_orders())
            dropped = await asyncio.to_thread(xsim.control, "drop_ws")
            assert dropped["data"]["dropped"] == 1
            with pytest.raises(ccxt.NetworkError):
                await watch
        finally:
            await ex.close()

    run(body())
    assert xsim.control("clear")["data"]["faults"] == {}
    status = xsim.control("status")["data"]
    assert status["open_orders"] == 1 and status["requests"]["GET /api/v3/exchangeInfo"] == 2
    assert xsim.stop() == 0  # SIGTERM: the server and the bridge close, exit 0
    assert xsim.events("actor_stopped")


def test_faults_from_the_sim_table_apply_at_start(short_tmp: Path) -> None:
    """[venues.sim] faults: set when the exchange starts (an unknown one is logged)."""
    proc = ExchangeProcess(short_tmp / "f", exchange_config(faults={"http_5xx": 1, "hang": 3}))
    try:
        proc.start()
        assert proc.control("status")["data"]["faults"] == {"http_5xx": 1}
        assert proc.events("sim_fault_invalid")[0]["kind"] == "hang"

        async def body() -> None:
            ex = _client(proc)
            try:
                with pytest.raises(ccxt.ExchangeNotAvailable):
                    await ex.fetch_time()
                assert await ex.fetch_time() > 0
            finally:
                await ex.close()

        run(body())
    finally:
        proc.destroy()


def test_inspect_reads_the_state_without_the_exchange(short_tmp: Path) -> None:
    """inspect needs no running exchange: a table for people, JSON for scripts; a venue
    with no state yet is exit 1."""
    proc = ExchangeProcess(short_tmp / "i", exchange_config())
    empty = proc.cli("inspect", *proc.cli_args())
    assert empty.returncode == 1 and "no state for venue 'binance-local'" in empty.stderr
    cfg = load_config(proc.config_path, state_dir=str(proc.state_dir))
    vcfg = cfg.venue(VENUE)
    assert vcfg.sim is not None
    store = open_store(cfg.state_path, VENUE)
    ex = Exchange(vcfg.sim, store, seed=1)
    ex.new_order("BTCUSDT", Side.BUY, OrdType.LIMIT, TimeInForce.GTC, Decimal("0.5"),
                 Decimal("40000"), "table-1", 1)  # fmt: skip
    store.close()
    table = proc.cli("inspect", *proc.cli_args())
    assert table.returncode == 0
    row = next(line for line in table.stdout.splitlines() if line.startswith("table-1"))
    assert row.split()[1:5] == ["1", "BTC/USDT", "BUY", "LIMIT"] and "NEW" in row
    data = proc.inspect()
    assert data["orders"][0]["client_order_id"] == "table-1"
    assert data["balances"]["USDT"] == {
        "free": "980000.0", "locked": "20000.0", "total": "1000000.0",
    }  # fmt: skip
