"""When the OMS's loop turn commits its journal (one write + one fdatasync for the turn).

A turn commits when anything waits for durability: a reply, a send or an event
(`after_commit`), or any record other than a submit's `new` record. A new order waiting for
its risk verdict (PENDING_RISK) has told nobody anything yet: its client's OrderAck waits for
the verdict, nothing goes to a venue, its event waits for the commit. So a turn whose only
records are such `new` records does not fsync; they become durable in the same commit as
the verdict's record, one fdatasync for both, and the verdict no longer waits behind the
fsync of `new` (issue 16). A crash before that commit loses an order nobody was told of
(its submitter retries with the same client_order_id, which is idempotent; risk was asked
before the commit already, and counts it as open exposure until it syncs with the OMS).
Deferral is bounded: records deferred for `max_defer_s` are committed at the next turn
(risk slow, frozen or gone), so the order's PENDING_RISK state becomes durable and visible.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from protocol.messages import OrderStatus

MAX_DEFER_S = 0.05


class CommitPolicy:
    def __init__(
        self, max_defer_s: float = MAX_DEFER_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_defer_s = max_defer_s
        self._clock = clock
        self._must = False
        self._deferred_since: float | None = None

    def noted(self, records: Sequence[Mapping[str, Any]], status: OrderStatus | None) -> None:
        """Records were appended for an order now in `status`."""
        if not records:
            return
        if status is OrderStatus.PENDING_RISK and all(r.get("kind") == "new" for r in records):
            if self._deferred_since is None:
                self._deferred_since = self._clock()
        else:
            self._must = True

    def due(self, *, waiting: bool) -> bool:
        """Commit this turn? `waiting`: replies, sends or events wait for durability."""
        if self._must or waiting:
            return True
        since = self._deferred_since
        return since is not None and self._clock() - since >= self.max_defer_s

    def committed(self) -> None:
        self._must = False
        self._deferred_since = None


class EventHold:
    """The event of an order waiting for its verdict waits too. Such an order (PENDING_RISK)
    has told nobody anything; its verdict normally follows within a turn or two, and the
    order is then published once (PENDING_SUBMIT, or REJECTED) instead of twice. Without
    this, under load a commit made for other orders' records sent the PENDING_RISK event
    alone: a third of the OMS's events (its view, encode, send, and every subscriber's
    receive). Bounded as the deferral of its record is: an order still waiting after
    `max_hold_s` (risk slow or gone) is published PENDING_RISK; `wake(delay_s, fn)` (the
    loop's `call_later`) makes sure a turn comes then."""

    def __init__(
        self,
        wake: Callable[[float, Callable[[], None]], None],
        max_hold_s: float = MAX_DEFER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_hold_s = max_hold_s
        self._wake = wake
        self._clock = clock
        self._since: dict[str, float] = {}  # client_order_id -> held since (held ones only)
        self._wake_set = False

    def hold(self, client_order_id: str, status: OrderStatus) -> bool:
        """True: do not publish the order's event this turn (ask again next turn)."""
        if status is not OrderStatus.PENDING_RISK:
            if self._since:
                self._since.pop(client_order_id, None)
            return False
        now = self._clock()
        since = self._since.setdefault(client_order_id, now)
        if now - since >= self.max_hold_s:
            del self._since[client_order_id]
            return False
        if not self._wake_set:
            self._wake_set = True
            self._wake(self.max_hold_s, self._woken)
        return True

    def _woken(self) -> None:
        """A turn when the earliest held event is due (not `max_hold_s` after this wake:
        an order held after the first would wait up to twice the bound)."""
        self._wake_set = False
        now = self._clock()
        while self._since:  # oldest first: an entry never asked about again is not held
            coid, since = next(iter(self._since.items()))
            if now - since < 2 * self.max_hold_s:
                break
            del self._since[coid]
        if not self._since:
            return
        # the earliest not yet due; those due are asked this turn (else dropped at 2x)
        first = next(iter(self._since.values()))
        due = first + 2 * self.max_hold_s
        for since in self._since.values():
            if since + self.max_hold_s > now:
                due = since + self.max_hold_s
                break
        self._wake_set = True
        self._wake(due - now, self._woken)

    @property
    def held(self) -> int:
        return len(self._since)


class AfterCommit:
    """What waits for the turn's commit, in two lists: requests to venues (`first`: the
    order's path waits on them) run right after the commit, before the turn's events are
    published and before replies and reads (the page and snapshot answers read event_seq
    after the events). A venue request no longer waits for the events' send (commit ->
    PlaceOrder 18 -> 4 us in-process, with the events built before the commit), nor
    competes on a 2-core host with risk and the clients they wake (issue 16, p50)."""

    def __init__(self) -> None:
        self._first: list[Callable[[], None]] = []
        self._then: list[Callable[[], None]] = []

    def add(self, fn: Callable[[], None], *, first: bool = False) -> None:
        (self._first if first else self._then).append(fn)

    def __bool__(self) -> bool:
        return bool(self._first or self._then)

    def take(self) -> tuple[list[Callable[[], None]], list[Callable[[], None]]]:
        """(first, then), emptied."""
        first, then = self._first, self._then
        self._first, self._then = [], []
        return first, then
