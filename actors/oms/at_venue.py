"""The orders open at each venue (`open_at_venue` in the OMS's heartbeat info, which
`tradepulse stop CONNECTOR` checks), kept up to date instead of counted at every beat.

Counting walks every open order (as `intake_state.open_at_venue` does); the OMS beats ten times a
second, so with 16k open orders the count was 43% of the OMS's CPU in `make bench-quick`.
Here every order the OMS records an applied outcome for is noted (O(1): every change of
an order is journalled through `OmsActor.record`), and the whole book is recounted at most
every `RECOUNT_S` as a safety net: were a change ever to bypass `record`, the count is
right again within that time.
"""

from __future__ import annotations

import time
from collections import Counter

from actors.oms.intake_state import reached_venue
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order

RECOUNT_S = 5.0


class OpenAtVenue:
    def __init__(self) -> None:
        self._venue_of: dict[str, str] = {}  # client order id -> venue, orders at a venue
        self._counts: dict[str, int] = {}
        self._recounted = -RECOUNT_S

    def note(self, order: Order) -> None:
        """`order` changed: count it at its venue while it is open there."""
        coid, counted = order.client_order_id, order.client_order_id in self._venue_of
        if not order.is_terminal and reached_venue(order.status):
            if not counted:
                self._venue_of[coid] = order.venue
                self._counts[order.venue] = self._counts.get(order.venue, 0) + 1
        elif counted:
            venue = self._venue_of.pop(coid)
            self._counts[venue] -= 1

    def counts(self, book: OrderBook, now: float | None = None) -> dict[str, int]:
        """venue -> its orders open at the venue (as `open_at_venue(book)`)."""
        now = time.monotonic() if now is None else now
        if now - self._recounted >= RECOUNT_S:
            self._recounted = now
            self._venue_of = {
                o.client_order_id: o.venue
                for o in book.orders(open_only=True)
                if reached_venue(o.status)
            }
            self._counts = dict(Counter(self._venue_of.values()))  # one walk of the book
        return {venue: n for venue, n in self._counts.items() if n}
