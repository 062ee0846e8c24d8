"""Signed requests are checked as Binance checks them: API key, timestamp within
recvWindow of the server clock, HMAC-SHA256 signature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import pytest

from actors.exchangesim import errors
from actors.exchangesim.auth import Credentials, check_timestamp, without_signature
from actors.exchangesim.errors import ApiError
from tests.exchangesim.rig import client, run, running


def test_wrong_key_wrong_secret_and_missing_key_are_refused(tmp_path: Path) -> None:
    async def body() -> dict[str, Any]:
        async with running(tmp_path) as rig:
            async with client(rig, key="notOurKey123") as ex:
                with pytest.raises(ccxt.AuthenticationError, match="-2015"):
                    await ex.fetch_balance()
            async with client(rig, secret="notOurSecret") as ex:
                with pytest.raises(ccxt.AuthenticationError, match="-1022"):
                    await ex.fetch_balance()
            async with client(rig) as ex:
                assert (await ex.fetch_balance())["BTC"]["free"] == 1000
            assert not rig.exchange.orders
            async with aiohttp.ClientSession() as s:
                async with s.get(rig.base_url + "/api/v3/account?timestamp=1") as r:
                    assert r.status == 401
                    answer: dict[str, Any] = await r.json()
                    return answer

    assert run(body()) == {"code": -2014, "msg": "API-key format invalid."}


def test_clock_skew_fails_with_1021_until_the_client_resyncs(tmp_path: Path) -> None:
    async def body() -> None:
        async with running(tmp_path) as rig, client(rig) as ex:
            await ex.load_markets()
            rig.faults.apply("clock_skew_ms", 30_000)
            with pytest.raises(ccxt.InvalidNonce, match="outside of the recvWindow"):
                await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000)
            rig.faults.apply("clock_skew_ms", -30_000)
            with pytest.raises(ccxt.InvalidNonce, match="1000ms ahead"):
                await ex.fetch_open_orders("BTC/USDT")
            await ex.load_time_difference()
            o = await ex.create_order("BTC/USDT", "limit", "buy", 0.1, 40000)
            assert o["status"] == "open"
            assert len(rig.exchange.orders) == 1

    run(body())


def test_timestamp_rules() -> None:
    now = 1_000_000
    check_timestamp({"timestamp": str(now - 5000)}, now)  # default recvWindow 5000
    check_timestamp({"timestamp": str(now + 999)}, now)
    cases = [
        ({"timestamp": str(now - 5001)}, errors.OUTSIDE_RECV_WINDOW[1]),
        ({"timestamp": str(now + 1000)}, errors.AHEAD_OF_SERVER[1]),
        ({"timestamp": str(now - 9000), "recvWindow": "8000"}, errors.OUTSIDE_RECV_WINDOW[1]),
        ({"timestamp": str(now), "recvWindow": "60001"}, "recvWindow must be less than 60000"),
        ({}, "Mandatory parameter 'timestamp'"),
    ]
    for params, text in cases:
        with pytest.raises(ApiError, match=text):
            check_timestamp(params, now)
    check_timestamp({"timestamp": str(now - 8000), "recvWindow": "8000"}, now)


def test_signature_is_taken_out_of_query_or_body() -> None:
    assert without_signature("a=1&signature=ab&b=2") == ("a=1&b=2", "ab")
    assert without_signature("a=1") == ("a=1", None)
    assert without_signature("") == ("", None)


def test_our_key_passes_whatever_its_format() -> None:
    creds = Credentials("demo-key.1", "s")
    creds.check_key("demo-key.1")
    for other, code in (("demo-key.2", -2014), ("otherKey1", -2015), ("", -2014), (None, -2014)):
        with pytest.raises(ApiError) as err:
            creds.check_key(other)
        assert (err.value.code, err.value.status) == (code, 401)
