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
