"""The client's reading of the OMS event stream (`ExecutionClient.events`): lone events and
an `OrderEvents`' items one by one, in `event_seq` order; after a gap or a new OMS epoch, a
fresh `Snapshot` of the open orders first.

`EventStream` holds what the sequence needs between calls (the last `event_seq`, the OMS
epoch it is of, the items of a batch not yet yielded), so a caller may stop after anything
it yields and get the rest on its next call. It asks for snapshots through `request` (the
client's request-with-retries); `take_snapshot` falls back to listing the open orders page
by page where one reply cannot carry them all.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterator

import zmq

from protocol.event_batch import EventItem, item_event, lone_event, read_events
from protocol.exceptions import ProtocolError
from protocol.messages import (
    ErrorCode,
    ListOrders,
    Message,
    OrderEvent,
    OrderList,
    OrderView,
    RequestRejected,
    Snapshot,
    SnapshotRequest,
    StreamEvent,
)

Request = Callable[[Message], tuple[int, Message]]  # the reply, and its OMS epoch
Refused = Callable[[Message], Exception]  # what a snapshot request's refusal raises
Event = OrderEvent | StreamEvent | Snapshot
Unit = tuple[int, int, OrderEvent | StreamEvent | None]  # (OMS epoch, event_seq, event)

# A listing the OMS's restarts cut (its cursor refused) starts again at most this often.
LISTING_STARTS = 3


def cursor_refused(reply: Message, offset: int) -> bool:
    """The OMS refused a listing's cursor: it restarted since the listing began."""
    return (
        offset != 0
        and isinstance(reply, RequestRejected)
        and reply.code is ErrorCode.NOT_READY
        and reply.field == "offset"
    )


