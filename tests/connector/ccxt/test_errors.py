"""classify: every branch with the exception ccxt binance really raises (its own
handle_errors / handle_http_status_code on Binance's answer, or the class its fetch
raises), and reasons that never carry the signature or the API key."""

from __future__ import annotations

import pytest
from ccxt.base import errors as ce

from actors.connector.ccxt.errors import Failure, classify, redact, reject_reason
from tests.connector.ccxt import binance as bn

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SIGNATURE = "3f1b8a0c2d9e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"


def binance(status: int, code: int, msg: str) -> Exception:
    return bn.raised(status, {"code": code, "msg": msg})


@pytest.mark.parametrize(
    ("exc", "kind", "error"),
    [
        # the outcome is not known: the order may be on the book
        (bn.raised(502, "<html>502 Bad Gateway</html>"), "unknown", "ExchangeNotAvailable"),
        (bn.raised(503, ""), "unknown", "ExchangeNotAvailable"),
        (bn.raised(504, ""), "unknown", "RequestTimeout"),
        (binance(500, -1001, "Internal error; unable to process your request."), "unknown",
         "OperationFailed"),
        (binance(400, -1006, "An unexpected response was received from the message bus. "
                 "Execution status unknown."), "unknown", "OperationFailed"),
        (binance(400, -1007, "Timeout waiting for response from backend server. Send status "
                 "unknown; execution status unknown."), "unknown", "RequestTimeout"),
        (binance(503, -1008, "Service Unavailable."), "unknown", "OperationFailed"),
        (ce.RequestTimeout(f"binance POST {bn.SIGNED_URL}"), "unknown", "RequestTimeout"),
        (ce.NetworkError("binance GET https://api.binance.com/api/v3/order"), "unknown",
         "NetworkError"),
        (ce.ExchangeNotAvailable("binance POST https://api.binance.com/api/v3/order"), "unknown",
         "ExchangeNotAvailable"),
        (ce.OnMaintenance("binance system maintenance"), "unknown", "OnMaintenance"),
        (ce.BadResponse("binance returned garbage"), "unknown", "BadResponse"),
        (ce.CancelPending("binance cancel pending"), "unknown", "CancelPending"),
        (ce.ExchangeError("binance POST https://api.binance.com/api/v3/order"), "unknown",
         "ExchangeError"),  # the HTTPError path of ccxt's fetch: no exchange code
        (TimeoutError(), "unknown", "TimeoutError"),  # asyncio.TimeoutError
        (ConnectionResetError("reset by peer"), "unknown", "ConnectionResetError"),
        # refused before processing
        (binance(400, -1021, "Timestamp for this request is outside of the recvWindow."),
         "clock", "InvalidNonce"),
        (binance(400, -1021, "Timestamp for this request was 1000ms ahead of the server's "
                 "time."), "clock", "InvalidNonce"),
        (binance(429, -1003, "Too many requests; current limit of IP(10.0.0.1) is 6000 "
                 "requests per minute."), "backoff", "DDoSProtection"),
        (binance(418, -1003, "Way too much request weight used; IP banned until "
                 "1700000060000."), "backoff", "DDoSProtection"),
        (binance(400, -1015, "Too many new orders; current limit is 50 orders per 10 SECOND."),
         "backoff", "RateLimitExceeded"),
        # definite answers about the order
        (binance(400, -2010, "Duplicate order sent."), "duplicate", "InvalidOrder"),
        (ce.DuplicateOrderId("binance clientOrderId already used"), "duplicate",
         "DuplicateOrderId"),
        (ce.InvalidOrder("binance Duplicate order sent."), "duplicate", "InvalidOrder"),
        (binance(400, -2011, "Unknown order sent."), "not_found", "OrderNotFound"),
        (binance(400, -2013, "Order does not exist."), "not_found", "OrderNotFound"),
        (binance(400, -2010, "Account has insufficient balance for requested action."),
         "rejected", "InsufficientFunds"),
        (binance(400, -1013, "Filter failure: LOT_SIZE"), "rejected", "InvalidOrder"),
        (binance(400, -1013, "Filter failure: NOTIONAL"), "rejected", "BadRequest"),
        (binance(400, -2010, "Order would immediately match and take."), "rejected",
         "OrderImmediatelyFillable"),
        (binance(400, -1121, "Invalid symbol."), "rejected", "BadSymbol"),
        (binance(400, -1111, "Parameter 'quantity' has too much precision."), "rejected",
         "BadRequest"),
        (binance(400, -2010, "Market is closed."), "rejected", "MarketClosed"),
        (ce.OperationRejected("binance restricted"), "rejected", "OperationRejected"),
        (ce.ExchangeError('binance {"code":-2026,"msg":"Order was canceled or expired."}'),
         "rejected", "ExchangeError"),  # a code ccxt does not map: a definite answer
        # the credentials or account
        (binance(400, -1022, "Signature for this request is not valid."), "down",
         "AuthenticationError"),
        (binance(401, -2015, "Invalid API-key, IP, or permissions for action."), "down",
         "AuthenticationError"),
        (ce.PermissionDenied("binance no trading permission"), "down", "PermissionDenied"),
        (ce.AccountSuspended("binance account suspended"), "down", "AccountSuspended"),
        # our side
        (ce.NotSupported("binance createOrders() does not support spot orders"), "internal",
         "NotSupported"),
        (ce.ArgumentsRequired("binance cancelOrder() requires a symbol argument"), "internal",
         "ArgumentsRequired"),
        (ce.ExchangeClosedByUser("Connection closed by the user"), "internal",
         "ExchangeClosedByUser"),
        (ce.OrderNotCached("binance order not in cache"), "internal", "OrderNotCached"),
        (ce.InvalidAddress("binance withdraw address"), "internal", "InvalidAddress"),
        (ce.InvalidProxySettings("binance conflicting proxies"), "internal",
         "InvalidProxySettings"),
        (ce.UnsubscribeError("binance unwatch failed"), "internal", "UnsubscribeError"),
        (KeyError("info"), "internal", "KeyError"),
    ],
)  # fmt: skip
def test_each_ccxt_failure_means_what_it_says(exc: BaseException, kind: str, error: str) -> None:
    failure = classify(exc)
    assert (failure.kind, failure.error) == (kind, error), str(exc)
    assert failure.reason and "\n" not in failure.reason and len(failure.reason) <= 200


