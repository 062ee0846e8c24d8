"""The OMS's link to one venue: connection state, submission queue, in-flight requests and
the reconciliation pass run at warm start and after every connector restart or reconnect.

The OMS owns the queue: a venue that is not CONNECTED-and-reconciled holds its orders
(bounded by `oms.venue_queue_bound`), and they are sent once the reconciliation pass after
the next CONNECTED has told us which ones the venue already has.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from actors.oms.orders import cancel_msg, place_order_msg, replace_msg
from actors.oms.reconcile import Plan, plan_reconciliation, status_query_ids
from actors.runtime import metrics
from protocol.codec import Envelope
from protocol.messages import (
    Ack,
    ErrorCode,
    GetPositions,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatus,
    OrderStatusAnswer,
    OrderStatusQuery,
    Positions,
    RequestRejected,
    VenueConnState,
    VenueOrder,
)

if TYPE_CHECKING:
    from actors.oms.actor import OmsActor

_STATUS_CHUNK = 2000
_RETRY_S = 1.0


class VenueLink:
    def __init__(self, oms: OmsActor, venue: str) -> None:
        self.oms = oms
        self.venue = venue
        self.peer = oms.peer(f"connector.{venue}")
        self.state = VenueConnState.DISCONNECTED
        self.connector_epoch: int | None = None
        self.reconciled = False  # since the last CONNECTED
        self.ever_reconciled = False  # since this OMS started
        self.reconciling = False
        self.rerun = False
        self.last_pass_at = 0.0  # monotonic time of the last applied pass
        self.queue: OrderedDict[str, None] = OrderedDict()  # client_order_ids to send
        self.in_flight: dict[str, str] = {}  # client_order_id -> request ClOrdID
        self.acked: dict[
            str, str
        ] = {}  # client_order_id -> last request ClOrdID the connector sent
        self.depth_gauge = metrics.QUEUE_DEPTH.labels(venue=venue)
        self.log = oms.log.bind(venue=venue)

    @property
    def ready(self) -> bool:
        return self.state is VenueConnState.CONNECTED and self.reconciled

    @property
    def depth(self) -> int:
        return len(self.queue) + len(self.in_flight)

    # ------------------------------------------------------------------ state

    def on_state(self, state: VenueConnState, epoch: int, detail: str) -> None:
        changed = state is not self.state or epoch != self.connector_epoch
        if not changed:
            return
        self.log.info("venue_state", state=state.value, connector_epoch=epoch, detail=detail)
        restarted = self.connector_epoch is not None and epoch != self.connector_epoch
        self.state, self.connector_epoch = state, epoch
        if restarted:
            # requests the dead incarnation never answered: their outcome is for venue
            # evidence (reconciliation) to decide, now rather than at their deadline
            self.reconciling = False
            self.peer.fail_pending()
        self.oms.publish_stream(
            "venue_state", {"venue": self.venue, "state": state.value, "detail": detail}
        )
        if state is VenueConnState.CONNECTED:
            self.reconciled = False
            self.start_reconcile()
        else:
            self.reconciled = False

    # ------------------------------------------------------------------ dispatch

    def enqueue(self, client_order_id: str) -> None:
        self.queue[client_order_id] = None
        self.queue.move_to_end(client_order_id)

    def dispatch(self) -> None:
        """Send queued requests while the venue is ready."""
        book = self.oms.book
        while self.ready and self.queue:
            coid, _ = self.queue.popitem(last=False)
            order = book.get(coid)
            if order is None or coid in self.in_flight or self.oms.drop_unsent(coid):
                continue
            if order.status is OrderStatus.PENDING_SUBMIT:
                msg: Any = place_order_msg(order)
            elif order.status is OrderStatus.PENDING_CANCEL:
                msg = cancel_msg(order)
            elif order.status is OrderStatus.PENDING_REPLACE:
                msg = replace_msg(order)
            else:
                continue  # resolved meanwhile (e.g. by reconciliation)
            self.in_flight[coid] = msg.cl_ord_id
            self.oms.crash_point("before_send")
            self.peer.request(
                msg,
                lambda reply, coid=coid, kind=msg.type: self._on_sent(coid, kind, reply),
                self.oms.cfg.oms.request_timeout_s,
            )
        self.depth_gauge.set(self.depth)

    def _on_sent(self, coid: str, kind: str, reply: Envelope | None) -> None:
        request_id = self.in_flight.pop(coid, "")
        self.oms.crash_point("after_send_before_ack")
        if reply is not None and isinstance(reply.body, Ack):
            self.acked[coid] = request_id
            return
        if (
            reply is not None
            and isinstance(reply.body, RequestRejected)
            and reply.body.code is ErrorCode.VENUE_DOWN
        ):
            # nothing was sent: keep it queued for the next CONNECTED + reconciliation
            self.enqueue(coid)
            if self.state is VenueConnState.CONNECTED:
                self.state = VenueConnState.DISCONNECTED
                self.reconciled = False
            self.depth_gauge.set(self.depth)
            return
        # no answer: the connector may or may not have sent it; venue evidence decides
        reason = "no connector answer" if reply is None else f"connector refused: {reply.body}"
        self.log.warning(
            "venue_request_unconfirmed", client_order_id=coid, request=kind, reason=reason
        )
        if kind == "place_order":
            order = self.oms.book.get(coid)
            if order is not None and order.status is OrderStatus.PENDING_SUBMIT:
                self.oms.record(self.oms.book.mark_unknown(coid, reason, time.time_ns()))
        else:
            self.enqueue(coid)
        self.reconciled = False
        self.start_reconcile()

    # ------------------------------------------------------------------ reconciliation

    def start_reconcile(
        self, on_plan: Callable[[Plan], None] | None = None, *, dry_run: bool = False
    ) -> None:
        """Gather the venue's view, plan, and (unless `dry_run`) apply the plan."""
        if self.reconciling and not dry_run:
            self.rerun = True
            return
        if not dry_run:
            self.reconciling = True
        timeout = self.oms.cfg.oms.request_timeout_s
        view: dict[str, Any] = {}

        def failed(why: str) -> None:
            self.log.warning("reconcile_failed", reason=why, state=self.state.value)
            if on_plan is not None:
                on_plan(Plan(venue=self.venue, actions=()))
            if dry_run:
                return
            self.reconciling = False
            rerun, self.rerun = self.rerun, False
            if self.state is VenueConnState.CONNECTED:
                if rerun:  # CONNECTED came while this pass was failing: go again now
                    self.start_reconcile()
                else:
                    self.oms.call_later(_RETRY_S, self._retry_reconcile)

        def got_open(reply: Envelope | None) -> None:
            if reply is None or not isinstance(reply.body, OpenOrders):
                return failed(_why(reply))
            if self.state is not VenueConnState.CONNECTED and not dry_run:
                # it answered, so it is logged on: no need to wait for its state message
                self.state, self.connector_epoch = VenueConnState.CONNECTED, reply.epoch
            view["open"] = reply.body.orders
            ids = status_query_ids(self.oms.book.orders(self.venue), reply.body.orders)
            view["status"], view["unknown"], view["todo"] = (
                {},
                set(),
                [ids[i : i + _STATUS_CHUNK] for i in range(0, len(ids), _STATUS_CHUNK)],
            )
            next_status()

        def next_status() -> None:
            if not view["todo"]:
                self.peer.request(GetPositions(venue=self.venue), got_positions, timeout)
                return
            chunk = view["todo"].pop(0)
            self.peer.request(OrderStatusQuery(cl_ord_ids=chunk), got_status, timeout)

        def got_status(reply: Envelope | None) -> None:
            if reply is None or not isinstance(reply.body, OrderStatusAnswer):
                return failed(_why(reply))
            view["status"].update({o.cl_ord_id: o for o in reply.body.orders})
            view["unknown"].update(reply.body.unknown)
            next_status()

        def got_positions(reply: Envelope | None) -> None:
            if reply is None or not isinstance(reply.body, Positions):
                return failed(_why(reply))
            self._finish(view, reply.body, on_plan, dry_run)

        self.peer.request(OpenOrdersRequest(), got_open, timeout)

    def _finish(
        self,
        view: dict[str, Any],
        venue_positions: Positions,
        on_plan: Callable[[Plan], None] | None,
        dry_run: bool,
    ) -> None:
        book = self.oms.book
        open_orders: list[VenueOrder] = view["open"]
        plan = plan_reconciliation(
            self.venue,
            book.orders(self.venue),
            open_orders,
            view["status"],
            view["unknown"],
            local_positions={p.symbol: p.qty for p in book.positions(self.venue)},
            venue_positions={p.symbol: p.qty for p in venue_positions.positions},
            unmatched_fills=book.unmatched_fills(self.venue),
            now_ns=time.time_ns(),
        )
        if on_plan is not None:
            on_plan(plan)
        if dry_run:
            return
        self.oms.apply_reconcile_plan(self, plan, venue_positions)
        self.reconciling = False
        if self.rerun:
            self.rerun = False
            self.start_reconcile()
            return
        self.last_pass_at = time.monotonic()
        if self.state is VenueConnState.CONNECTED:
            self.reconciled = True
            first = not self.ever_reconciled
            self.ever_reconciled = True
            self._requeue_after()
            self.oms.on_venue_reconciled(self, plan, first)
            self.dispatch()

    def _requeue_after(self) -> None:
        """What a finished pass sends besides the plan's Resubmits (queued when the plan is
        applied): cancels/replaces not yet confirmed sent by this incarnation's connector.
        Never a request the connector already acknowledged sending."""
        for order in self.oms.book.orders(self.venue, open_only=True):
            coid = order.client_order_id
            if order.status in (OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE):
                if self.acked.get(coid) != order.pending_cl_ord_id:
                    self.enqueue(coid)
        for coid in [c for c in self.acked if (o := self.oms.book.get(c)) is None or o.is_terminal]:
            del self.acked[coid]

    def _retry_reconcile(self) -> None:
        if self.state is VenueConnState.CONNECTED and not self.reconciled and not self.reconciling:
            self.start_reconcile()


def _why(reply: Envelope | None) -> str:
    if reply is None:
        return "no answer from the connector"
    if isinstance(reply.body, RequestRejected):
        return f"{reply.body.code.value}: {reply.body.reason}"
    return f"unexpected reply {reply.type}"
