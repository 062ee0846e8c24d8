"""Fault injection state of the simulated venue: pure, no sockets, clock passed in.

A fault is set from the config (`SimCfg.faults`, applied at start) or at run time by a
control command; `Faults.apply(kind, value, now_s)` validates and normalises the value
and returns it. The FIX shell asks the state what to do (`take_reject()`, `hung(now)`,
...) and performs the actions itself (closing the connection, holding reports back).

| kind             | value (default)      | effect                                             |
|------------------|----------------------|----------------------------------------------------|
| drop_session     | -                    | close the TCP connection now (no Logout)           |
| hang             | seconds (required)   | stop reading and answering, keep the connection    |
| delay_exec_ms    | ms (required; 0 off) | hold every execution report back this long         |
| duplicate_exec   | on/off (on)          | send every execution report twice (same ExecID)    |
| reorder_exec     | on/off (on)          | swap consecutive execution reports                 |
| reject_next      | count (1)            | reject the next N orders (D), OrdRejReason 99      |
| disconnect_after | count (1; 0 off)     | drop the session after N more outbound app msgs    |
| refuse_logons_s  | seconds (required)   | answer every Logon with a Logout for that long     |
| swallow_fills    | count (1)            | apply the next N fills, never send their reports   |
| swallow_cancels  | count (1)            | never send the next N cancel confirmations (35=8   |
|                  |                      | 150=4: requested, mass, IOC/FOK remainders)        |
| clear            | -                    | remove every fault (a hang ends at once)           |

"Execution reports" are the 35=8 messages an order operation or the liquidity model
produces; answers to queries (ExecType I, AP, r, 9, j) are never delayed, duplicated,
reordered or swallowed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, get_args

from protocol.commands import FaultKind

FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)  # the one list: protocol.commands
_NO_VALUE = frozenset({"drop_session", "clear"})
_SECONDS = frozenset({"hang", "refuse_logons_s", "delay_exec_ms"})
_SWITCHES = frozenset({"duplicate_exec", "reorder_exec"})
_COUNTS = frozenset({"reject_next", "disconnect_after", "swallow_fills", "swallow_cancels"})
_TRUE = frozenset({"1", "on", "true", "yes", "y"})
_FALSE = frozenset({"0", "off", "false", "no", "n"})
REJECT_TEXT = "rejected by fault injection"
# a count above this is a typo; unbounded, 1e23 was set and then broke the reply that
# reports it (msgpack takes no int past 2**64: "unexpected reply type", exit 3)
MAX_COUNT = 2**31 - 1
_SWALLOWED = {"F": "swallow_fills", "4": "swallow_cancels"}  # ExecType -> fault

Value = str | int | float | bool | None


class FaultError(ValueError):
    """An unknown fault kind or a value it does not take."""


def parse_value(kind: str, value: Value) -> float | int | bool | None:
    """The normalised value of fault `kind` (see the module table); FaultError if invalid."""
    if kind not in FAULT_KINDS:
        raise FaultError(f"unknown fault {kind!r}; faults: {', '.join(FAULT_KINDS)}")
    if kind in _NO_VALUE:
        return None
    if kind in _SWITCHES:
        return _switch(kind, value)
    if value is None or value == "":
        if kind in _SECONDS:
            raise FaultError(f"{kind} needs a value")
        return 1
    if isinstance(value, bool):
        raise FaultError(f"{kind} takes a number, not {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise FaultError(f"{kind} takes a number, not {value!r}") from None
    if not number >= 0 or number == float("inf"):  # also NaN
        raise FaultError(f"{kind} must be a finite number >= 0, not {value!r}")
    if kind in _COUNTS:
        if number != int(number):
            raise FaultError(f"{kind} takes a whole count, not {value!r}")
        if number > MAX_COUNT:
            raise FaultError(f"{kind} takes a count of at most {MAX_COUNT}, not {value!r}")
        return int(number)
    return number


def _switch(kind: str, value: Value) -> bool:
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FaultError(f"{kind} takes on/off, not {value!r}")


@dataclass
class Faults:
    """The active faults. Times are on the caller's monotonic clock, in seconds."""

    hang_until_s: float = 0.0
    refuse_logons_until_s: float = 0.0
    delay_exec_ms: float = 0.0
    duplicate_exec: bool = False
    reorder_exec: bool = False
    reject_next: int = 0
    disconnect_after: int = 0
    swallow_fills: int = 0
    swallow_cancels: int = 0

    def apply(self, kind: str, value: Value, now_s: float) -> float | int | bool | None:
        """Set fault `kind`; returns the normalised value. `drop_session` changes no state
        (the caller acts on it); `clear` resets everything."""
        parsed = parse_value(kind, value)
        if kind == "clear":
            for f in fields(self):
                setattr(self, f.name, f.default)
        elif kind == "hang":
            self.hang_until_s = now_s + float(parsed or 0)
        elif kind == "refuse_logons_s":
            self.refuse_logons_until_s = now_s + float(parsed or 0)
        elif kind != "drop_session":
            setattr(self, kind, parsed)
        return parsed

    # -- questions the FIX shell asks ----------------------------------------------------

    def hung(self, now_s: float) -> bool:
        return now_s < self.hang_until_s

    def refusing_logons(self, now_s: float) -> bool:
        return now_s < self.refuse_logons_until_s

    def take_reject(self) -> bool:
        """Should the order being received be rejected? Counts one down."""
        if self.reject_next > 0:
            self.reject_next -= 1
            return True
        return False

    def take_swallow(self, exec_type: str) -> bool:
        """Should the report being sent (a fill, F, or a cancel confirmation, 4) be
        swallowed? Counts one down."""
        name = _SWALLOWED.get(exec_type)
        if name is None or getattr(self, name) <= 0:
            return False
        setattr(self, name, getattr(self, name) - 1)
        return True

    def count_sent(self) -> bool:
        """One outbound application message went out; True when the session must now be
        dropped (the `disconnect_after` budget just ran out)."""
        if self.disconnect_after > 0:
            self.disconnect_after -= 1
            return self.disconnect_after == 0
        return False

    def active(self, now_s: float) -> dict[str, Any]:
        """The faults in force, for status and heartbeats (remaining seconds rounded)."""
        out: dict[str, Any] = {}
        if self.hung(now_s):
            out["hang"] = round(self.hang_until_s - now_s, 3)
        if self.refusing_logons(now_s):
            out["refuse_logons_s"] = round(self.refuse_logons_until_s - now_s, 3)
        for kind in ("delay_exec_ms", "duplicate_exec", "reorder_exec", "reject_next",
                     "disconnect_after", "swallow_fills"):  # fmt: skip
            value = getattr(self, kind)
            if value:
                out[kind] = value
        return out
