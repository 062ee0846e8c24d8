"""Which ccxt exchange a `kind = "ccxt"` venue may name. The connector cancels and looks an
order up by client id with Binance's parameters (origClientOrderId, newClientOrderId) and
the `None` order id ccxt binance then ignores; every other class of the exchanges users
name (okx, kraken, bybit, coinbase) ignores those parameters and sends the cancel and the
lookup naming no order (ordId null, txid None, order_ids [null]). Accepted at load, such a
venue placed orders it could never cancel (no cancel, no replace, no kill switch's
cancel) nor look up (a lost create or a resend after a restart never resolved). Now refused
at load, exit 2, naming the exchange; the classes allowed are held to naming our order."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt.pro
import pytest

from actors.connector.ccxt import mapping
from protocol.ccxt_config import SUPPORTED_EXCHANGES
from protocol.config import load_config
from protocol.exceptions import ConfigError
from protocol.messages import CancelOnVenue, Side

CCXT = """
[[venues]]
name = "bx"
kind = "ccxt"
[venues.ccxt]
api_key_env = "K"
secret_env = "S"
symbols = ["BTC/USDT"]
"""
MARKET_IDS = {"binance": "BTCUSDT", "okx": "BTC-USDT", "kraken": "XBTUSDT",
              "bybit": "BTCUSDT", "coinbase": "BTC-USDT"}  # fmt: skip
CL, ORIG = "h.abc.c1", "h.abc"


@pytest.mark.parametrize("exchange", ["okx", "kraken", "bybit", "coinbase", "nosuchexchange"])
def test_an_exchange_whose_cancel_and_lookup_the_connector_does_not_speak_is_refused(
    tmp_path: Path, exchange: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(CCXT + f'exchange = "{exchange}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.field == "venues[bx].ccxt.exchange", info.value.field
    assert f"exchange {exchange!r} is not supported" in str(info.value), str(info.value)


def test_binance_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(CCXT + 'exchange = "binance"\n')
    ccfg = load_config(path).venues[0].ccxt
    assert ccfg is not None and ccfg.exchange == "binance"


async def _requests(exchange: str) -> list[str]:
    """What the connector's cancel (`mapping.cancel_params`) and lookup by client id
    (`Flows.fetch_by_client_id_sent`'s params) send through ccxt's `exchange` class."""
    ex = getattr(ccxt.pro, exchange)({"apiKey": "k", "secret": "c2VjcmV0", "password": "p"})
    market = {
        "id": MARKET_IDS[exchange], "symbol": "BTC/USDT", "base": "BTC", "quote": "USDT",
        "baseId": "BTC", "quoteId": "USDT", "spot": True, "type": "spot", "active": True,
        "contract": False, "precision": {"amount": 0.00001, "price": 0.01}, "limits": {},
        "info": {},
    }  # fmt: skip
    ex.set_markets([market])
    sent: list[str] = []

    async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        sent.append(f"{method} {url} {body or ''}")
        raise ccxt.NetworkError("recorded, not sent")

    ex.fetch = fetch
    request = CancelOnVenue(
        cl_ord_id=CL, orig_cl_ord_id=ORIG, symbol="BTC/USDT", side=Side.BUY, qty=Decimal("0.1"),
    )  # fmt: skip
    try:
        for call in (
            ex.cancel_order(None, "BTC/USDT", mapping.cancel_params(request)),
            ex.fetch_order(None, "BTC/USDT", {"origClientOrderId": ORIG}),
        ):
            with pytest.raises(ccxt.NetworkError):
                await call
    finally:
        await ex.close()
    return sent


@pytest.mark.parametrize("exchange", SUPPORTED_EXCHANGES)
def test_a_supported_exchange_s_cancel_and_lookup_name_our_order(exchange: str) -> None:
    cancel, lookup = asyncio.run(_requests(exchange))
    assert f"origClientOrderId={ORIG}" in cancel and "None" not in cancel, cancel
    assert f"origClientOrderId={ORIG}" in lookup and "None" not in lookup, lookup


@pytest.mark.parametrize("exchange", ["okx", "kraken", "coinbase"])
def test_other_classes_send_the_cancel_and_lookup_naming_no_order(exchange: str) -> None:
    """Why they are refused: the order id goes out empty (the client id is an extra
    parameter the exchange ignores or refuses)."""
    for request in asyncio.run(_requests(exchange)):
        assert "null" in request or "None" in request, request
