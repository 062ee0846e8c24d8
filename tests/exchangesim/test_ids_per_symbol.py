"""The simulated exchange numbers orders and trades per symbol, as Binance does (ccxt
issue #26092: two symbols' orders with one id in real trading), so the collision the ccxt
connector must survive happens in every test and chaos run with two symbols."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from actors.exchangesim.book import Exchange
from actors.exchangesim.errors import ApiError
from actors.exchangesim.store import inspect, open_store
from protocol.domain import OrdType, Side, TimeInForce
from tests.exchangesim.rig import sim_cfg

D = Decimal
GTC = TimeInForce.GTC


def test_each_symbol_has_its_own_order_and_trade_ids(tmp_path: Path) -> None:
    """BTCUSDT's and ETHUSDT's first orders are both order 1, their first trades both
    trade 1; a cancel or query names (symbol, id) and reaches that symbol's order only;
    a replay and the inspection see the same."""
    cfg, store = sim_cfg(), open_store(tmp_path, "v")
    ex = Exchange(cfg, store, seed=3)
    btc, _, _ = ex.new_order("BTCUSDT", Side.BUY, OrdType.LIMIT, GTC, D("0.01"), D(49000), "b", 1)
    eth, _, _ = ex.new_order("ETHUSDT", Side.BUY, OrdType.LIMIT, GTC, D("0.1"), D(2900), "e", 2)
    assert (btc.symbol, btc.oid, eth.symbol, eth.oid) == ("BTCUSDT", 1, "ETHUSDT", 1)
    _, btc_fills, _ = ex.new_order("BTCUSDT", Side.BUY, OrdType.MARKET, GTC, D("0.01"), None,
                                   "bm", 3)  # fmt: skip
    _, eth_fills, _ = ex.new_order("ETHUSDT", Side.BUY, OrdType.MARKET, GTC, D("0.1"), None,
                                   "em", 4)  # fmt: skip
    assert [(t.market_id, t.oid, t.tid) for t in btc_fills[:1] + eth_fills[:1]] == [
        ("BTCUSDT", 2, 1), ("ETHUSDT", 2, 1)
    ]  # fmt: skip
    ex.cancel("ETHUSDT", ex.find_open("ETHUSDT", 1, None), "x", 5)
    assert ex.find("BTCUSDT", 1, None) is btc and btc.binance_status == "NEW"
    assert eth.binance_status == "CANCELED"
    with pytest.raises(ApiError):
        ex.find_open("ETHUSDT", 1, None)  # BTC's open order 1 is not ETH's
    store.close()
    again = Exchange(cfg, open_store(tmp_path, "v"), seed=3)
    assert {k: o.binance_status for k, o in again.orders.items()} == {
        ("BTCUSDT", 1): "NEW", ("BTCUSDT", 2): "FILLED",
        ("ETHUSDT", 1): "CANCELED", ("ETHUSDT", 2): "FILLED",
    }  # fmt: skip
    assert again.last_tid == ex.last_tid and list(again.open) == [("BTCUSDT", 1)]
    orders = inspect(tmp_path, "v", cfg)["orders"]
    assert [(o["symbol"], o["order_id"]) for o in orders][:2] == [
        ("BTC/USDT", "1"),
        ("ETH/USDT", "1"),
    ]


def test_a_log_numbered_across_symbols_replays(tmp_path: Path) -> None:
    """A log of the build that numbered orders across symbols (its fill / end records
    name no symbol): replayed as it was; new orders go on per symbol from there."""
    cfg, store = sim_cfg(), open_store(tmp_path, "v")
    Exchange(cfg, store, seed=3)  # funded
    acc = {"t": "acc", "side": "BUY", "typ": "LIMIT", "tif": "GTC", "ts": 1}
    store.append([{**acc, "oid": 1, "cl": "b", "sym": "BTCUSDT", "qty": "0.01",
                   "px": "49000", "prio": 1}])  # fmt: skip
    store.append([{**acc, "oid": 2, "cl": "e", "sym": "ETHUSDT", "qty": "0.1",
                   "px": "2900", "prio": 2}])  # fmt: skip
    store.append([{"t": "end", "oid": 2, "st": "CANCELED", "ccl": "x", "ts": 2}])
    store.sync()
    store.close()
    ex = Exchange(cfg, open_store(tmp_path, "v"), seed=3)
    assert {k: o.binance_status for k, o in ex.orders.items()} == {
        ("BTCUSDT", 1): "NEW", ("ETHUSDT", 2): "CANCELED"
    }  # fmt: skip
    o, _, _ = ex.new_order("ETHUSDT", Side.BUY, OrdType.LIMIT, GTC, D("0.1"), D(2900), "e2", 3)
    assert o.oid == 3
