"""The REST endpoints driven by the real ccxt async client (ccxt.pro.binance) configured
by `exchange_config`: what ccxt sends, the sim answers as Binance would."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from tests.exchangesim.rig import client, run, running, sim_cfg


def test_load_markets_calls_exchange_info_only(tmp_path: Path) -> None:
    """load_markets with the config's options reads GET /api/v3/exchangeInfo and nothing
    else (no sapi currencies, no fapi/dapi markets); precision and limits come from the
    filters."""

    async def body() -> tuple[Any, Any]:
        async with running(tmp_path) as rig, client(rig) as ex:
            markets = await ex.load_markets()
            return markets, dict(rig.server.requests)

    markets, requests = run(body())
    assert sorted(markets) == ["BTC/USDT", "ETH/USDT"]
    btc = markets["BTC/USDT"]
    assert btc["id"] == "BTCUSDT" and btc["spot"] and btc["base"] == "BTC"
    assert btc["precision"]["price"] == 0.01 and btc["precision"]["amount"] == 0.00001
    assert btc["limits"]["cost"]["min"] == 5.0
    assert requests == {"GET /api/v3/exchangeInfo": 1}


def test_limit_order_rests_locks_balance_and_cancel_releases_it(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            before = await ex.fetch_balance()
            o = await ex.create_order(
                "BTC/USDT", "limit", "buy", 0.5, 40000, {"clientOrderId": "buy-1"}
            )
            assert o["status"] == "open" and o["clientOrderId"] == "buy-1"
            assert o["filled"] == 0 and o["remaining"] == 0.5
            held = await ex.fetch_balance()
            assert held["USDT"]["used"] == 20000.0
            assert held["USDT"]["free"] == before["USDT"]["free"] - 20000
            (listed,) = await ex.fetch_open_orders("BTC/USDT")
            assert listed["id"] == o["id"] and listed["clientOrderId"] == "buy-1"
            got = await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "buy-1"})
            assert got["id"] == o["id"] and got["status"] == "open"
            cancelled = await ex.cancel_order(o["id"], "BTC/USDT")
            assert cancelled["status"] == "canceled"
            assert cancelled["info"]["origClientOrderId"] == "buy-1"
            after = await ex.fetch_balance()
            assert after["USDT"]["used"] == 0 and after["USDT"]["free"] == before["USDT"]["free"]
            assert await ex.fetch_open_orders("BTC/USDT") == []

    run(body())


def test_market_order_fills_with_full_response_and_moves_balances(tmp_path: Path) -> None:
    """A market buy of 0.01 BTC at 50000.01: at Binance's default commission (0.1% of the
    asset received) the account gets 0.00999 BTC and pays 500.0001 USDT."""

    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            o = await ex.create_order("BTC/USDT", "market", "buy", 0.01)
            assert o["status"] == "closed" and o["filled"] == 0.01
            assert o["info"]["fills"][0]["price"] == "50000.01000000"
            trades = await ex.fetch_my_trades("BTC/USDT")
            assert [(t["order"], t["amount"], t["takerOrMaker"]) for t in trades] == [
                (o["id"], 0.01, "taker")
            ]
            bal = await ex.fetch_balance()
            assert bal["BTC"]["total"] == 1000.00999
            assert (trades[0]["fee"]["cost"], trades[0]["fee"]["currency"]) == (0.00001, "BTC")
            assert Decimal(str(bal["USDT"]["total"])) == Decimal("1000000") - Decimal("500.0001")

    run(body())


def test_client_id_is_unique_among_open_orders_only(tmp_path: Path) -> None:
    """Binance: a client id equal to an OPEN order's is -2010 "Duplicate order sent.";
    once that order is cancelled the same id creates a NEW order, and a query by client
    id answers the newest."""

    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            params = {"clientOrderId": "same-id"}
            first = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000, params)
            with pytest.raises(ccxt.InvalidOrder, match="Duplicate order sent."):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000, params)
            await ex.cancel_order(first["id"], "BTC/USDT")
            second = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000, params)
            assert second["id"] != first["id"] and second["status"] == "open"
            got = await ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": "same-id"})
            assert got["id"] == second["id"]
            old = await ex.fetch_order(first["id"], "BTC/USDT")
            assert old["status"] == "canceled" and old["clientOrderId"] == "same-id"

    run(body())


def test_filters_balance_and_parameter_refusals(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            await ex.load_markets()
            base = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
            cases: list[tuple[dict[str, str], type[Exception], str]] = [
                ({"quantity": "0.000001", "price": "40000"}, ccxt.InvalidOrder, "LOT_SIZE"),
                ({"quantity": "0.1", "price": "40000.005"}, ccxt.InvalidOrder, "PRICE_FILTER"),
                ({"quantity": "0.0001", "price": "40000"}, ccxt.BadRequest, "NOTIONAL"),
                ({"quantity": "100", "price": "40000"}, ccxt.InsufficientFunds, "insufficient"),
                ({"quantity": "0.1", "price": "4e4"}, ccxt.BadRequest, "-1100"),
                ({"quantity": "0.1"}, ccxt.BadRequest, "Mandatory parameter 'price'"),
                (
                    {"quantity": "0.1", "price": "40000", "newClientOrderId": "bad id!"},
                    ccxt.BadRequest,
                    "newClientOrderId",
                ),
                ({"quantity": "0.1", "price": "40000", "side": "UP"}, ccxt.BadRequest, "-1117"),
                ({"quantity": "0.1", "price": "40000", "symbol": "NOPE"}, ccxt.BadSymbol, "-1121"),
            ]
            for extra, exc, text in cases:
                with pytest.raises(exc, match=text):
                    await ex.privatePostOrder({**base, **extra})
            assert await ex.fetch_open_orders("BTC/USDT") == []

    run(body())


def test_unknown_orders_are_2013_on_query_and_2011_on_cancel(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            with pytest.raises(ccxt.OrderNotFound, match="Order does not exist."):
                await ex.fetch_order("999", "BTC/USDT")
            with pytest.raises(ccxt.OrderNotFound, match="Unknown order sent."):
                await ex.cancel_order("999", "BTC/USDT")
            filled = await ex.create_order("BTC/USDT", "market", "sell", 0.01)
            with pytest.raises(ccxt.OrderNotFound, match="Unknown order sent."):
                await ex.cancel_order(filled["id"], "BTC/USDT")
            with pytest.raises(ccxt.OrderNotFound, match="Unknown order sent."):
                await ex.cancel_all_orders("BTC/USDT")

    run(body())


def test_ioc_remainder_expires_and_unfillable_fok_trades_nothing(tmp_path: Path) -> None:
    """The market maker quotes 2 BTC on each of 5 levels: 11 BTC cannot fill at once."""

    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            ioc = await ex.create_order(
                "BTC/USDT", "limit", "buy", 11, 50000.05, {"timeInForce": "IOC"}
            )
            assert ioc["info"]["status"] == "EXPIRED" and ioc["filled"] == 10
            fok = await ex.create_order(
                "BTC/USDT", "limit", "sell", 11, 49999.95, {"timeInForce": "FOK"}
            )
            assert fok["info"]["status"] == "EXPIRED" and fok["filled"] == 0
            assert len(await ex.fetch_my_trades("BTC/USDT")) == 5

    run(body())


def test_edit_order_is_cancel_replace_and_cancel_all(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            o = await ex.create_order("BTC/USDT", "limit", "sell", 0.2, 60000)
            edited = await ex.edit_order(o["id"], "BTC/USDT", "limit", "sell", 0.3, 61000)
            assert edited["id"] != o["id"] and edited["price"] == 61000
            assert (await ex.fetch_order(o["id"], "BTC/USDT"))["status"] == "canceled"
            # STOP_ON_FAILURE: -2022 carrying the cancel's -2011, no new order
            with pytest.raises(ccxt.ExchangeError, match='"code": -2011, "msg": "Unknown order'):
                await ex.edit_order(o["id"], "BTC/USDT", "limit", "sell", 0.3, 62000)
            assert len(await ex.fetch_open_orders("BTC/USDT")) == 1
            await ex.create_order("BTC/USDT", "limit", "sell", 0.1, 65000)
            cancelled = await ex.cancel_all_orders("BTC/USDT")
            assert sorted(c["status"] for c in cancelled) == ["canceled", "canceled"]
            assert rig.server.requests["POST /api/v3/order/cancelReplace"] == 2

    run(body())


def test_resting_order_fills_as_the_price_walks_and_my_trades_filters(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, sim_cfg(volatility_bps=0.0)) as rig, client(rig) as ex:
            # a buy one tick under the best ask rests; the market maker's next quotes at a
            # lower reference cross it (maker fills at our price)
            o = await ex.create_order("BTC/USDT", "limit", "buy", 3, 50000.0)
            assert o["status"] == "open"
            rig.exchange.references["BTCUSDT"] = Decimal("49990")
            rig.exchange.liquidity_step(0)
            got = await ex.fetch_order(o["id"], "BTC/USDT")
            assert got["status"] == "closed" and got["filled"] == 3
            trades = await ex.fetch_my_trades("BTC/USDT", None, None, {"orderId": o["id"]})
            assert {t["takerOrMaker"] for t in trades} == {"maker"}
            assert {t["price"] for t in trades} == {50000.0}
            first = trades[0]["id"]
            later = await ex.fetch_my_trades("BTC/USDT", None, 1, {"fromId": first})
            assert [t["id"] for t in later] == [first]
            with pytest.raises(ccxt.BadRequest, match="-1128"):
                await ex.fetch_my_trades("BTC/USDT", 1, None, {"orderId": o["id"]})

    run(body())


def test_self_trade_prevention_expires_our_resting_order(tmp_path: Path) -> None:
    """EXPIRE_MAKER: a buy that would trade with our own resting sell expires that sell
    (EXPIRED_IN_MATCH) and trades with the market maker at the same price instead."""

    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            sell = await ex.create_order("BTC/USDT", "limit", "sell", 1, 50000.01)
            assert sell["status"] == "open"
            buy = await ex.create_order("BTC/USDT", "limit", "buy", 0.5, 50000.01)
            assert (
                buy["status"] == "closed" and buy["info"]["fills"][0]["price"] == "50000.01000000"
            )
            expired = await ex.fetch_order(sell["id"], "BTC/USDT")
            assert expired["info"]["status"] == "EXPIRED_IN_MATCH" and expired["filled"] == 0
            assert (await ex.fetch_balance())["BTC"]["used"] == 0

    run(body())


def test_commission_is_charged_in_the_asset_received(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path, commission_rate=Decimal("0.001")) as rig, client(rig) as ex:
            buy = await ex.create_order("BTC/USDT", "market", "buy", 1)
            (fill,) = buy["info"]["fills"]
            assert (fill["commission"], fill["commissionAsset"]) == ("0.00100000", "BTC")
            sell = await ex.create_order("BTC/USDT", "market", "sell", 1)
            (fill,) = sell["info"]["fills"]
            assert (fill["commission"], fill["commissionAsset"]) == ("49.99999000", "USDT")
            bal = await ex.fetch_balance()
            assert bal["BTC"]["total"] == 999.999
            assert bal["info"]["commissionRates"]["taker"] == "0.00100000"

    run(body())


def test_cancel_replace_allow_failure_answers_like_binance(tmp_path: Path) -> None:
    """ALLOW_FAILURE: a failed cancel still places the new order (409, -2021, both results
    in data); a new order that fails after a good cancel is 409 -2021 too, the cancel
    stands; both failing is 400 -2022."""

    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            await ex.load_markets()
            o = await ex.create_order("BTC/USDT", "limit", "sell", 0.2, 60000)
            base = {
                "symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
                "cancelReplaceMode": "ALLOW_FAILURE", "quantity": "0.2",
            }  # fmt: skip
            cases = [
                (
                    {"cancelOrderId": "999", "price": "61000"},
                    "-2021",
                    '"newOrderResult": "SUCCESS"',
                ),
                (
                    {"cancelOrderId": o["id"], "price": "61000.001"},
                    "-2021",
                    '"cancelResult": "SUCCESS"',
                ),
                ({"cancelOrderId": "999", "price": "61000.001"}, "-2022", "PRICE_FILTER"),
            ]
            for extra, code, text in cases:
                with pytest.raises(ccxt.ExchangeError) as err:
                    await ex.privatePostOrderCancelReplace({**base, **extra})
                assert code in str(err.value) and text in str(err.value)
            assert (await ex.fetch_order(o["id"], "BTC/USDT"))["status"] == "canceled"
            assert [x["price"] for x in await ex.fetch_open_orders("BTC/USDT")] == [61000]

    run(body())
