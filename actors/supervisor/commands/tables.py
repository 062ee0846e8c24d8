"""Text helpers the view commands share: aligned tables, times, decimals, `--since`
arguments."""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from actors.runtime.when import parse_when_s


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, each as wide as its widest cell."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def parse_when_ns(text: str, now_s: float | None = None) -> int:
    """Epoch ns of an operator's time argument (`actors.runtime.when`); ValueError."""
    return int(parse_when_s(text, now_s) * 1e9)


def when_arg(text: str) -> int:
    """argparse `type=` for --since/--until: a bad value is a usage error (exit 2)."""
    try:
        return parse_when_ns(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def fmt_ts(ts_ns: int | None) -> str:
    """Epoch ns as UTC ``2026-12-04T02:47:20.123Z`` (``-`` for none)."""
    if not ts_ns:
        return "-"
    when = dt.datetime.fromtimestamp(ts_ns / 1e9, dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def cell(value: object) -> str:
    """A table cell: None as ``-``."""
    return "-" if value is None or value == "" else str(value)


def num(value: object, places: int) -> str:
    """A decimal for a table: at most `places` decimals (rounded half even; `--json` keeps
    every digit), ``-`` for none."""
    if value is None or value == "":
        return "-"
    try:
        d = Decimal(str(value))
        exponent = d.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -places:
            d = d.quantize(Decimal(1).scaleb(-places))
    except ArithmeticError:  # not a number, or too many digits to round: shown as sent
        return str(value)
    return str(d)
