"""A ccxt exception as what it means for the request that raised it (pure, no I/O).

`classify` sorts an exception of ccxt (`ccxt.base.errors`; the subclasses first, since
e.g. OrderNotFound is an InvalidOrder and RateLimitExceeded a NetworkError) into:

- unknown: the outcome is not known (no answer, a timeout, a 5xx, Binance -1000 / -1001
  / -1006 / -1007 / -1008 "execution status unknown"): a submit may have reached the
  book; ask the venue before anything else;
- clock: Binance -1021, the timestamp is outside recvWindow: refused before processing;
- backoff: rate limited (429, 418 IP ban, -1003, -1015), with `retry_after_s` when known;
- duplicate: the client order id is in use (-2010 "Duplicate order sent.");
- not_found: the order is not (or no longer) on the book (-2011, -2013): on Binance a
  cancel of an order that has just filled says so too;
- rejected: the exchange refused the request as such (funds, filters, symbol, params);
- down: the credentials or the account cannot trade (authentication, permissions);
- internal: our side (an unsupported call, a missing argument, a closed exchange object).

Reasons are one short line without the request's query string, signature or API key
(ccxt puts the request URL, signature included, into some messages).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from ccxt.base import errors as ce  # type: ignore[import-untyped, unused-ignore]

FailureKind = Literal[
    "unknown", "rejected", "duplicate", "not_found", "backoff", "clock", "down", "internal"
]
MAX_REASON_CHARS: Final = 200
# Binance codes whose execution status is unknown (its docs: "could have been a success")
UNKNOWN_OUTCOME_CODES: Final = frozenset({-1000, -1001, -1006, -1007, -1008})
CLOCK_CODE: Final = -1021
NOT_FOUND_CODES: Final = frozenset({-2011, -2013})


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    reason: str
    retry_after_s: float | None = None
    error: str = ""  # the exception's class name, e.g. "InsufficientFunds"


def classify(
    exc: BaseException,
    *,
    headers: Mapping[str, str] | None = None,
    now_ms: int | None = None,
    secrets: Sequence[str] = (),
) -> Failure:
    """What `exc`, raised by a ccxt call, means (see the module docstring).

    `headers`: the failed answer's response headers if the caller has them (ccxt keeps
    the last in `exchange.last_response_headers`, its messages never carry them): a
    Retry-After there sets `retry_after_s`; so does one in the message, or Binance's
    "IP banned until <ms>" with `now_ms`. `secrets`: values (the API key, the secret) to
    blank wherever they appear in the reason."""
    name = type(exc).__name__
    text = redact(str(exc), secrets)
    code, msg = _binance_error(text)
    reason = _one_line(f"{msg} ({code})" if code is not None else text) or name
    failure = _kind(exc, code, f"{msg} {text}" if msg else text)
    retry = _retry_after_s(text, headers, now_ms) if failure == "backoff" else None
    return Failure(failure, reason, retry, name)


def _kind(exc: BaseException, code: int | None, said: str) -> FailureKind:
    """The kind of `exc`; `said`: the exchange's message and ccxt's (query strings out)."""
    if not isinstance(exc, ce.BaseError):
        # asyncio.TimeoutError is TimeoutError (an OSError): a wait_for around the call
        return "unknown" if isinstance(exc, OSError) else "internal"
    if isinstance(exc, ce.InvalidNonce) or code == CLOCK_CODE:
        return "clock"
    if isinstance(exc, ce.RateLimitExceeded | ce.DDoSProtection):
        return "backoff"
    if isinstance(exc, ce.DuplicateOrderId) or "duplicate order sent" in said.lower():
        return "duplicate"
    if isinstance(exc, ce.OrderNotFound) or code in NOT_FOUND_CODES:
        return "not_found"
    if isinstance(exc, ce.OperationFailed):  # NetworkError, BadResponse, CancelPending
        return "unknown"
    if isinstance(exc, ce.AuthenticationError):  # PermissionDenied, AccountSuspended
        return "down"
    if isinstance(
        exc,
        ce.NotSupported
        | ce.ArgumentsRequired
        | ce.InvalidProxySettings
        | ce.ExchangeClosedByUser
        | ce.OrderNotCached
        | ce.InvalidAddress,
    ):
        return "internal"
    if isinstance(exc, ce.InsufficientFunds | ce.InvalidOrder | ce.BadRequest):
        return "rejected"  # BadSymbol is a BadRequest
    if isinstance(exc, ce.OperationRejected):  # MarketClosed, RestrictedLocation, ...
        return "rejected"
    if isinstance(exc, ce.ExchangeError):
        # plain: an HTTP error ccxt knew no better name for (no exchange code: a 5xx, a
        # proxy page, a broken connection), or an exchange code it does not map
        if code is None or code in UNKNOWN_OUTCOME_CODES:
            return "unknown"
        return "rejected"
    return "internal"


_REJECT_REASONS: Final = {
    "InsufficientFunds": "INSUFFICIENT_FUNDS",
    "BadSymbol": "UNKNOWN_SYMBOL",
    "MarketClosed": "EXCHANGE_CLOSED",
}


def reject_reason(failure: Failure) -> str:
    """`ExecReport.reject_reason` for a refused request: DUPLICATE_ORDER, UNKNOWN_ORDER,
    INSUFFICIENT_FUNDS, UNKNOWN_SYMBOL, EXCHANGE_CLOSED or INVALID_ORDER; "" for a
    failure that is not a refusal of the order itself (unknown, backoff, clock, down,
    internal: retry, ask or escalate, do not reject)."""
    if failure.kind == "duplicate":
        return "DUPLICATE_ORDER"
    if failure.kind == "not_found":
        return "UNKNOWN_ORDER"
    if failure.kind == "rejected":
        return _REJECT_REASONS.get(failure.error, "INVALID_ORDER")
    return ""


# ----------------------------------------------------------------------------- redaction

_QUERY = re.compile(r"(https?://[^\s?\"'<>]+)\?[^\s\"'<>]*", re.IGNORECASE)
_SIGNATURE = re.compile(r"(signature[\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+", re.IGNORECASE)
_API_KEY = re.compile(r"((?:x-mbx-)?api[-_]?key[\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+", re.IGNORECASE)
REDACTED: Final = "<redacted>"


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """`text` without any of `secrets`, URL query strings (a signed request's carries its
    signature), `signature=...` and API key values (X-MBX-APIKEY, apiKey)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    text = _QUERY.sub(r"\1?" + REDACTED, text)
    text = _SIGNATURE.sub(r"\1" + REDACTED, text)
    return _API_KEY.sub(r"\1" + REDACTED, text)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


