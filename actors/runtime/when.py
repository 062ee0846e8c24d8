"""The one reading of an operator's time argument (`--since`, `--until`): an ISO 8601 time
(UTC unless it says otherwise) or an age before now (``90s``, ``10m``, ``2h``, ``1d``)."""

from __future__ import annotations

import datetime as dt
import re
import time

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when_s(text: str, now_s: float | None = None) -> float:
    """Epoch seconds of `text`; ValueError naming what was wrong. A time before 1970 (an
    age such as ``99999999999d``) is refused: no record is that old, and the post-mortem
    bundle's formatting of it ended in a traceback (the FIX log view read a year -273788674)."""
    when_s = _parse(text.strip(), now_s)
    if not when_s >= 0:  # also NaN; an age of 400 digits is inf: now - inf
        raise ValueError(f"{text.strip()!r} is before 1970-01-01")
    return when_s


def _parse(text: str, now_s: float | None) -> float:
    match = _AGE.match(text)
    if match:
        age_s = float(match.group(1)) * _UNIT_S[match.group(2)]
        return (time.time() if now_s is None else now_s) - age_s
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither an ISO 8601 time nor an age like 10m") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()