def test_binance_rejection_reason_is_its_message_and_code() -> None:
    failure = classify(binance(400, -2010, "Duplicate order sent."))
    assert failure.reason == "Duplicate order sent. (-2010)"


def test_reason_never_carries_the_signature_or_the_api_key() -> None:
    """ccxt's messages for a 5xx or a timeout quote the signed URL."""
    exc = bn.raised(502, f"<html>bad gateway X-MBX-APIKEY: {API_KEY}</html>")
    assert SIGNATURE in str(exc)
    failure = classify(exc)
    assert SIGNATURE not in failure.reason and API_KEY not in failure.reason
    assert "https://api.binance.com/api/v3/order?<redacted>" in failure.reason
    echoed = ce.ExchangeError(
        f'binance {{"apiKey": "{API_KEY}", "signature": "{SIGNATURE}"}} &signature={SIGNATURE}'
    )
    reason = classify(echoed).reason
    assert API_KEY not in reason and SIGNATURE not in reason and reason.count("<redacted>") == 3


def test_named_secrets_are_blanked_wherever_they_appear() -> None:
    reason = classify(ce.NetworkError(f"proxy said: key {API_KEY} refused"), secrets=[API_KEY])
    assert reason.reason == "proxy said: key <redacted> refused"
    assert redact("no secrets here", ["", "zzz"]) == "no secrets here"


def test_long_reasons_are_cut_to_one_short_line() -> None:
    reason = classify(ce.ExchangeError("binance\n" + "x" * 500)).reason
    assert len(reason) == 200 and reason.endswith("...") and "\n" not in reason


def test_backoff_takes_retry_after_from_headers_then_message_then_ban_time() -> None:
    limited = binance(429, -1003, "Too many requests.")
    assert classify(limited).retry_after_s is None  # ccxt's message has no headers
    assert classify(limited, headers={"Retry-After": "7"}).retry_after_s == 7.0
    assert classify(limited, headers={"retry-after": "nan"}).retry_after_s is None
    http_date = {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}
    assert classify(limited, headers=http_date).retry_after_s is None
    said = ce.RateLimitExceeded("binance 429 Too Many Requests Retry-After: 12")
    assert classify(said).retry_after_s == 12.0
    banned = binance(418, -1003, "Way too much request weight used; IP banned until 1700000060000.")
    assert classify(banned).retry_after_s is None
    assert classify(banned, now_ms=1_700_000_000_000).retry_after_s == 60.0
    assert classify(banned, now_ms=1_800_000_000_000).retry_after_s == 0.0
    not_backoff = classify(ce.NetworkError("Retry-After: 3"))
    assert not_backoff.kind == "unknown" and not_backoff.retry_after_s is None


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (Failure("duplicate", "", error="InvalidOrder"), "DUPLICATE_ORDER"),
        (Failure("not_found", "", error="OrderNotFound"), "UNKNOWN_ORDER"),
        (Failure("rejected", "", error="InsufficientFunds"), "INSUFFICIENT_FUNDS"),
        (Failure("rejected", "", error="BadSymbol"), "UNKNOWN_SYMBOL"),
        (Failure("rejected", "", error="MarketClosed"), "EXCHANGE_CLOSED"),
        (Failure("rejected", "", error="BadRequest"), "INVALID_ORDER"),
        (Failure("rejected", "", error="InvalidOrder"), "INVALID_ORDER"),
        (Failure("unknown", ""), ""),
        (Failure("backoff", ""), ""),
        (Failure("clock", ""), ""),
        (Failure("down", ""), ""),
        (Failure("internal", ""), ""),
    ],
)
def test_reject_reason_vocabulary(failure: Failure, reason: str) -> None:
    assert reject_reason(failure) == reason


def test_reject_reason_of_real_exceptions() -> None:
    assert reject_reason(classify(binance(400, -1121, "Invalid symbol."))) == "UNKNOWN_SYMBOL"
    funds = binance(400, -2010, "Account has insufficient balance for requested action.")
    assert reject_reason(classify(funds)) == "INSUFFICIENT_FUNDS"
