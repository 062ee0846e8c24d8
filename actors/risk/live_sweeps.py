"""While the kill switch is engaged, an order seen live at its venue is cancelled.

An engagement mass-cancels every venue at once and sweeps once more a little later
(`actor._CANCEL_SWEEP_S`); a create on its way to the exchange can land after both (slow
network within the recvWindow, a create held by the connector's rate-limit pacing) and
rest there, live, while the switch is engaged. The OMS follows such an order to ACCEPTED
and publishes it; risk reads every order event. So an order event that shows an order
live at its venue (`LIVE_STATUSES`) while the switch is engaged sweeps that venue again:
a MassCancel of that venue through the same round machinery as the engagement's
(`CancelTracker`: sent again until the connector confirms; FIX and ccxt venues alike).

Debounced, so a flood of order events never turns into a flood of mass cancels: per venue
at most one sweep waits at a time, and one starts at least `min_interval_s` after the
venue's previous sweep or round (a sweep asked for sooner waits until then, never
dropped: the event may show the order that the previous round came too early for).
A sweep asked for while the venue's MassCancel is in flight is sent once that answers
(`CancelTracker.start_venue`): at most one per venue in flight.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from actors.risk.support import CancelTracker
from actors.runtime import metrics
from protocol.messages import OrderStatus, OrderView

# the OMS's statuses of an order live at its venue (a cancel of it may be on its way: the
# mass cancel still answers for it)
LIVE_STATUSES = frozenset(
    {
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.PENDING_REPLACE,
    }
)


class LiveOrderSweeps:
    """The venue sweeps of an engaged kill switch asked for by live orders (module doc).
    `engaged`, `call_later` and `send_cancel` are the risk actor's."""

    def __init__(
        self,
        cancels: CancelTracker,
        *,
        engaged: Callable[[], bool],
        call_later: Callable[[float, Callable[[], None]], None],
        send_cancel: Callable[[str], None],
        log: Any,
        min_interval_s: float,
    ) -> None:
        self.cancels = cancels
        self.engaged = engaged
        self.call_later = call_later
        self.send_cancel = send_cancel
        self.log = log
        self.min_interval_s = min_interval_s
        self.last_s: dict[str, float] = {}  # venue -> when its last sweep or round began
        self.waiting: dict[str, tuple[str, int]] = {}  # venue -> (order, wait) waiting (one)
        self._waits = 0  # numbers each wait: the timer of a wait a round dropped does nothing
        self._count = {v: metrics.KILL_SWITCH_LIVE_SWEEPS.labels(venue=v) for v in cancels.venues}

    def round_started(self, now_s: float) -> None:
        """A round over every venue began (an engagement, its sweep, a reload): it covers
        the orders seen so far (a sweep waiting for one is dropped)."""
        for venue in self.cancels.venues:
            self.last_s[venue] = now_s
        self.waiting.clear()

    def on_order(self, order: OrderView) -> None:
        """An OMS order event: `order` live at its venue while engaged sweeps the venue
        (now, or once `min_interval_s` has passed since its last one)."""
        venue = order.venue
        if (
            order.status not in LIVE_STATUSES
            or venue not in self.cancels.venues
            or venue in self.waiting
            or not self.engaged()
        ):
            return
        self._waits += 1
        wait = self.waiting[venue] = (order.client_order_id, self._waits)
        due_s = self.last_s.get(venue, -math.inf) + self.min_interval_s
        self.call_later(max(0.0, due_s - time.monotonic()), lambda: self._sweep(venue, wait))

    def _sweep(self, venue: str, wait: tuple[str, int]) -> None:
        if self.waiting.get(venue) != wait:  # dropped by a round (a newer wait has its timer)
            return
        cl_ord_id = self.waiting.pop(venue)[0]
        if not self.engaged():
            return
        self.last_s[venue] = time.monotonic()
        self._count[venue].inc()
        self.log.warning(
            "kill_switch_cancel_round", why="live_order", venues=[venue], client_order_id=cl_ord_id
        )
        if self.cancels.start_venue(venue):
            self.send_cancel(venue)
