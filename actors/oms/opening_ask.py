"""A cold start's opening positions are taken only from a positions answer the OMS can
account for: one whose cut (`ExecCut`) names this OMS incarnation, so every execution up to
it is applied here, and which the OMS's fill log still reaches (what the book applied after
it stays on top: `actors.oms.plan_apply`). An answer without such a cut (the connector's
wait for our acks ran out, `oms_epoch` None: it may hold a fill we apply only later, which
would then count twice; or the cut is older than the log) is not taken: the pass, its plan
applied, asks the venue's positions again after a short backoff, up to `ASKS` times, and
ends only once they are taken. Each ask lets the connector's answer wait longer for our
acks (`GetPositions.wait_s`: 0.25 s doubling to 2 s, where its own wait is 0.1 s: an OMS
slowed by its cold start acks late, not never). Each is logged `opening_positions_retry`
(warning: `reason`, `attempt`, `retry_s`, `wait_s`) and counted in
`tradepulse_opening_positions_retries_total{venue}`. Past `ASKS` the pass fails
(`reconcile_failed`; `tradepulse status`: `reconcile_failing: opening positions: <reason>`)
and is retried as any failed pass, with the link's backoff (`actors.oms.reconcile_retry`),
until an answer comes with a cut: when the venue's executions pause the connector's wait
succeeds. Until then the venue is not reconciled: nothing is sent to it, and new orders for
it are refused (`NOT_READY`), as during the rest of the cold pass; risk is told of no
opening positions.

An answer with no cut at all is not taken either (every connector of this build stamps
one): asked again it brings none, so the pass fails after its asks, loudly, and is retried.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from actors.oms.reconcile_pass import PassLink, ReconcilePass
from actors.oms.reconcile_retry import why
from actors.runtime import metrics
from actors.runtime.backoff import backoff_delay
from protocol.codec import Envelope
from protocol.messages import GetPositions, Positions

ASKS = 5  # positions asked again within one pass before it fails (then retried as a pass)
INITIAL_S = 0.2  # the first ask's delay, doubling: 0.2, 0.4, 0.8, 1.6, 3.2 s (~6 s a pass)
FACTOR = 2.0
MAX_S = 5.0
JITTER = 0.1
ACK_WAIT_S = 0.25  # the first ask's wait at the connector for our acks, doubling
MAX_ACK_WAIT_S = 2.0  # (and at most half the request's timeout)


class OpeningAsk:
    """One venue link's asks for positions a cold start can take (module docstring).
    `PlanApplier.finish` calls `refuse` when it did not take an answer; right after it the
    link calls `again`, which asks once more or fails the pass."""

    def __init__(
        self,
        link: PassLink,
        call_later: Callable[[float, Callable[[], None]], None],
        rand: Callable[[], float] | None = None,
    ) -> None:
        self._link = link
        self._call_later = call_later
        self._rand = rand or random.random
        self._refused: str | None = None
        self._pass: ReconcilePass | None = None  # the pass whose asks `_asks` counts
        self._asks = 0
        self._counter = metrics.OPENING_POSITIONS_RETRIES.labels(venue=link.venue)

    def refuse(self, reason: str) -> None:
        """The pass's positions answer was not taken as opening positions (why)."""
        self._refused = reason

    def again(self, p: ReconcilePass) -> bool:
        """After the plan of `p` is applied: True if its positions are asked again (or the
        pass failed, past `ASKS`), so it does not end now; False if nothing was refused."""
        reason, self._refused = self._refused, None
        if reason is None:
            self._pass = None  # nothing refused: the next refusal counts from 1
            return False
        if self._pass is not p:
            self._pass, self._asks = p, 0
        self._asks += 1
        if self._asks > ASKS:
            self._link.pass_failed(p, f"opening positions: {reason}")
            return True
        delay_s = backoff_delay(
            self._asks, initial_s=INITIAL_S, factor=FACTOR, max_s=MAX_S, jitter=JITTER,
            rand=self._rand,
        )  # fmt: skip
        link = self._link
        wait_s = min(ACK_WAIT_S * FACTOR ** (self._asks - 1), MAX_ACK_WAIT_S)
        wait_s = min(wait_s, link.request_timeout_s / 2)
        self._counter.inc()
        link.log.warning(
            "opening_positions_retry", reason=reason, attempt=self._asks,
            retry_s=round(delay_s, 3), wait_s=wait_s,
        )  # fmt: skip
        self._call_later(delay_s, p.resume(lambda: self._ask(p, wait_s)))
        return True

    def _ask(self, p: ReconcilePass, wait_s: float) -> None:
        link = self._link
        ask = GetPositions(venue=link.venue, wait_s=wait_s)
        link.request(ask, lambda r: self._got(p, r), link.request_timeout_s + wait_s)

    def _got(self, p: ReconcilePass, reply: Envelope | None) -> None:
        if p.gone(reply):
            return
        body = reply.body if reply is not None else None
        if not isinstance(body, Positions) or body.source != "venue":
            # a timeout, a refusal, the connector's ledger: the next pass sorts it out
            return self._link.pass_failed(p, f"opening positions: {why(reply)}")
        p.resume(lambda: self._link.pass_applied(p, p.plan, body))()
