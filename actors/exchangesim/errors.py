"""Binance's error answers: `{"code": -N, "msg": "..."}` with its HTTP status, word for word.

ccxt maps these by code and by exact message (`binance.exceptions`), so the texts are
Binance's own, not paraphrases.
"""

from __future__ import annotations

CLIENT_ID_PATTERN = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"
RATE_LIMIT_MSG = (
    "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)


class ApiError(Exception):
    """One error answer: HTTP `status`, Binance `code` and `msg`."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.status = status

    def body(self) -> dict[str, object]:
        return {"code": self.code, "msg": self.msg}


def mandatory(name: str) -> ApiError:
    return ApiError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def illegal(name: str, legal: str) -> ApiError:
    return ApiError(
        -1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'."
    )


def not_required(name: str) -> ApiError:
    return ApiError(-1106, f"Parameter '{name}' sent when not required.")


def filter_failure(name: str) -> ApiError:
    return ApiError(-1013, f"Filter failure: {name}")


BAD_API_KEY_FORMAT = (-2014, "API-key format invalid.")
BAD_API_KEY = (-2015, "Invalid API-key, IP, or permissions for action.")
BAD_SIGNATURE = (-1022, "Signature for this request is not valid.")
OUTSIDE_RECV_WINDOW = (-1021, "Timestamp for this request is outside of the recvWindow.")
AHEAD_OF_SERVER = (-1021, "Timestamp for this request was 1000ms ahead of the server's time.")
RECV_WINDOW_TOO_LARGE = (-1131, "recvWindow must be less than 60000")
INVALID_SYMBOL = (-1121, "Invalid symbol.")
DUPLICATE_ORDER = (-2010, "Duplicate order sent.")
INSUFFICIENT_BALANCE = (-2010, "Account has insufficient balance for requested action.")
NO_SUCH_ORDER = (-2013, "Order does not exist.")
UNKNOWN_ORDER = (-2011, "Unknown order sent.")
INVALID_SIDE = (-1117, "Invalid side.")
INVALID_TYPE = (-1116, "Invalid orderType.")
INVALID_TIF = (-1115, "Invalid timeInForce.")
CANCEL_REPLACE_FAILED = (-2022, "Order cancel-replace failed.")
CANCEL_REPLACE_PARTIAL = (-2021, "Order cancel-replace partially failed.")
UNKNOWN_ENDPOINT = (-1000, "An unknown error occurred while processing the request.")


def error(spec: tuple[int, str], status: int = 400) -> ApiError:
    return ApiError(spec[0], spec[1], status)
