"""A token bucket: the venue's message rate limit. Pure, with an injectable clock.

    bucket = TokenBucket(rate_per_s=cfg.rate_limit_per_s, burst=cfg.rate_burst)
    if bucket.try_take():       # a token was available: send now
        ...
    else:                       # keep the message queued; look again after
        delay_s = bucket.wait_s()

The bucket starts full (`burst` tokens) and refills continuously at `rate_per_s`, never
above `burst`. Nothing is ever dropped here: the caller queues what cannot go yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable

_EPSILON = 1e-9  # float refill arithmetic: 0.9999999999 tokens count as one


class TokenBucket:
    def __init__(
        self,
        rate_per_s: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    @property
    def tokens(self) -> float:
        """Tokens available now (fractional while refilling)."""
        self._refill()
        return self._tokens

    def try_take(self, n: int = 1) -> bool:
        """Take `n` tokens if they are all available now; False (nothing taken) otherwise."""
        self._refill()
        if self._tokens >= n - _EPSILON:
            self._tokens = max(0.0, self._tokens - n)
            return True
        return False

    def wait_s(self, n: int = 1) -> float:
        """Seconds until `n` tokens will be available (0 when they are now)."""
        self._refill()
        missing = n - self._tokens
        return 0.0 if missing <= _EPSILON else missing / self.rate_per_s

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._at
        self._at = now
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate_per_s)
