"""Every open order's status as of one instant, read lazily.

The venue's answer to an OrderMassStatusRequest goes out in parts across loop turns
(`actors.venuesim.pump`), yet each part must say what the order was when the request
came, as if the whole answer had been sent at once: the engine tells every live snapshot
`before_change(oid)` before it changes an order, and a snapshot that has not read that
order yet reads it then. Reading is O(1) per order; nothing is copied up front but the
order ids.

    snap = venue.status_snapshot(now_ns)    # len(snap): orders in the answer
    for event in snap: ...                  # ExecType=I per order, oldest first
    snap.close()                            # done early: the engine forgets it
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from actors.venuesim.model import STATUS_EXEC_ID, ExecEvent, ExecType
from actors.venuesim.orders import SimOrder, exec_event


class StatusSnapshot(Iterator[ExecEvent]):
    def __init__(
        self,
        orders: dict[int, SimOrder],
        now_ns: int,
        release: Callable[[StatusSnapshot], None],
    ) -> None:
        self._unread = orders  # oid -> live state, not read yet
        self._ids = list(orders)
        self._next = 0
        self._frozen: dict[int, ExecEvent] = {}  # read early: about to change
        self._now_ns = now_ns
        self._release = release
        self.total = len(orders)

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> StatusSnapshot:
        return self

    def __next__(self) -> ExecEvent:
        if self._next >= len(self._ids):
            self.close()
            raise StopIteration
        oid = self._ids[self._next]
        self._next += 1
        state = self._unread.pop(oid)
        frozen = self._frozen.pop(oid, None)
        return frozen if frozen is not None else self._read(state)

    def before_change(self, oid: int) -> None:
        """The engine is about to change order `oid`: keep its status as it is now."""
        state = self._unread.get(oid)
        if state is not None and oid not in self._frozen:
            self._frozen[oid] = self._read(state)

    def close(self) -> None:
        if self._ids or self._unread:
            self._ids, self._unread, self._frozen = [], {}, {}
            self._release(self)

    def _read(self, o: SimOrder) -> ExecEvent:
        return exec_event(o, ExecType.ORDER_STATUS, STATUS_EXEC_ID, self._now_ns, text=o.text)
