"""Binance's request signing, checked as Binance checks it (HMAC-SHA256 keys only).

REST: the signature is the hex HMAC-SHA256 of the query string concatenated with the
body (each as sent, `signature=...` removed), keyed by the secret; the API key travels in
the X-MBX-APIKEY header. WebSocket API: the params (without `signature`) sorted by name
and joined as `k=v&k=v`, the API key among them as `apiKey`.

Checks in Binance's order: API key (-2014 format, -2015 unknown: HTTP 401), then the
timestamp against the server clock (-1102 missing, -1131 recvWindow too large, -1021
ahead by 1 s or more, or older than recvWindow), then the signature (-1102, -1022).
"""

from __future__ import annotations

import hashlib
import hmac
import re

from actors.exchangesim import errors
from actors.exchangesim.errors import ApiError

DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
_KEY_FORMAT = re.compile(r"^[A-Za-z0-9]{1,128}$")


def sign(payload: str, secret: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def without_signature(raw: str) -> tuple[str, str | None]:
    """(`raw` with its signature parameter removed, the signature or None)."""
    kept: list[str] = []
    signature: str | None = None
    for part in raw.split("&") if raw else []:
        if part.startswith("signature="):
            signature = part.partition("=")[2]
        else:
            kept.append(part)
    return "&".join(kept), signature


class Credentials:
    """The one account's API key and secret."""

    def __init__(self, api_key: str, secret: str) -> None:
        self.api_key = api_key
        self.secret = secret

    def check_key(self, api_key: str | None) -> None:
        """-2014 for a missing or malformed key, -2015 for another account's; our own key
        passes whatever its format (a test's or demo's key need not look like Binance's)."""
        if api_key and hmac.compare_digest(api_key.encode(), self.api_key.encode()):
            return
        if not api_key or not _KEY_FORMAT.match(api_key):
            raise errors.error(errors.BAD_API_KEY_FORMAT, 401)
        raise errors.error(errors.BAD_API_KEY, 401)

    def check_rest(
        self, api_key: str | None, query: str, body: str, params: dict[str, str], now_ms: int
    ) -> None:
        """Raise the `ApiError` Binance would answer a signed REST request with, if any."""
        self.check_key(api_key)
        check_timestamp(params, now_ms)
        q, sig_q = without_signature(query)
        b, sig_b = without_signature(body)
        self._check_signature(q + b, sig_q or sig_b)

    def check_ws(self, params: dict[str, object], now_ms: int) -> None:
        """The same for a WebSocket API request's params."""
        key = params.get("apiKey")
        self.check_key(key if isinstance(key, str) else None)
        check_timestamp({k: str(v) for k, v in params.items()}, now_ms)
        payload = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")
        signature = params.get("signature")
        self._check_signature(payload, signature if isinstance(signature, str) else None)

    def _check_signature(self, payload: str, signature: str | None) -> None:
        if not signature:
            raise errors.mandatory("signature")
        if not hmac.compare_digest(signature.lower(), sign(payload, self.secret)):
            raise errors.error(errors.BAD_SIGNATURE)


def check_timestamp(params: dict[str, str], now_ms: int) -> None:
    ts_text = params.get("timestamp", "")
    if not ts_text.isdigit():
        raise errors.mandatory("timestamp")
    window_text = params.get("recvWindow")
    window = DEFAULT_RECV_WINDOW_MS
    if window_text is not None:
        if not window_text.isdigit():
            raise errors.illegal("recvWindow", "^[0-9]{1,20}$")
        window = int(window_text)
        if window > MAX_RECV_WINDOW_MS:
            raise errors.error(errors.RECV_WINDOW_TOO_LARGE)
    ts = int(ts_text)
    if ts >= now_ms + 1000:
        raise errors.error(errors.AHEAD_OF_SERVER)
    if now_ms - ts > window:
        raise errors.error(errors.OUTSIDE_RECV_WINDOW)


__all__ = ["ApiError", "Credentials", "sign", "without_signature", "check_timestamp"]
