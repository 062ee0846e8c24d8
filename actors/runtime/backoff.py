"""Capped exponential backoff with jitter: one pure function for the supervisor's restarts
(`actors.supervisor.child`) and a connector's reconnects (`actors.connector.policy`)."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    attempt: int,
    *,
    initial_s: float,
    factor: float,
    max_s: float,
    jitter: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """Capped exponential backoff with +/- `jitter` (a fraction) for the `attempt`-th retry
    (1-based)."""
    if attempt < 1:
        return 0.0
    try:
        base = min(max_s, initial_s * factor ** (attempt - 1))
    except OverflowError:  # factor**n beyond float range (a long crash loop): long since capped
        base = max_s if initial_s > 0 else 0.0
    return min(max_s, max(0.0, base * (1.0 + jitter * (2.0 * rand() - 1.0))))
