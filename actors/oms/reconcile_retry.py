"""How one venue's reconciliation passes fail and are retried: the count of passes failed
since the last that succeeded, the reason shown in `tradepulse status`
(`reconcile_failing: <reason>`), the metrics (`tradepulse_reconcile_failures_total{venue}`,
`tradepulse_reconcile_failing{venue}`: passes failed while CONNECTED only) and the capped
exponential backoff before the next attempt (`oms.reconcile_retry_initial_s` doubling up to
`oms.reconcile_retry_max_s`, with 10% jitter), connected or not. The backoff's attempts
start again at each CONNECTED (failures while the venue was down do not make the first
failure once connected wait the maximum); no retry is scheduled while the venue's session
is closed or the operator stopped its connector (`holds_off`: the next CONNECTED, at the
session's open or the connector's start, runs a pass at once). Used by
`actors.oms.venue_link.VenueLink`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from actors.runtime import metrics
from actors.runtime.backoff import backoff_delay
from protocol.codec import Envelope
from protocol.messages import ErrorCode, RequestRejected, VenueConnState

FACTOR = 2.0
JITTER = 0.1


class ReconcileRetry:
    def __init__(
        self,
        venue: str,
        *,
        initial_s: float,
        max_s: float,
        log: Any,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0  # passes failed since the last that succeeded
        self.attempts = 0  # of those, since the last CONNECTED: the backoff's exponent
        self.reason = ""
        self._log = log
        self._rand = rand
        self._counter = metrics.RECONCILE_FAILURES.labels(venue=venue)
        self._gauge = metrics.RECONCILE_FAILING.labels(venue=venue)
        self._gauge.set(0)

    @property
    def failing(self) -> bool:
        return self.failures > 0

    def failed(
        self, why: str, *, at_once: bool, state: VenueConnState = VenueConnState.CONNECTED
    ) -> float:
        """A pass failed: logged; the delay before the next attempt (0 when `at_once`),
        growing with every failure. Counted and made visible (metrics) only while
        CONNECTED: a venue not seen connected is down (alerted as such) or its CONNECTED
        was lost, which the retry finds out."""
        self.failures += 1
        self.attempts += 1
        self.reason = why
        if state is VenueConnState.CONNECTED:
            self._counter.inc()
            self._gauge.set(1)
        delay = 0.0 if at_once else self.delay()
        self._log.warning(
            "reconcile_failed",
            reason=why,
            attempt=self.failures,
            retry_s=round(delay, 3),
            state=state.value,
        )
        return delay

    def delay(self) -> float:
        """The backoff before the next attempt (the initial one before any failure)."""
        return backoff_delay(
            max(self.attempts, 1),
            initial_s=self.initial_s,
            factor=FACTOR,
            max_s=self.max_s,
            jitter=JITTER,
            rand=self._rand,
        )

    def connected(self) -> None:
        """The venue is seen CONNECTED: the backoff starts again from its initial delay."""
        self.attempts = 0

    @staticmethod
    def holds_off(state: VenueConnState, operator_stopped: bool) -> bool:
        """No retry timer (nor a pass for a request left unanswered): the session is closed
        (every request is refused until it opens), or the operator stopped the connector or
        the supervisor gave up on it (the stops file); their CONNECTED runs a pass at once,
        and a stop's going retries one (`VenueLink.hold_lifted`: that CONNECTED may be past)."""
        return operator_stopped or state is VenueConnState.OUT_OF_SESSION

    def succeeded(self) -> None:
        if self.failures:
            self._log.info("reconcile_recovered", failed_passes=self.failures)
        self.failures, self.attempts, self.reason = 0, 0, ""
        self._gauge.set(0)


def venue_refused(reply: Envelope | None) -> bool:
    """The connector answered that the venue refused the request (a Reject, a
    BusinessMessageReject, a refusing answer): VENUE_REFUSED. Not a timeout (a slow venue
    that does serve the request: the pass fails and is retried, so a cold start still takes
    the venue's opening positions), nor VENUE_DOWN, nor no answer from the connector."""
    return (
        reply is not None
        and isinstance(reply.body, RequestRejected)
        and reply.body.code is ErrorCode.VENUE_REFUSED
    )


def why(reply: Envelope | None) -> str:
    if reply is None:
        return "no answer from the connector"
    if isinstance(reply.body, RequestRejected):
        return f"{reply.body.code.value}: {reply.body.reason}"
    return f"unexpected reply {reply.type}"
