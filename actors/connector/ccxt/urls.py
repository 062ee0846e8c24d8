"""ccxt's constructor config for the `binance` class pointed at one base URL (the local
simulated exchange, `actors.exchangesim`, or any Binance-compatible endpoint).

Every REST and WebSocket URL of the class is replaced, not only those the adapter uses,
so a call nobody expected reaches the base URL (and fails there) instead of the
internet. The options keep ccxt to spot: `load_markets` calls only GET
/api/v3/exchangeInfo (no sapi currencies, no margin pairs, no fapi/dapi markets), and the
user-data stream is the WebSocket API's `userDataStream.subscribe.signature`.

ccxt's error classes for Binance's spot codes are keyed on the host ("https://api.binance
.com/"): against another host only `binance.exceptions['exact']` applies (which maps the
codes the adapter meets: -1003, -1013, -1021, -1022, -2010, -2011, -2013, -2014, -2015,
-1100, -1102, -1121).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

# urls['api'] keys of ccxt's binance (REST) and the path each serves under Binance's hosts
_REST_PATHS = {
    "public": "/api/v3",
    "private": "/api/v3",
    "v1": "/api/v1",
    "sapi": "/sapi/v1",
    "sapiV2": "/sapi/v2",
    "sapiV3": "/sapi/v3",
    "sapiV4": "/sapi/v4",
    "dapiPublic": "/dapi/v1",
    "dapiPrivate": "/dapi/v1",
    "dapiPrivateV2": "/dapi/v2",
    "dapiData": "/futures/data",
    "eapiPublic": "/eapi/v1",
    "eapiPrivate": "/eapi/v1",
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
    "papi": "/papi/v1",
    "papiV2": "/papi/v2",
}
# urls['api']['ws'] keys of ccxt.pro's binance (market streams: not used by the adapter)
_WS_STREAMS = (
    "spot", "margin", "linear", "inverse", "stock", "option", "optionMarket",
    "optionPrivate", "papi",
)  # fmt: skip
WS_API_PATH = "/ws-api/v3"  # the WebSocket API (orders, user-data stream) of spot


def _ws_base(base_url: str) -> str:
    parts = urlsplit(base_url.rstrip("/"))
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def exchange_config(
    base_url: str, api_key: str, secret: str, recv_window_ms: int
) -> dict[str, object]:
    """The config for `ccxt.pro.binance(...)` (or `ccxt.async_support.binance`): every URL
    under `base_url` ("http://127.0.0.1:PORT"), spot only, no ccxt rate limiter (we pace
    ourselves), Binance's recvWindow of `recv_window_ms`."""
    rest = base_url.rstrip("/")
    ws = _ws_base(base_url)
    ws_api = ws + WS_API_PATH
    api: dict[str, object] = {key: rest + path for key, path in _REST_PATHS.items()}
    ws_urls: dict[str, object] = {key: ws + "/ws" for key in _WS_STREAMS}
    ws_urls["ws-api"] = {"spot": ws_api, "linear": ws_api, "inverse": ws_api}
    api["ws"] = ws_urls
    return {
        "apiKey": api_key,
        "secret": secret,
        "enableRateLimit": False,
        "urls": {"api": api},
        "options": {
            "defaultType": "spot",
            "fetchMarkets": {"types": ["spot"], "loadAllOptions": False},
            "fetchCurrencies": False,
            "fetchMargins": False,
            "recvWindow": recv_window_ms,
            "adjustForTimeDifference": False,
            "newOrderRespType": {"market": "FULL", "limit": "FULL"},
        },
    }
