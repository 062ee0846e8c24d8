"""The vocabulary every message uses: decimals that travel as strings, the order enums,
error codes, and the frozen base model of every message body (`protocol.messages`).

Every quantity and price crosses a process boundary as a `Dec`: finite, at most
`MAX_DIGITS` significant digits, magnitude below 10**(`MAX_ADJUSTED` + 1), and no digit
finer than 10**`MIN_EXPONENT`. That covers any real quantity, price, notional or PnL
(and every value our arithmetic produces, rounded to the default 28-digit context) while
`1e999999999`, NaN or infinity are refused at decode: no value that passed a boundary can
overflow a computation, and none formats to megabytes (`format(d, "f")` for FIX). Venue
numbers are read with the same bounds (`check_decimal`).

Every string that reaches FIX from a client or the config is printable ASCII, so never an
SOH, and bounded in length: CompIDs match `IDENT_PATTERN` (no space, no ``=``), symbols
`SYMBOL_PATTERN` (inner spaces and ``=`` allowed: "ES Z6", "EUR=" are real tickers, and
a FIX value may hold ``=``). ClOrdIDs are derived from client order ids (printable
ASCII, bounded), hashed when they are not such a token
(`actors.oms.orders.base_cl_ord_id`).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Final, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

MAX_DIGITS: Final = 28  # significant digits: the decimal context's precision
MAX_ADJUSTED: Final = 18  # |value| < 1e19
MIN_EXPONENT: Final = -60  # no digit finer than 1e-60
MAX_DECIMAL_TEXT: Final = 100  # characters of a decimal's text form, checked before parsing


# The texts of decimals `check_decimal` took, bounded (emptied when full). A decimal's text
# names its sign, digits and exponent exactly, so the same text is the same verdict: a
# price or quantity met again (every order's qty 1, cum_qty 0) costs its `str` (~50 ns)
# and a lookup, not `as_tuple` (~300-500 ns; the OMS checks ~12 values an order).
_TAKEN: dict[str, None] = {}
_TAKEN_MAX: Final = 2048


def check_decimal(value: Decimal) -> Decimal:
    """`value` if it is within the bounds every quantity and price obeys (see the module
    docstring), else a ValueError saying which bound it breaks."""
    text = str(value) if type(value) is Decimal else None  # a subclass's text is its own
    if text in _TAKEN:
        return value
    if not value.is_finite():
        raise ValueError(f"decimal must be finite, got {value}")
    _check_bounds(value)
    if text is not None:
        if len(_TAKEN) >= _TAKEN_MAX:
            _TAKEN.clear()
        _TAKEN[text] = None
    return value


def _check_bounds(value: Decimal) -> None:
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # finite
    if (
        len(digits) <= MAX_DIGITS
        and exponent >= MIN_EXPONENT
        and exponent + len(digits) <= MAX_ADJUSTED + 1
    ):
        # within every bound before trailing zeros are dropped (fewer digits, a higher
        # exponent but never above `adjusted()`): the common case, ~0.5 us cheaper per
        # value, which counts for the 10,000 orders of a warm start's mass status
        return
    zeros = len(digits) - len("".join(map(str, digits)).rstrip("0")) if value else 0
    digits, exponent = digits[: len(digits) - zeros] or (0,), exponent + zeros  # 100.000 = 1E+2
    if len(digits) > MAX_DIGITS:
        raise ValueError(f"decimal has {len(digits)} significant digits, over {MAX_DIGITS}")
    if value and value.adjusted() > MAX_ADJUSTED:
        raise ValueError(f"decimal magnitude over 1e{MAX_ADJUSTED + 1}: {value:.3e}")
    if exponent > MAX_ADJUSTED or exponent < MIN_EXPONENT:
        raise ValueError(f"decimal exponent {exponent} outside [{MIN_EXPONENT}, {MAX_ADJUSTED}]")


def parse_decimal(text: str) -> Decimal:
    """A bounded `Decimal` from its text (a venue's field, a journal record); ValueError
    when it is not a number or is out of bounds."""
    if len(text) > MAX_DECIMAL_TEXT:
        raise ValueError(f"decimal text of {len(text)} characters, over {MAX_DECIMAL_TEXT}")
    try:
        value = Decimal(text)
    except ArithmeticError as exc:
        raise ValueError(f"not a decimal: {text[:40]!r}") from exc
    return check_decimal(value)


def _decimal_not_binary(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("decimal values travel as strings, never floats")
    if isinstance(value, str) and len(value) > MAX_DECIMAL_TEXT:
        raise ValueError(f"decimal text of {len(value)} characters, over {MAX_DECIMAL_TEXT}")
    return value


# A bounded Decimal (`check_decimal`) that is serialised as a string on the wire and never
# accepted as a float: the type of every quantity and price of every message.
Dec = Annotated[
    Decimal,
    BeforeValidator(_decimal_not_binary),
    AfterValidator(check_decimal),
    PlainSerializer(lambda d: str(d), return_type=str, when_used="always"),
]

# Printable ASCII without space or "=": safe as a FIX field value (never an SOH) and as a
# tag=value token.
IDENT_PATTERN: Final = r"^[!-<>-~]+$"
# A symbol: printable ASCII, inner spaces and "=" allowed ("ES Z6", "VOD LN", "EUR=" are
# real tickers; a FIX value may hold "=", never an SOH), no leading or trailing space.
SYMBOL_PATTERN: Final = r"^[!-~]([ -~]*[!-~])?$"
Symbol = Annotated[str, Field(min_length=1, max_length=32, pattern=SYMBOL_PATTERN)]
CompId = Annotated[str, Field(min_length=1, max_length=64, pattern=IDENT_PATTERN)]  # 49 / 56
# Printable ASCII (space allowed), bounded: client order ids (the ClOrdID is derived from
# them, hashed when they are not Idents: `actors.oms.orders.base_cl_ord_id`).
ClientId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[ -~]+$")]
MAX_REASON_CHARS: Final = 256  # an operator's kill-switch reason (re-read on every change)


E = TypeVar("E", bound=StrEnum)


def member_of(cls: type[E]) -> Callable[[Any], E]:
    """`cls(value)` for the hot paths: a member's own value (or the member itself) costs a
    dict lookup (~40 ns; `cls(value)` ~500 ns); anything else goes to `cls(value)`, which
    answers or raises as it always did."""
    table: dict[Any, E] = {m.value: m for m in cls}

    def of(value: Any) -> E:
        try:
            return table[value]
        except (KeyError, TypeError):  # unknown, or unhashable: the enum's own answer
            pass
        return cls(value)  # outside the `except`: its error chains no KeyError, as cls(value)

    return of


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


# `cls(value)` of the order enums, as dict lookups (`member_of`)
side_of, ord_type_of = member_of(Side), member_of(OrdType)
tif_of, status_of = member_of(TimeInForce), member_of(OrderStatus)


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
    NOT_ALLOWED = "NOT_ALLOWED"  # that sender may not send that message (or not there)
    JOURNAL_UNAVAILABLE = "JOURNAL_UNAVAILABLE"  # the OMS journal cannot get space (disk full)
    OUTSIDE_TRADING_WINDOW = "OUTSIDE_TRADING_WINDOW"  # [trading] windows/blackouts: closed
    INTAKE_PAUSED = "INTAKE_PAUSED"  # an operator paused intake (globally or for the venue)
    INTERNAL = "INTERNAL"


class Msg(BaseModel):
    """Base of every message body: frozen, and an unknown field is an error."""

    model_config = ConfigDict(frozen=True, extra="forbid")
