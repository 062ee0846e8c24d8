"""The exchange as ccxt gives it, and every REST call to it: built from the venue config
(`new_exchange`: ccxt is imported here, in a ccxt connector only), paced by the venue's
token bucket, and sent again when the exchange refused it before processing it (a 429 /
418 with its Retry-After, or a backoff; -1021 after a resync of the time offset). Any
other failure goes to the caller, classified (`errors.classify`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ccxt.base import errors as ccxt_errors

from actors.connector.ccxt import errors
from actors.connector.ratelimit import TokenBucket
from protocol.ccxt_config import CcxtCfg
from protocol.config import VenueCfg

MAX_RETRIES = 5  # a request refused before processing (429, -1021) is sent again this often
# the longest one rate-limit hold lasts: a Retry-After (or a ban's end) past it is not taken
# at its word (a garbled or absurd value, 1e9 s, held every request of the venue for good)
MAX_HOLD_S = 60.0


class ExchangeSetupError(RuntimeError):
    """The exchange cannot be built (an unknown ccxt id, a credential not set)."""


def exchange_config(ccfg: CcxtCfg, api_key: str, secret: str, base_url: str) -> dict[str, Any]:
    """The ccxt constructor config of a venue: spot only, no ccxt rate limiter (we pace),
    the venue's recvWindow; with `base_url`, every REST and WebSocket URL of the exchange
    class points there (the local exchange), else the exchange's own URLs."""
    from actors.connector.ccxt.urls import exchange_config as config_at

    config: dict[str, Any] = dict(
        config_at(base_url or "https://unused.invalid", api_key, secret, ccfg.recv_window_ms)
    )
    if not base_url:
        del config["urls"]
    return config


def import_ccxt() -> None:
    """Import ccxt.pro (~0.6 s of CPU: its exchange classes). The adapter calls it while the
    connector starts, before READY: imported at the first session instead, it blocked the
    connector's loop past the hang limit on a loaded machine, and the supervisor killed it
    as hung after every restart (12 restarts in a short chaos run at load 25)."""
    import ccxt.pro  # noqa: F401


def new_exchange(ccfg: CcxtCfg, environ: Mapping[str, str], base_url: str) -> Any:
    """A ccxt.pro exchange instance (ccxt is imported here, in the connector only)."""
    missing = [v for v in (ccfg.api_key_env, ccfg.secret_env) if not environ.get(v)]
    if missing:
        raise ExchangeSetupError(f"environment variable {missing[0]} is not set")
    import ccxt.pro as ccxtpro

    cls = getattr(ccxtpro, ccfg.exchange, None)
    if cls is None:
        raise ExchangeSetupError(f"ccxt has no websocket exchange {ccfg.exchange!r}")
    key, secret = environ[ccfg.api_key_env], environ[ccfg.secret_env]
    exchange = cls(exchange_config(ccfg, key, secret, base_url))
    if ccfg.sandbox:
        exchange.set_sandbox_mode(True)
    return exchange


def guard_stream_frames(exchange: Any, on_unreadable: Callable[[BaseException], None]) -> None:
    """Every WebSocket client of `exchange` reads on past a frame it cannot handle, which
    goes to `on_unreadable`. ccxt.pro reads a connection's frames in a callback that arms
    the next read only once a frame was handled: a frame that raised there (truncated
    JSON, a field its parser chokes on) ended the reading for good, the connection left
    open, no error to any watch (the stream taken for up said nothing more)."""
    make_client = exchange.client

    def client(url: str) -> Any:
        made = make_client(url)
        if not getattr(made, "tp_guarded", False):
            handle = made.handle_message

            def guarded(message: Any) -> None:
                try:
                    handle(message)
                except Exception as exc:  # noqa: BLE001 - one frame, never the stream
                    on_unreadable(exc)

            made.handle_message = guarded
            made.tp_guarded = True
        return made

    exchange.client = client


class Rest:
    """REST calls to one exchange (`ex`, set once a session built it)."""

    def __init__(self, vcfg: VenueCfg, log: Any, secrets: Sequence[str]) -> None:
        self.ex: Any = None
        self.log = log
        self._secrets = tuple(secrets)
        self._bucket = TokenBucket(vcfg.rate_limit_per_s, vcfg.rate_burst)
        self._request_timeout_s = vcfg.request_timeout_s
        self._hold_until = 0.0  # rate limited: no request before this (monotonic)
        self.failures: dict[str, int] = {}

    async def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One REST call: paced by the token bucket and any rate-limit hold; sent again
        (at most MAX_RETRIES) when the exchange refused it before processing it (429 /
        418 with its Retry-After, at most MAX_HOLD_S; -1021 after a time resync). Other
        failures raise."""
        for attempt in range(MAX_RETRIES + 1):
            await self._pace()
            try:
                return await asyncio.wait_for(fn(*args, **kwargs), self._request_timeout_s)
            except TimeoutError as exc:
                raise ccxt_errors.RequestTimeout(
                    f"no answer in {self._request_timeout_s} s"
                ) from exc
            except Exception as exc:
                failure = self.classify(exc)
                if attempt == MAX_RETRIES or failure.kind not in ("backoff", "clock"):
                    raise
                self.count(failure.kind)
                if failure.kind == "backoff":
                    said = failure.retry_after_s
                    hold = min(said or min(0.5 * 2**attempt, 10.0), MAX_HOLD_S)
                    self._hold_until = max(self._hold_until, time.monotonic() + hold)
                    capped = said is not None and said > MAX_HOLD_S
                    self.log.warning("ccxt_rate_limited", hold_s=round(hold, 3), capped=capped)
                else:
                    self.log.warning("ccxt_clock_resync", reason=failure.reason)
                    await self.ex.load_time_difference()
        raise AssertionError("unreachable")

    async def _pace(self) -> None:
        while True:
            wait_s = max(self._hold_until - time.monotonic(), self._bucket.wait_s())
            if wait_s <= 0 and self._bucket.try_take():
                return
            await asyncio.sleep(max(wait_s, 0.001))

    def classify(self, exc: BaseException) -> errors.Failure:
        headers = getattr(self.ex, "last_response_headers", None)
        return errors.classify(
            exc,
            headers=headers if isinstance(headers, Mapping) else None,
            now_ms=time.time_ns() // 1_000_000,
            secrets=self._secrets,
        )

    def count(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1
