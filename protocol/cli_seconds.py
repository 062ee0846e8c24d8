"""The CLI's deadlines in seconds (`--timeout-s` of every command, preflight's
`--connect-timeout-s`), checked as argparse parses them. It is its own light module:
`supervisor.py` imports nothing of `actors` before `run` re-executes.

Unchecked, a deadline of 0 ended `status` with "no answer ... within 0.0 s" and exit 3 (no
system running: one was), a negative one waited forever (a ZeroMQ poll of -1), and NaN,
infinity or 1e300 ended in a traceback and exit 1 (a failure, which systemd restarts)."""

from __future__ import annotations

import argparse
import math

MAX_DEADLINE_S = 86_400.0  # a day: more is a typo (and past what a ZeroMQ poll takes)


def deadline_s(text: str) -> float:
    """argparse `type=`: a finite number of seconds above 0 and at most a day; anything
    else is a usage error (one line, exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= MAX_DEADLINE_S):
        raise argparse.ArgumentTypeError(
            f"{text!r}: a deadline is more than 0 and at most {MAX_DEADLINE_S:,.0f} s"
        )
    return value
