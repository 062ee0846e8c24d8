"""The one reading of an operator's time argument (`--since`, `--until`): an ISO 8601 time
(UTC unless it says otherwise) or an age before now (``90s``, ``10m``, ``2h``, ``1d``)."""

from __future__ import annotations

import datetime as dt
import re
import time

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when_s(text: str, now_s: float | None = None) -> float:
    """Epoch seconds of `text`; ValueError naming what was wrong."""
    text = text.strip()
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
