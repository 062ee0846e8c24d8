"""Fault injection state of the simulated exchange: pure, no sockets.

Set from `[venues.sim] faults` at start or at run time by a control command
(`protocol.commands.ExchangeFault`, or `VenueFault` "clear"); `apply(kind, value)`
validates, normalises and returns the value. The server asks what to do.

| kind                   | value (default)   | effect                                          |
|------------------------|-------------------|-------------------------------------------------|
| timeout_after_accept   | count (1)         | the next N order POSTs are processed and        |
|                        |                   | persisted, the answer is withheld (`HOLD_S`)    |
| http_5xx               | count (1)         | the next N REST requests: 503, not processed    |
| rate_limit             | count (1)         | the next N REST requests: 429 -1003, not        |
|                        |                   | processed, Retry-After: `RETRY_AFTER_S`         |
| drop_ws                | -                 | close every user-data WebSocket now             |
| delay_trade_events_ms  | ms (0 off)        | hold every user-data event back this long       |
| delay_create_ms        | ms (0 off)        | hold every order POST this long before it is    |
|                        |                   | processed (slow on its way: lands late)         |
| duplicate_trade_events | on/off (on)       | send every executionReport twice                |
| clock_skew_ms          | ms, signed (0)    | the server clock runs this far off the wall     |
| garble_events          | count (1)         | the next N user-data events go out cut in half  |
|                        |                   | (truncated JSON, as from a broken proxy)        |
| html_answer            | count (1)         | the next N order POSTs / DELETEs are processed, |
|                        |                   | answered 200 with a proxy's HTML page           |
| timestamps_us          | on/off (on)       | order and trade times of REST answers and       |
|                        |                   | user-data events in microseconds (Binance's     |
|                        |                   | timeUnit=MICROSECOND); /api/v3/time as before   |
| clear                  | -                 | remove every fault                              |
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, get_args

from protocol.commands import ExchangeFaultKind

FAULT_KINDS: tuple[str, ...] = (*get_args(ExchangeFaultKind), "clear")
HOLD_S = 60.0  # how long a withheld answer is held (well past any client timeout)
RETRY_AFTER_S = 1
# a count or skew past this is a typo; unbounded, 1e23 was set and then broke the reply
# that reports it (msgpack takes no int past 2**64)
MAX_WHOLE = 2**31 - 1
_COUNTS = frozenset(
    {"timeout_after_accept", "http_5xx", "rate_limit", "garble_events", "html_answer"}
)
_SWITCHES = frozenset({"duplicate_trade_events", "timestamps_us"})
_TRUE = frozenset({"1", "on", "true", "yes", "y"})
_FALSE = frozenset({"0", "off", "false", "no", "n"})

Value = str | int | float | bool | None


class FaultError(ValueError):
    """An unknown fault kind or a value it does not take."""


def parse_value(kind: str, value: Value) -> int | float | bool | None:
    """The normalised value of fault `kind` (see the module table); FaultError if invalid."""
    if kind not in FAULT_KINDS:
        raise FaultError(f"unknown fault {kind!r}; faults: {', '.join(FAULT_KINDS)}")
    if kind in ("drop_ws", "clear"):
        return None
    if kind in _SWITCHES:
        if value is None or value == "" or value is True:
            return True
        if value is False:
            return False
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise FaultError(f"{kind} takes on/off, not {value!r}")
    if value is None or value == "":
        if kind in _COUNTS:
            return 1
        raise FaultError(f"{kind} needs a value")
    if isinstance(value, bool):
        raise FaultError(f"{kind} takes a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise FaultError(f"{kind} takes a number, not {value!r}") from None
    if not math.isfinite(number) or (number < 0 and kind != "clock_skew_ms"):
        raise FaultError(f"{kind} must be a finite number >= 0, not {value!r}")
    if kind in _COUNTS or kind == "clock_skew_ms":
        if number != int(number):
            raise FaultError(f"{kind} takes a whole number, not {value!r}")
        if abs(number) > MAX_WHOLE:
            raise FaultError(f"{kind} takes at most {MAX_WHOLE} in size, not {value!r}")
        return int(number)
    return number


@dataclass
class Faults:
    timeout_after_accept: int = 0
    http_5xx: int = 0
    rate_limit: int = 0
    delay_trade_events_ms: float = 0.0
    delay_create_ms: float = 0.0
    duplicate_trade_events: bool = False
    clock_skew_ms: int = 0
    garble_events: int = 0
    html_answer: int = 0
    timestamps_us: bool = False

    def apply(self, kind: str, value: Value) -> int | float | bool | None:
        """Set fault `kind`; returns the normalised value (`drop_ws`: the caller acts)."""
        parsed = parse_value(kind, value)
        if kind == "clear":
            for f in fields(self):
                setattr(self, f.name, f.default)
        elif kind != "drop_ws":
            setattr(self, kind, parsed)
        return parsed

    def take(self, kind: str) -> bool:
        """Does counted fault `kind` apply to this request? Counts one down."""
        left: int = getattr(self, kind)
        if left > 0:
            setattr(self, kind, left - 1)
            return True
        return False

    def active(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}
