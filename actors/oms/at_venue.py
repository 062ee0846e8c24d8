"""The orders open at each venue (`open_at_venue` in the OMS's heartbeat info, which
`tradepulse stop CONNECTOR` checks), kept up to date instead of counted at every beat.

Counting walks every open order (as `intake_state.open_at_venue` does) at every beat (five a
second): with 16k open orders the count was 43% of the OMS's CPU in `make bench-quick`.
Here every order the OMS records an applied outcome for is noted (O(1): every change of
an order is journalled through `OmsActor.record`) in its venue's set of open ids, whose size
is the count. The first count walks the whole book (after the journal's replay). From then on
a safety net checks the book against the sets, a slice of orders and as many noted ids per
count: `SLICE`, or more so that a round takes at most `ROUND_BEATS` counts (the recount it
replaces walked 50,000 orders in one loop turn, ~13 ms in-process, ~3.4 % of the OMS's CPU
under load); the next round begins `RECOUNT_S` after one ended. Were a change ever to bypass
`record`, the count is right again within a pause plus a round, and `open_at_venue_drift`
is logged and counted (`tradepulse_oms_open_at_venue_drifts_total`). The pause is `RECOUNT_S`,
or the last round's checks over `CHECKS_PER_S` if longer: the net's cost per second stays
bounded at any size of the book, so a held order costs the same with 1,000 open or 50,000
(issue 16; at 50,000 a round is ~100,000 checks: a missed change shows within ~24 s, ~9 s
before the bound, ~5 s at 1,000).
"""

from __future__ import annotations

import time

import structlog

from actors.oms.intake_state import reached_venue
from actors.oms.order_book import OrderBook
from actors.oms.orders import Order
from actors.runtime import metrics
from protocol.messages import TERMINAL_STATUSES, OrderStatus

RECOUNT_S = 5.0
SLICE = 1000  # at least this many orders of the book (and noted ids) checked per count
ROUND_BEATS = 20  # a round is at most ~this many counts (~4 s at 5 beats/s), at any size
CHECKS_PER_S = 5000  # the net's bound: the pause after a round is at least checks / this

_log = structlog.get_logger("oms.at_venue")


_OPEN_THERE = frozenset(s for s in OrderStatus if s not in TERMINAL_STATUSES and reached_venue(s))
_EMPTY: dict[str, None] = {}


def _open_there(order: Order) -> bool:
    return order.status in _OPEN_THERE


class OpenAtVenue:
    def __init__(self) -> None:
        self._ids: dict[str, dict[str, None]] = {}  # venue -> ids of its orders open there
        self._counted = False
        self._round_at = 0.0
        self._pause = RECOUNT_S  # before the next round (`CHECKS_PER_S`)
        self._orders: list[str] = []  # ids of this round's book, still to check
        self._slice = SLICE
        self._noted: list[tuple[str, list[str]]] = []  # this round's sets, still to check
        self.drifts = 0  # changes the safety net found that `note` had missed

    def note(self, order: Order) -> None:
        """`order` changed: count it at its venue while it is open there."""
        ids = self._ids.get(order.venue)
        if _open_there(order):
            if ids is None:
                ids = self._ids[order.venue] = {}
            ids[order.client_order_id] = None
        elif ids is not None:
            ids.pop(order.client_order_id, None)

    def counts(self, book: OrderBook, now: float | None = None) -> dict[str, int]:
        """venue -> its orders open at the venue (as `open_at_venue(book)`)."""
        now = time.monotonic() if now is None else now
        if not self._counted:  # one walk of the whole book
            self._counted, self._round_at = True, now
            for order in book.held_orders():
                self.note(order)
        else:
            self._check(book, now)
        return {venue: len(ids) for venue, ids in self._ids.items() if ids}

    def _check(self, book: OrderBook, now: float) -> None:
        """One slice of the safety net's round (the next one begins `RECOUNT_S` after it
        ended)."""
        if not self._orders and not self._noted:
            if now - self._round_at < self._pause:  # since the last round ended
                return
            # ids, not the orders: one that ends meanwhile leaves memory as it would
            self._orders = [o.client_order_id for o in book.held_orders()]
            self._noted = [(venue, list(ids)) for venue, ids in self._ids.items()]
            self._slice = max(SLICE, -(-len(self._orders) // ROUND_BEATS))
            checks = len(self._orders) + sum(len(ids) for _, ids in self._noted)
            self._pause = max(RECOUNT_S, checks / CHECKS_PER_S)
        ids, empty, held, size = self._ids, _EMPTY, book.held, self._slice
        coids = self._orders[-size:]
        del self._orders[-size:]
        # open there, not noted (an order no longer held is terminal: it left the book)
        for order in [
            o
            for c in coids
            if (o := held(c)) is not None
            and o.status in _OPEN_THERE
            and o.client_order_id not in ids.get(o.venue, empty)
        ]:
            self._drift(order, order.venue, order.client_order_id)
        left = size
        while self._noted and left > 0:  # noted, not open there (or not held)
            venue, coids = self._noted[-1]
            chunk = coids[-left:]
            del coids[-left:]
            left -= len(chunk)
            if not coids:
                self._noted.pop()
            for coid in [
                c
                for c in chunk
                if (o := held(c)) is None or o.status not in _OPEN_THERE or o.venue != venue
            ]:
                if coid in ids[venue]:
                    self._drift(held(coid), venue, coid)
        if not self._orders and not self._noted:
            self._round_at = now

    def _drift(self, order: Order | None, venue: str, coid: str) -> None:
        self.drifts += 1
        metrics.OPEN_AT_VENUE_DRIFTS.inc()
        status = "not held" if order is None else str(order.status)
        _log.warning("open_at_venue_drift", venue=venue, client_order_id=coid, status=status)
        if order is not None and order.venue == venue:
            self.note(order)
        else:
            self._ids[venue].pop(coid, None)