class EventStream:
    def __init__(self, request: Request, refuse: Refused) -> None:
        self._request = request
        self._refuse = refuse
        self._last_event_seq: int | None = None
        self._epoch: int | None = None  # the OMS incarnation `_last_event_seq` is of
        self._batched: deque[EventItem] = deque()  # an `OrderEvents`' items not yet yielded
        self._batched_epoch = 0  # the OMS incarnation that published them
        self._held: Unit | None = None  # (epoch, event_seq, event) taken, not yet sequenced
        self._snapped = False  # the held one's Snapshot was yielded: it comes next
        self._replaced: deque[int] = deque(maxlen=8)  # epochs a later one's snapshot replaced
        self._refused: Unit | None = None  # the held unit whose snapshot the OMS refused

    def events(
        self, sub: zmq.Socket[bytes], timeout_s: float | None, wanted: frozenset[str] | None
    ) -> Iterator[Event]:
        """See `ExecutionClient.events` (`wanted`: the order statuses, as their values)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        # past the deadline the call ends, between two events as between two reads (a
        # caller slower than the OMS must not be kept past its timeout by a busy stream or
        # by a batch in hand); each call makes one step at least (timeout_s=0: one event
        # yielded, or one message read that has none for the caller, or one look at an
        # empty socket), what is left waits for the next call
        stepped = took = False
        while True:
            while self._held is not None or self._batched:  # a caller stops at any of them
                if stepped and deadline is not None and time.monotonic() >= deadline:
                    return
                if self._held is None:
                    unit = item_event(self._batched.popleft(), wanted)
                    if unit is None:
                        continue
                    self._held = (self._batched_epoch, *unit)
                yield from self._in_sequence(wanted)
                stepped = True
            stepped, took = stepped or took, False
            wait_ms = 200
            if deadline is not None:
                left_s = deadline - time.monotonic()
                if left_s <= 0 and stepped:
                    return
                wait_ms = max(0, math.ceil(left_s * 1000))
            if not sub.poll(wait_ms):
                stepped = True
                continue
            took = True
            frames = sub.recv_multipart()
            try:
                batch = read_events(frames, tolerant=True)  # a newer core's fields ignored
            except ProtocolError:
                continue
            if batch is not None:  # its items one by one, those left kept for the next call
                self._batched_epoch, items = batch
                self._batched.extend(items)
                continue
            lone = lone_event(frames, wanted, tolerant=True)
            if lone is not None:
                self._held = (lone[0], *lone[1])

    def _in_sequence(self, wanted: frozenset[str] | None) -> Iterator[Event]:
        """The held event (None: sequenced, not wanted), after a fresh Snapshot if it
        follows a gap or a new epoch; nothing for a duplicate or old one. It stays held,
        and its epoch unrecorded, until the snapshot is in: if that raises (`Timeout`: a
        new OMS slow to answer), the next call takes it again as it was; a refusal, or an
        answer this library cannot read (a `ProtocolError`: `IncompatibleCore`, a newer
        core's value), is raised once (`refused`), and the next call goes on past the gap
        (the caller was told: a stream is not held up by an OMS that keeps refusing, nor by
        an order in a status this library lacks); and until it is
        yielded: a caller that stops at the Snapshot gets it first on its next call."""
        assert self._held is not None
        epoch, seq, body = self._held
        if wanted is not None and isinstance(body, OrderEvent):
            body = body if body.order.status.value in wanted else None  # another call's
        if epoch in self._replaced:
            self._held = None
            return  # of an incarnation a later one's snapshot replaced
        restarted = self._epoch not in (None, epoch)  # a new OMS epoch
        last = self._last_event_seq
        told = self._snapped or self._refused is self._held  # its Snapshot yielded / refused
        if last is not None and (restarted or seq != last + 1) and not told:
            if not restarted and seq <= last:
                self._held = None
                return  # duplicate / old (one of this incarnation's a snapshot covered)
            try:
                snap_epoch, snap = take_snapshot(self._request)
            except ProtocolError:  # answered, unreadable here (`IncompatibleCore`): a refusal
                self._refused = self._held
                raise
            if not isinstance(snap, Snapshot):  # (NOT_READY, INTERNAL): raised, once
                self._refused = self._held
                raise self._refuse(snap)
            for old in (self._epoch, epoch):  # the snapshot's (later) incarnation replaced
                # them: their events queued behind are dropped, not each a snapshot; never
                # a later one than it (epochs rise: a stale answer must not silence the live)
                if old is not None and old < snap_epoch and old not in self._replaced:
                    self._replaced.append(old)
            if snap_epoch in self._replaced:  # never drop the answering one's events
                self._replaced.remove(snap_epoch)
            self._epoch, self._last_event_seq = snap_epoch, snap.event_seq
            if seq <= snap.event_seq or snap_epoch != epoch:
                self._held = None  # in the snapshot, or of another incarnation than it
            self._snapped = self._held is not None  # yielded after it, even next call
            yield snap
            if self._held is None:
                return
        self._held, self._snapped, self._epoch, self._last_event_seq = None, False, epoch, seq
        self._refused = None
        if body is not None:
            yield body


def take_snapshot(request: Request) -> tuple[int, Message]:
    """The open orders now and the OMS epoch they are of: one Snapshot, or, where the OMS
    holds more open orders than one reply carries (it refuses the SnapshotRequest), the
    open orders page by page (`ListOrders`), as of the first page's `event_seq`: a later
    page may already reflect an event after it, which the stream then delivers again (each
    event carries the order's whole view: it is applied onto newer state, never lost)."""
    epoch, snap = request(SnapshotRequest())
    if not (isinstance(snap, RequestRejected) and snap.code is ErrorCode.BAD_REQUEST):
        return epoch, snap
    for _ in range(LISTING_STARTS):
        orders: list[OrderView] = []
        first: tuple[int, int] | None = None  # the first page's epoch and event_seq
        offset: int | None = 0
        while offset is not None:
            epoch, page = request(ListOrders(open_only=True, offset=offset))
            if cursor_refused(page, offset):
                break  # the OMS restarted between two pages: list again
            if not isinstance(page, OrderList):
                return epoch, page
            if first is None:
                first = epoch, page.event_seq or 0
            orders.extend(page.orders)
            offset = page.next_offset
        else:
            epoch, seq = first or (epoch, 0)
            return epoch, Snapshot(event_seq=seq, orders=orders)
    return epoch, RequestRejected(code=ErrorCode.NOT_READY, reason="open orders cut by restarts")
