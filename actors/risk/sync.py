"""The risk actor's exposure, kept in step with the OMS.

A SUB on the OMS event stream feeds every `OrderEvent` to the gate's `ExposureView`. The
view is rebuilt from the OMS (`ListOrders(open_only=True)` page by page, then
`GetPositions`) whenever the stream (re)connects - this actor's start, an OMS restart - and
on a gap in the OMS's `event_seq` (events lost) or a new OMS epoch, and on a cold start's
`OPENING_POSITIONS` (positions no order event carries: until that rebuild is in, risk is
not ready and holds checks, as at its start). A gap while a rebuild is
on its way asks nothing more if its first page reflects the lost events (its `event_seq`
is at or past them; else it rebuilds again when done): a flood that overflows the SUB does
not restart the listing at every gap. Events that arrive while
a rebuild is on its way are buffered and applied on top of it; each answer carries the
`event_seq` it reflects, so an event the answers already contain is not counted again
(`SnapshotCoverage`: a fill between a page and the positions is in the positions once).
Orders approved while the rebuild was on its way are added back as provisional exposure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import zmq
from zmq.utils.monitor import recv_monitor_message

from actors.risk.checks import ExposureView, RiskGate
from actors.risk.support import SnapshotCoverage
from actors.runtime.peer import Peer
from actors.runtime.turn_budget import TurnBudget
from protocol.batch_messages import EVENT_STREAM_HWM
from protocol.codec import Envelope
from protocol.event_batch import EventItem, read_events
from protocol.exceptions import ProtocolError
from protocol.fastpath import peek_order_event
from protocol.messages import (
    OPENING_POSITIONS,
    GetPositions,
    ListOrders,
    OrderEvent,
    OrderList,
    OrderStatus,
    OrderView,
    Positions,
    RequestRejected,
    RiskCheck,
    StreamEvent,
)
from protocol.paths import RISK_EVENTS
from protocol.sockets import tune_socket

if TYPE_CHECKING:
    from actors.runtime.actor import Actor

REBUILD_TIMEOUT_S = 2.0
# An order not yet approved carries no exposure (`ExposureView.apply_order` returns at once):
# its event is not decoded, only sequenced (`protocol.fastpath.peek_order_event`)
_NO_EXPOSURE_YET = OrderStatus.PENDING_RISK.value
# Order events read from the stream in one loop turn (an `OrderEvents` counts its items, up
# to 128): as the 1,000 lone-event messages a turn read before batches; the rest is read
# next turn (the poller is level-triggered), so a backlog never makes one turn hang-long
EVENTS_PER_TURN = 1000


class ExposureSync:
    def __init__(
        self,
        actor: Actor,
        gate: RiskGate,
        oms: Peer,
        on_rebuilt: Callable[[bool, list[OrderView]], None],
    ) -> None:
        self.actor = actor
        self.gate = gate
        self.oms = oms
        self.on_rebuilt = on_rebuilt  # (first rebuild?, its listing of open orders)
        self.ready = False
        self.rebuilds = 0
        self.events_applied = 0  # order events taken into the view (or found already in it)
        self.timeout_s = REBUILD_TIMEOUT_S
        self._syncing = 0  # generation of the rebuild in progress (0: none)
        self._gen = 0
        self._parts: dict[str, Envelope] = {}
        self._buffer: list[OrderEvent] = []
        # approved while a rebuild is on its way, and no event of theirs since: added back as
        # provisional exposure (their order may be PENDING_RISK in the answers)
        self._approved: dict[str, RiskCheck] = {}
        # approved before the rebuild's request (the view's provisional orders): added back
        # if the answers list them PENDING_RISK (unlisted: they had ended)
        self._carried: dict[str, RiskCheck] = {}
        # approved replaces that raise an order, no event of theirs yet: carried the same way
        # (`ExposureView.carry_raised`)
        self._raises: dict[str, RiskCheck] = {}
        self._coverage: SnapshotCoverage | None = None
        self._page_seqs: dict[str, int] = {}  # open order -> event_seq of its page
        # the newest event_seq lost (a gap) while the rebuild was on its way (0: none); its
        # answers cover it if their first page reflects it (`_first_seq`), else it rebuilds
        self._lost_upto = 0
        self._first_seq: int | None = None
        self._gaps_meanwhile = 0  # gaps read while it was on its way (its log line)
        self._stream: tuple[int, int] | None = None  # (OMS epoch, last event_seq)
        self.settled: Callable[[OrderView], None] = lambda _order: None  # every order event
        self.installed: Callable[[], None] = lambda: None  # a rebuilt view, before its buffer
        self._budget = TurnBudget(EVENTS_PER_TURN)
        self.sub = actor.ctx.socket(zmq.SUB)
        tune_socket(self.sub, hwm=EVENT_STREAM_HWM)  # a stream message is up to a batch
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self._monitor = self.sub.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self.sub.connect(actor.cfg.endpoint(RISK_EVENTS))  # the OMS's EventStreams
        actor.add_socket(self.sub, self._on_events)
        actor.add_socket(self._monitor, self._on_monitor)

    def approved(self, check: RiskCheck) -> None:
        """An order the gate just approved: keep it if a rebuild is on its way."""
        if self._syncing:
            self._approved[check.client_order_id] = check

    # ------------------------------------------------------------------ the event stream

    def _on_monitor(self) -> None:
        while self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)
            if event["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                self._stream = None  # a new connection: the sequence starts over
                self.start("stream_connected")  # our start, or a new OMS incarnation

    def catch_up(self) -> None:
        """Read the stream before a turn's checks: the OMS sends its waiting part just
        before them (`EventStreams.follows`), and the loop runs the ROUTER's handler first."""
        if self.sub.poll(0):
            self._on_events()

    def _on_events(self) -> None:
        # only events whose connection's binder is one of ours (runtime.zap): a stranger
        # bound at the stream's socket file would feed the exposure false fills
        for frames in self.actor.zap.from_binders(self._budget.read(self.sub, frames=True)):
            try:
                batch = read_events(frames)  # a turn's order events in one message
            except ProtocolError as exc:
                self.actor.count_bad("events", str(exc))
                continue
            if batch is not None:
                self._budget.spend_items(len(batch[1]))
                self._on_batch(*batch)
                continue
            peek = peek_order_event(frames)
            if peek is not None and peek[2] == _NO_EXPOSURE_YET:
                # `apply_order` ignores it: only its place in the sequence counts (a third
                # of the events of an order; their full decode was the most of risk's CPU)
                self._sequence(peek[0], peek[1])
                continue
            env = self.actor.decode_or_count(frames, "events")
            if env is None:
                continue
            seq = getattr(env.body, "event_seq", None)
            if isinstance(seq, int):
                self._sequence(env.epoch, seq)
            if isinstance(env.body, OrderEvent):
                self._take(env.body)
            elif isinstance(env.body, StreamEvent) and env.body.event == OPENING_POSITIONS:
                # positions no order event carries: the view lacks them, and the OMS opened
                # the venue's intake with them, so checks wait (held) for the rebuild
                self.ready = False
                self.start("opening_positions")

    def _take(self, event: OrderEvent) -> None:
        self.settled(event.order)
        if self._syncing:
            self._buffer.append(event)
            if event.order.status.value != _NO_EXPOSURE_YET:  # the OMS had the verdict: the
                # answers or this event (a retry's answers reflect it) carry the order now
                self._approved.pop(event.order.client_order_id, None)
        elif self.ready:
            self._apply(event)

    def _on_batch(self, epoch: int, items: list[EventItem]) -> None:
        """Each item as the lone event it stands for (`_on_events`)."""
        for item in items:
            if item.status == _NO_EXPOSURE_YET:
                self._sequence(epoch, item.event_seq)
                continue
            try:
                event = item.decode()
            except ProtocolError as exc:
                self.actor.count_bad("events", str(exc))
                continue
            self._sequence(epoch, event.event_seq)
            self._take(event)

    def _sequence(self, epoch: int, seq: int) -> None:
        last, self._stream = self._stream, (epoch, seq)
        if last is None or (epoch == last[0] and seq == last[1] + 1):
            return
        if epoch == last[0] and self._syncing:  # the rebuild on its way may cover it
            self._lost_upto = max(self._lost_upto, seq - 1, last[1])
            self._gaps_meanwhile += 1
            return
        self.start("event_gap" if epoch == last[0] else "oms_epoch")

    def _apply(self, event: OrderEvent) -> None:
        """Apply one event; one the view cannot take (arithmetic on a value no boundary
        should have let through) is logged and answered with a rebuild, never a crash."""
        try:
            self._apply_one(event)
        except ArithmeticError as exc:
            self.actor.log.error(
                "order_event_unapplied", client_order_id=event.order.client_order_id,
                event_seq=event.event_seq, error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
            self.start("event_unapplied")

    def _apply_one(self, event: OrderEvent) -> None:
        self.events_applied += 1
        how = "full"
        if self._coverage is not None:
            how = self._coverage.classify(event.order.client_order_id, event.event_seq)
        if how != "skip":
            self.gate.exposure.apply_order_event(event, count_fill=how == "full")

    # ------------------------------------------------------------------ rebuild

    def start(self, why: str) -> None:
        self._gen += 1
        gen = self._syncing = self._gen
        self._carried.update((c.client_order_id, c) for c in self.gate.exposure.provisional())
        self._raises.update((c.client_order_id, c) for c in self.gate.exposure.raised())
        self._parts = {}
        # its answers reflect every event received before its request (the coverage check
        # skips by event_seq what they do): a retry keeps only the events after it
        self._buffer = []
        # it reflects every gap before it
        self._lost_upto, self._first_seq, self._gaps_meanwhile = 0, None, 0
        self.actor.log.info("exposure_rebuild_started", why=why, ready=self.ready)

        def got(part: str, reply: Envelope | None) -> None:
            if gen != self._syncing:
                return  # superseded by a later rebuild
            if reply is None or isinstance(reply.body, RequestRejected):
                detail = "no answer" if reply is None else str(reply.body)
                self.actor.log.warning("exposure_rebuild_retry", part=part, detail=detail)
                self.start("retry")
                return
            self._parts[part] = reply
            if len(self._parts) == 2:
                self._finish()

        pages: list[OrderView] = []
        self._page_seqs = {}

        def got_page(reply: Envelope | None) -> None:
            """Open orders come in pages; then the positions, which reflect every event
            any page does (they are read last)."""
            if gen != self._syncing:
                return
            if reply is not None and isinstance(reply.body, OrderList):
                pages.extend(reply.body.orders)
                seq = reply.body.event_seq or 0
                if self._first_seq is None:
                    self._first_seq = seq
                self._page_seqs.update((o.client_order_id, seq) for o in reply.body.orders)
                if reply.body.next_offset is not None:
                    fetch(reply.body.next_offset)
                    return
                reply = dataclasses.replace(reply, body=OrderList(orders=pages))
            got("orders", reply)
            if "orders" in self._parts:
                self.oms.request(GetPositions(), lambda r: got("positions", r), self.timeout_s)

        def fetch(offset: int) -> None:
            self.oms.request(
                ListOrders(open_only=True, offset=offset, limit=10000), got_page, self.timeout_s
            )

        fetch(0)

    def _finish(self) -> None:
        orders_env, pos_env = self._parts["orders"], self._parts["positions"]
        if not isinstance(orders_env.body, OrderList) or not isinstance(pos_env.body, Positions):
            self.start("unexpected_reply")
            return
        if self._lost_upto > (self._first_seq or 0):  # lost events it does not reflect
            self.start("event_gap")
            return
        orders = orders_env.body.orders
        view = ExposureView.rebuild(orders, pos_env.body.positions)
        pending = {o.client_order_id for o in orders if o.status is OrderStatus.PENDING_RISK}
        for check in self._carried.values():
            if check.client_order_id in pending:
                view.add_provisional(check)  # approved before, its verdict not applied yet
        view.carry_raised(self._raises.values())  # approved before, maybe not asked yet
        for check in self._approved.values():
            view.add_provisional(check)  # approved while the snapshot was on its way
        # the gate keeps its daily-loss baseline: the day's (actors.risk.trading_day)
        self.gate.exposure = view
        self._coverage = SnapshotCoverage(
            self._page_seqs, pos_env.body.event_seq or 0, self._first_seq or 0
        )
        buffered, self._buffer = self._buffer, []
        self._syncing, self._approved, self._carried, self._raises = 0, {}, {}, {}
        self.installed()
        for event in buffered:
            self._apply(event)
        first = not self.rebuilds  # (not ready also while an opening rebuild is on its way)
        self.ready = True
        self.rebuilds += 1
        self.actor.log.info(
            "exposure_rebuilt", open_orders=len(orders), positions=len(pos_env.body.positions),
            buffered_events=len(buffered), first=first, gaps_covered=self._gaps_meanwhile,
        )  # fmt: skip
        self.on_rebuilt(first, orders)
