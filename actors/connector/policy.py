"""The connector's reconnect policy and venue state, as a pure state machine (no I/O).

    policy = ReconnectPolicy(vcfg.reconnect, vcfg.down_after_failures, stable_s)
    state = policy.state                          # CONNECTING at start: the first attempt
    policy.on_up(now_s)                           # -> CONNECTED
    retry = policy.on_down(was_up, reason, now_s) # -> Retry(state, attempt, delay_s)
    ... after retry.delay_s: policy.on_attempt()  # DISCONNECTED -> CONNECTING

States: CONNECTING while attempts fail, CONNECTED once the adapter reports the session up,
DISCONNECTED when a live session ends (until the next attempt starts), DOWN after
`down_after_failures` consecutive failed attempts (it stays DOWN, retrying at the maximum
delay, until an attempt succeeds).

Delays: `backoff_delay(attempt)` with capped exponential growth and jitter; `attempt`
counts retries since the last *stable* session (one that stayed up `stable_s`), so a venue
that accepts the logon and drops it at once is retried with growing delays too.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from actors.runtime.backoff import backoff_delay
from protocol.config import BackoffCfg
from protocol.messages import VenueConnState as S

_FOREVER = 10_000  # an attempt number far past the cap


@dataclass(frozen=True)
class Retry:
    state: S
    attempt: int
    delay_s: float
    failures: int


class ReconnectPolicy:
    def __init__(
        self,
        backoff: BackoffCfg,
        down_after_failures: int,
        stable_s: float,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.backoff = backoff
        self.down_after_failures = down_after_failures
        self.stable_s = stable_s
        self.rand = rand
        self.state = S.CONNECTING
        self.failures = 0  # consecutive failed attempts (DOWN threshold)
        self.attempt = 0  # retries since the last stable session (backoff step)
        self._up_since_s: float | None = None

    def on_up(self, now_s: float) -> S:
        self.failures = 0
        self._up_since_s = now_s
        self.state = S.CONNECTED
        return self.state

    def on_down(self, was_up: bool, now_s: float) -> Retry:
        """A live session ended (`was_up`) or an attempt failed: the next retry."""
        if was_up:
            up_since = self._up_since_s if self._up_since_s is not None else now_s
            if now_s - up_since >= self.stable_s:
                self.attempt = 0
            self._up_since_s = None
            self.state = S.DISCONNECTED
        else:
            self.failures += 1
            if self.failures >= self.down_after_failures:
                self.state = S.DOWN
        self.attempt += 1
        step = _FOREVER if self.state is S.DOWN else self.attempt
        b = self.backoff
        delay_s = backoff_delay(
            step, initial_s=b.initial_s, factor=b.factor, max_s=b.max_s, jitter=b.jitter,
            rand=self.rand,
        )  # fmt: skip
        return Retry(self.state, self.attempt, delay_s, self.failures)

    def restart(self) -> S:
        """A trading session opens (schedule): a first attempt, from the first step."""
        self.failures = self.attempt = 0
        self._up_since_s = None
        self.state = S.CONNECTING
        return self.state

    def on_attempt(self) -> S:
        """An attempt starts: DISCONNECTED becomes CONNECTING; DOWN stays DOWN."""
        if self.state is S.DISCONNECTED:
            self.state = S.CONNECTING
        return self.state
