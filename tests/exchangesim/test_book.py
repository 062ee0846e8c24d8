"""The exchange's account as pure state: invariants after random operations, and a replay
of its log rebuilding exactly the same state (what a restart after kill -9 relies on)."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.exchangesim.book import Exchange
from actors.exchangesim.errors import ApiError
from actors.exchangesim.market import EIGHT
from actors.exchangesim.store import inspect, open_store
from protocol.domain import OrdType, Side, TimeInForce
from tests.exchangesim.rig import sim_cfg

D = Decimal
STEP = D("0.00001")


def _state(ex: Exchange) -> dict[str, Any]:
    return {
        "orders": {
            (o.symbol, o.oid): (o.cl_ord_id, o.binance_status, o.cum_qty, o.quote_cum, o.book_px)
            for o in ex.orders.values()
        },
        "open": sorted(ex.open),
        "trades": ex.trades,
        "balances": ex.balances(),
        "refs": ex.references,
        "counters": (ex.last_oid, ex.last_tid, ex.last_prio, ex.step),
    }


def _random_session(ex: Exchange, rng: random.Random, n: int) -> int:
    """n random operations (orders of every kind, cancels, liquidity steps); returns how
    many were refused."""
    refused = 0
    now = 1_000
    for i in range(n):
        now += 7
        roll = rng.random()
        try:
            if roll < 0.15:
                ex.liquidity_step(now)
            elif roll < 0.3 and ex.open:
                o = ex.orders[rng.choice(sorted(ex.open))]
                ex.cancel(o.symbol, ex.find_open(o.symbol, o.oid, None), f"c{i}", now)
            else:
                mid = rng.choice(sorted(ex.markets))
                ref = ex.references[mid]
                side = rng.choice(list(Side))
                typ = OrdType.MARKET if rng.random() < 0.2 else OrdType.LIMIT
                tif = rng.choice(
                    [TimeInForce.GTC, TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK]
                )
                price = None
                if typ is OrdType.LIMIT:
                    price = ref + D(rng.randint(-8, 8)) * D("0.01")
                qty = D(rng.randint(1, 400_000)) * STEP
                cl = f"o{rng.randint(0, 30)}"  # reused often: duplicates only while open
                ex.new_order(mid, side, typ, tif if price else TimeInForce.GTC, qty, price, cl, now)
        except ApiError:
            refused += 1
    return refused


def _check_invariants(ex: Exchange, start: dict[str, Decimal]) -> None:
    locked: dict[str, Decimal] = {}
    for o in ex.open.values():
        assert o.ord_type is OrdType.LIMIT and o.price is not None and o.tif_text == "GTC"
        m = ex.markets[o.symbol]
        asset, amount = (m.quote, o.leaves_qty * o.price) if o.side is Side.BUY else (
            m.base, o.leaves_qty)  # fmt: skip
        locked[asset] = locked.get(asset, D(0)) + amount
    totals = dict(start)
    for t in ex.trades:
        m = ex.markets[t.market_id]
        sign = 1 if t.side is Side.BUY else -1
        totals[m.base] += sign * t.qty
        totals[m.quote] -= sign * t.qty * t.px
        received = (m.base, t.qty) if t.side is Side.BUY else (m.quote, t.qty * t.px)
        assert (t.fee_asset, t.fee) == (received[0], (received[1] * D("0.001")).quantize(EIGHT))
        totals[t.fee_asset] -= t.fee  # Binance's default: 0.1% of the asset received
    for asset, (free, lk) in ex.balances().items():
        assert lk == locked.get(asset, D(0)), asset
        assert free + lk == totals[asset], asset
        assert free >= 0, asset
    open_ids = [o.cl_ord_id for o in ex.open.values()]
    assert len(open_ids) == len(set(open_ids)), "client ids unique among open orders"
    for o in ex.orders.values():
        assert o.cum_qty <= o.order_qty
        mine = (t.qty for t in ex.trades if (t.market_id, t.oid) == (o.symbol, o.oid))
        assert o.cum_qty == sum(mine, D(0))
        if o.binance_status == "FILLED":
            assert o.cum_qty == o.order_qty


def test_random_operations_keep_the_account_consistent_and_replay_exactly(tmp_path: Path) -> None:
    """1200 random operations: balances match the trades, locks match the open orders,
    client ids are unique among open orders; inspect (read while the exchange holds its
    log) and a replay of the log both see exactly that state."""
    cfg = sim_cfg(quote_qty=D("0.5"))
    store = open_store(tmp_path, "v")
    ex = Exchange(cfg, store, seed=3)
    start = {a: f + lk for a, (f, lk) in ex.balances().items()}
    refused = _random_session(ex, random.Random(12), 1200)  # one that leaves some open
    assert 0 < refused < 1200
    statuses = {o.binance_status for o in ex.orders.values()}
    assert {"NEW", "FILLED", "CANCELED", "EXPIRED", "EXPIRED_IN_MATCH"} <= statuses
    _check_invariants(ex, start)
    before = _state(ex)
    data = inspect(tmp_path, "v", cfg)
    assert len(data["orders"]) == len(ex.orders) and len(data["trades"]) == len(ex.trades)
    assert data["balances"] == {
        a: {"free": str(f), "locked": str(lk), "total": str(f + lk)}
        for a, (f, lk) in ex.balances().items()
    }
    assert [o["status"] for o in data["orders"]] == [o.binance_status for o in ex.orders.values()]
    store.close()
    again = Exchange(cfg, open_store(tmp_path, "v"), seed=3)
    assert _state(again) == before


def test_a_market_dropped_from_the_config_is_a_clear_error_at_start(tmp_path: Path) -> None:
    store = open_store(tmp_path, "v")
    ex = Exchange(sim_cfg(), store, seed=3)
    ex.new_order("ETHUSDT", Side.SELL, OrdType.LIMIT, TimeInForce.GTC, D("1"), D("3100"), "e", 1)
    store.close()
    store = open_store(tmp_path, "v")
    try:
        with pytest.raises(ValueError, match="orders of ETHUSDT, which .* no longer lists"):
            Exchange(sim_cfg(reference_prices={"BTC/USDT": D("50000")}), store, seed=3)
    finally:
        store.close()


def test_starting_balances_come_from_the_config_and_the_defaults_fill_the_rest(
    tmp_path: Path,
) -> None:
    """`[venues.sim] balances` funds the account on its first start; an asset it does not
    name starts with the default (1,000 of a base asset, 1,000,000 of the quote)."""
    store = open_store(tmp_path, "v")
    try:
        ex = Exchange(sim_cfg(balances={"USDT": D("2500"), "BTC": D("0")}), store, seed=3)
        totals = {a: f + lk for a, (f, lk) in ex.balances().items()}
        assert totals == {"BTC": D(0), "ETH": D(1000), "USDT": D(2500)}
    finally:
        store.close()


def test_refused_new_orders_are_logged_inspected_and_bounded_in_memory(tmp_path: Path) -> None:
    """Not enough balance, a duplicate open client id, a filter: each refusal is in the log
    (Binance keeps no order for it), so the inspection lists all three with the code and
    message the client got; the running exchange keeps only its newest `keep_refusals`."""
    cfg = sim_cfg(balances={"USDT": D("1000")})
    store = open_store(tmp_path, "v")
    ex = Exchange(cfg, store, seed=3, keep_refusals=2)
    place = ex.new_order
    answers = []
    for args in (
        ("BTCUSDT", Side.BUY, OrdType.LIMIT, TimeInForce.GTC, D("1"), D("49000"), "poor", 1),
        ("BTCUSDT", Side.SELL, OrdType.LIMIT, TimeInForce.GTC, D("1"), D("99000"), "rest", 2),
        ("BTCUSDT", Side.SELL, OrdType.LIMIT, TimeInForce.GTC, D("1"), D("99000"), "rest", 3),
        ("BTCUSDT", Side.SELL, OrdType.LIMIT, TimeInForce.GTC, D("1"), D("99000.001"), "t", 4),
    ):
        try:
            place(*args)  # type: ignore[arg-type]
        except ApiError as exc:
            answers.append((args[6], exc.code, exc.msg))
    assert [(cl, code) for cl, code, _ in answers] == [
        ("poor", -2010),
        ("rest", -2010),
        ("t", -1013),
    ]
    assert ex.refusals.count == 3
    assert [r["client_order_id"] for r in ex.refusals.dump({})] == ["rest", "t"]
    data = inspect(tmp_path, "v", cfg)
    assert [(r["client_order_id"], r["code"], r["msg"]) for r in data["refusals"]] == answers
    assert data["refusals"][0]["symbol"] == "BTC/USDT"
    assert [o["client_order_id"] for o in data["orders"]] == ["rest"]
    # what was refused, and whether the exchange already had an order under the client id
    rest_id = int(data["orders"][0]["order_id"])
    assert [(r["side"], r["qty"], r["prior_order_id"]) for r in data["refusals"]] == [
        ("BUY", "1", None),
        ("SELL", "1", rest_id),
        ("SELL", "1", None),
    ]
    store.close()
    store = open_store(tmp_path, "v")
    try:
        again = Exchange(cfg, store, seed=3, keep_refusals=None)
        assert again.refusals.count == 3 and len(again.refusals.dump({})) == 3
    finally:
        store.close()
