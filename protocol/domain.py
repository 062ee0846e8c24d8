"""The vocabulary every message uses: decimals that travel as strings, the order enums,
error codes, and the frozen base model of every message body (`protocol.messages`).
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer


def _decimal_not_binary(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("decimal values travel as strings, never floats")
    return value


# A Decimal that is serialised as a string on the wire and never accepted as a float.
Dec = Annotated[
    Decimal,
    BeforeValidator(_decimal_not_binary),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="always"),
]


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrdType(StrEnum):
    MARKET = "MARKET"
    LIMIT = "LIMIT"


class TimeInForce(StrEnum):
    DAY = "DAY"
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class OrderStatus(StrEnum):
    PENDING_RISK = "PENDING_RISK"
    PENDING_SUBMIT = "PENDING_SUBMIT"
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELLED = "CANCELLED"
    PENDING_REPLACE = "PENDING_REPLACE"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class VenueConnState(StrEnum):
    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"
    DOWN = "DOWN"
    OUT_OF_SESSION = "OUT_OF_SESSION"  # outside the venue's trading session: planned, no outage


class ErrorCode(StrEnum):
    """Reason codes of a `RequestRejected` reply; the client maps each to an exception."""

    INVALID_ORDER = "INVALID_ORDER"
    RISK_REJECTED = "RISK_REJECTED"
    KILL_SWITCH = "KILL_SWITCH"
    VENUE_DOWN = "VENUE_DOWN"
    NOT_READY = "NOT_READY"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    UNKNOWN_VENUE = "UNKNOWN_VENUE"
    INVALID_STATE = "INVALID_STATE"
    TIMEOUT = "TIMEOUT"
    OUT_OF_SESSION = "OUT_OF_SESSION"  # the venue is outside its trading session (schedule)
    VENUE_REFUSED = "VENUE_REFUSED"  # the venue refused the request (Reject, 35=j, PosReqResult)
    BAD_REQUEST = "BAD_REQUEST"
    INTERNAL = "INTERNAL"


class Msg(BaseModel):
    """Base of every message body: frozen, and an unknown field is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")