_BINANCE_ERROR = re.compile(
    r"\{\s*\"code\"\s*:\s*-?\d+\s*,\s*\"msg\"\s*:\s*\"(?:[^\"\\]|\\.)*\"\s*\}"
)


def _binance_error(text: str) -> tuple[int | None, str]:
    """(code, msg) of the Binance error body ccxt quotes in `text`, else (None, "")."""
    match = _BINANCE_ERROR.search(text)
    if match is None:
        return None, ""
    body = json.loads(match.group(0))
    return int(body["code"]), str(body["msg"])


_RETRY_AFTER = re.compile(r"retry[-_ ]after[\"']?\s*[=:]?\s*[\"']?(\d+(?:\.\d+)?)", re.IGNORECASE)
_BANNED_UNTIL = re.compile(r"banned until (\d{10,16})")


def _retry_after_s(
    text: str, headers: Mapping[str, str] | None, now_ms: int | None
) -> float | None:
    for key, value in (headers or {}).items():
        if key.lower() == "retry-after":
            try:
                seconds = float(value)
            except ValueError:
                break  # an HTTP date: not read; fall back on the message
            if math.isfinite(seconds):
                return max(seconds, 0.0)
            break
    match = _RETRY_AFTER.search(text)
    if match is not None:
        return float(match.group(1))
    banned = _BANNED_UNTIL.search(text)
    if banned is not None and now_ms is not None:
        return max((int(banned.group(1)) - now_ms) / 1000, 0.0)
    return None
