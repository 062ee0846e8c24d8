"""The library a strategy or an operator uses to talk to a running TradePulse system.

    client = ExecutionClient.from_config("deploy/config/demo.toml")
    ack = client.submit("simA", "AAPL", "BUY", "10", "LIMIT", price="190.00")
    for event in client.events(timeout_s=5):
        ...

`submit` retries with the same client order id until the OMS acknowledges it (durable and
risk-approved), so a retry never creates a second order. Failures are distinct exceptions.
`submit_many([OrderSpec(...), ...])` submits several in one message and returns one outcome
per order: its view, or the exception `submit` would raise, as a value.

What the client reads from a newer core (a field this library does not know, in an ack, an
event, a snapshot, a page) is read as this library knows it, the field ignored and logged
once (`protocol.compat`): upgrade the core first, the strategies when convenient.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from decimal import Decimal
from typing import Any

import msgspec
import zmq

from protocol import compat
from protocol.client_batch import OrderSpec as OrderSpec  # re-exported: the API's argument
from protocol.client_batch import request_many
from protocol.client_submit import fast_submit
from protocol.codec import Sender, decode
from protocol.config import SystemConfig, load_config
from protocol.event_stream import LISTING_STARTS, EventStream, cursor_refused, take_snapshot
from protocol.exceptions import KillSwitchEngaged, ProtocolError, RiskRejected, TradePulseError
from protocol.messages import (
    CancelOrder,
    ErrorCode,
    GetOrder,
    GetPositions,
    ListOrders,
    Message,
    OrderAck,
    OrderEvent,
    OrderList,
    OrderStatus,
    OrderView,
    Positions,
    PositionView,
    ReplaceOrder,
    RequestRejected,
    Snapshot,
    StreamEvent,
    SubmitOrder,
)
from protocol.sockets import UNBOUNDED, connect_dealer, connect_subscriber, send_frames
from protocol.wire_out import dump


class ClientError(TradePulseError):
    """A request the OMS refused for a reason without a more specific exception."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class VenueDown(TradePulseError):
    """The venue is DOWN and its queue is full (or it is unknown)."""


class OutOfSession(TradePulseError):
    """The venue is outside its trading session (planned downtime): try when it opens."""


class OutsideTradingWindow(TradePulseError):
    """New orders are refused now by the `[trading]` windows or a blackout; the text says
    why and when trading reopens (`why`: "outside_window" or "blackout"). Cancels work."""

    def __init__(self, reason: str, why: str | None = None) -> None:
        super().__init__(reason)
        self.why = why or ""


class InvalidOrder(TradePulseError):
    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(f"invalid order ({field or 'order'}): {reason}")
        self.field = field
        self.reason = reason


class NotReady(TradePulseError):
    """The OMS is not taking orders yet (warm-start reconciliation) or intake is paused."""


class IntakePaused(NotReady):
    """An operator paused intake, globally or for the order's venue (or stopped the
    venue's connector): nothing is sent until `tradepulse intake resume` / `start`. A
    `NotReady`, so a client that waits for intake to open waits for this too."""


class JournalUnavailable(TradePulseError):
    """The OMS cannot reserve journal space (a full disk): new orders are refused until
    space returns; cancels still work."""


class Timeout(TradePulseError):
    """No acknowledgement within the deadline. The order may still exist: query it."""


class UnknownOrder(TradePulseError):
    pass


class IncompatibleCore(Timeout, ProtocolError):
    """The OMS answered with what this client library cannot read: a value of a newer core
    its schema lacks (a new `OrderStatus` or `ErrorCode`: docs/architecture.md
    "Compatibility"); the text names the field. Upgrade the client. Raised at the answer,
    since a resend gets the same one, not at the deadline; a `Timeout` as before, since
    what the request did is not known here (a submit's order may exist at the OMS)."""


def _incompatible(request: str, exc: ProtocolError) -> IncompatibleCore:
    return IncompatibleCore(
        f"the OMS's answer to {request} cannot be read by this client library ({exc}): "
        "a newer core's value? upgrade the client"
    )


def _raise_for(rej: RequestRejected) -> None:
    raise _error_for(rej)


def _snapshot_error(reply: Message) -> TradePulseError:
    """What `events` raises when the OMS does not answer a snapshot with one."""
    if isinstance(reply, RequestRejected):
        return _error_for(rej=reply)
    return ClientError("UNEXPECTED", f"a snapshot request answered {type(reply).__name__}")


def _error_for(rej: RequestRejected) -> TradePulseError:
    """The exception a refusal stands for (raised by the one-order calls; `submit_many`
    returns it as that order's outcome)."""
    code = rej.code
    if code is ErrorCode.RISK_REJECTED:
        return RiskRejected(rej.reason, rej.field or "risk")
    if code is ErrorCode.KILL_SWITCH:
        return KillSwitchEngaged(rej.reason)
    if code in (ErrorCode.VENUE_DOWN, ErrorCode.UNKNOWN_VENUE):
        return VenueDown(rej.reason)
    if code is ErrorCode.OUT_OF_SESSION:
        return OutOfSession(rej.reason)
    if code is ErrorCode.OUTSIDE_TRADING_WINDOW:
        return OutsideTradingWindow(rej.reason, rej.field)
    if code is ErrorCode.INVALID_ORDER:
        return InvalidOrder(rej.field, rej.reason)
    if code is ErrorCode.NOT_READY:
        return NotReady(rej.reason)
    if code is ErrorCode.INTAKE_PAUSED:
        return IntakePaused(rej.reason)
    if code is ErrorCode.TIMEOUT:
        return Timeout(rej.reason)
    if code is ErrorCode.JOURNAL_UNAVAILABLE:
        return JournalUnavailable(rej.reason)
    if code is ErrorCode.UNKNOWN_ORDER:
        return UnknownOrder(rej.reason)
    return ClientError(code.value, rej.reason)


class ExecutionClient:
    def __init__(
        self,
        cfg: SystemConfig,
        *,
        name: str | None = None,
        retry_interval_s: float = 1.0,
        timeout_s: float = 10.0,
    ) -> None:
        self.cfg = cfg
        self.name = name or f"client-{uuid.uuid4().hex[:8]}"
        self.retry_interval_s = retry_interval_s
        self.timeout_s = timeout_s
        self._sender = Sender(self.name, 0)
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        identity = f"{self.name}:{uuid.uuid4().hex[:6]}"
        self._sock = connect_dealer(self._ctx, cfg.client_endpoint, identity)
        self._sub: zmq.Socket[bytes] | None = None
        self._stream = EventStream(self._exchange, _snapshot_error)  # `events`' place

    @classmethod
    def from_config(
        cls,
        path: str,
        state_dir: str | None = None,
        runtime_dir: str | None = None,
        **kwargs: Any,
    ) -> ExecutionClient:
        return cls(load_config(path, state_dir=state_dir, runtime_dir=runtime_dir), **kwargs)

    def close(self) -> None:
        self._sock.close(0)
        if self._sub is not None:
            self._sub.close(0)
        self._ctx.term()

    def __enter__(self) -> ExecutionClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def _request(self, body: Message, timeout_s: float | None = None) -> Message:
        """Send, resend every `retry_interval_s` (same body: idempotent at the OMS), until a
        reply."""
        return self._exchange(body, timeout_s)[1]

    def _exchange(
        self, body: Message, timeout_s: float | None = None, wire: msgspec.Raw | None = None
    ) -> tuple[int, Message]:
        """`_request`, with the epoch of the OMS incarnation that answered (`wire`: the
        body already written, `protocol.client_submit`)."""
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else self.timeout_s)
        sent_ids: set[str] = set()
        while True:
            packed = dump(body) if wire is None else wire
            msg_id, frames = self._sender.encode_body(body.type, packed)  # no Envelope
            send_frames(self._sock, frames)  # int flags, no per-frame checks: a cheaper send
            sent_ids.add(msg_id)
            resend_at = min(deadline, time.monotonic() + self.retry_interval_s)
            while (now := time.monotonic()) < resend_at:
                if not self._sock.poll(max(1, int((resend_at - now) * 1000))):
                    continue
                frames = self._sock.recv_multipart()
                try:
                    reply = decode(frames, tolerant=True)
                except ProtocolError as exc:
                    if compat.answered(frames) in sent_ids:  # the OMS's answer: unreadable
                        raise _incompatible(body.type, exc) from exc
                    continue
                if reply.corr_id in sent_ids:
                    return reply.epoch, reply.body
            if time.monotonic() >= deadline:
                raise Timeout(f"no answer to {body.type} within the deadline")

    def submit(
        self,
        venue: str,
        symbol: str,
        side: str,
        qty: Decimal | str | int,
        order_type: str = "LIMIT",
        price: Decimal | str | None = None,
        tif: str = "DAY",
        client_order_id: str | None = None,
        timeout_s: float | None = None,
    ) -> OrderView:
        """Submit an order; returns the OMS's view once it is durable and risk-approved."""
        made = self._submit_wire(venue, symbol, side, qty, order_type, price, tif, client_order_id)
        if isinstance(made, InvalidOrder):
            raise made
        return self._order_reply(self._exchange(made[0], timeout_s, made[1])[1])

    def submit_many(
        self, orders: Sequence[OrderSpec], timeout_s: float | None = None
    ) -> list[OrderView | TradePulseError]:
        """Submit several orders at once (as `SubmitOrders`, up to 256 a message): one
        outcome per order, in order, each what `submit` of it alone would return (the
        OMS's view once durable and risk-approved) or raise (its exception, as a value: one
        order's refusal never hides the others'). Resent as `submit` resends (same client
        order ids: idempotent at the OMS) until each is answered or `timeout_s` (one
        deadline for the call) passes: `Timeout` for those still unanswered."""
        bodies = [self._submit_body(spec) for spec in orders]
        answers = request_many(
            self._sock,
            self._sender,
            [b if isinstance(b, SubmitOrder) else None for b in bodies],
            retry_interval_s=self.retry_interval_s,
            timeout_s=timeout_s if timeout_s is not None else self.timeout_s,
        )
        out: list[OrderView | TradePulseError] = []
        for body, answer in zip(bodies, answers, strict=True):
            if isinstance(body, InvalidOrder):
                out.append(body)
            elif answer is None:
                out.append(Timeout("no answer to submit_order within the deadline"))
            elif isinstance(answer, ProtocolError):
                out.append(_incompatible("submit_order", answer))
            else:
                try:
                    out.append(self._order_reply(answer))
                except TradePulseError as exc:
                    out.append(exc)
        return out

    def _submit_body(self, spec: OrderSpec) -> SubmitOrder | InvalidOrder:
        """The body of one order of `submit_many`, validated, or why not."""
        made = self._submit_wire(
            spec.venue, spec.symbol, spec.side, spec.qty, spec.order_type, spec.price,
            spec.tif, spec.client_order_id,
        )  # fmt: skip
        return made if isinstance(made, InvalidOrder) else made[0]

    def _submit_wire(
        self,
        venue: str,
        symbol: str,
        side: str,
        qty: Decimal | str | int,
        order_type: str,
        price: Decimal | str | None,
        tif: str,
        client_order_id: str | None,
    ) -> tuple[SubmitOrder, msgspec.Raw | None] | InvalidOrder:
        """The body of a submit, validated, with its wire form when the fast path wrote it as it
        validated it (`protocol.client_submit`); else pydantic's validation (the codec
        writes it). `submit` passes its arguments as they are: an `OrderSpec` built for one
        order cost ~1 us warm, ~6 us on the cold caches of a latency-bound client."""
        try:
            coid = client_order_id or f"{self.name}-{uuid.uuid4().hex[:12]}"
            qty_d = Decimal(str(qty))
            price_d = None if price is None else Decimal(str(price))
            fast = fast_submit(coid, venue, symbol, side, qty_d, order_type, price_d, tif)
            if fast is not None:
                return fast
            body = SubmitOrder(
                client_order_id=coid,
                venue=venue,
                symbol=symbol,
                side=side,  # type: ignore[arg-type]
                qty=qty_d,
                order_type=order_type,  # type: ignore[arg-type]
                price=price_d,
                tif=tif,  # type: ignore[arg-type]
            )
        except (ValueError, ArithmeticError) as exc:
            return InvalidOrder(None, str(exc))
        return body, None

    def cancel(self, client_order_id: str, timeout_s: float | None = None) -> OrderView:
        return self._order_reply(
            self._request(CancelOrder(client_order_id=client_order_id), timeout_s)
        )

    def replace(
        self,
        client_order_id: str,
        qty: Decimal | str | None = None,
        price: Decimal | str | None = None,
        timeout_s: float | None = None,
    ) -> OrderView:
        body = ReplaceOrder(
            client_order_id=client_order_id,
            qty=None if qty is None else Decimal(str(qty)),
            price=None if price is None else Decimal(str(price)),
        )
        return self._order_reply(self._request(body, timeout_s))

    def get_order(self, client_order_id: str) -> OrderView:
        return self._order_reply(self._request(GetOrder(client_order_id=client_order_id)))

    def list_orders(self, venue: str | None = None, open_only: bool = False) -> list[OrderView]:
        """Every order (or every open one), fetched page by page; an order that a later
        page has again (archived by the OMS after its page went out) is listed once, as
        the later page has it."""
        for _ in range(LISTING_STARTS):
            orders: dict[str, OrderView] = {}
            offset: int | None = 0
            while offset is not None:
                reply = self._request(ListOrders(venue=venue, open_only=open_only, offset=offset))
                if cursor_refused(reply, offset):
                    break  # the OMS restarted between two pages: list again
                if isinstance(reply, RequestRejected):
                    _raise_for(reply)
                assert isinstance(reply, OrderList)
                orders.update((o.client_order_id, o) for o in reply.orders)
                offset = reply.next_offset
            else:
                return list(orders.values())
        raise NotReady(f"the order list was cut by an OMS restart {LISTING_STARTS} times")

    def positions(self, venue: str | None = None) -> list[PositionView]:
        reply = self._request(GetPositions(venue=venue))
        if isinstance(reply, RequestRejected):
            _raise_for(reply)
        assert isinstance(reply, Positions)
        return reply.positions

    def _order_reply(self, reply: Message) -> OrderView:
        if isinstance(reply, RequestRejected):
            _raise_for(reply)
        if not isinstance(reply, OrderAck):
            raise ClientError("BAD_REPLY", f"unexpected reply {reply.type}")
        return reply.order

    def wait_until_ready(self, timeout_s: float = 30.0) -> None:
        """Wait until the OMS answers requests (intake may still be closed: see NotReady)."""
        self._request(ListOrders(open_only=True), timeout_s)

    # ------------------------------------------------------------------ events

    def subscribe(self) -> None:
        """Start receiving events now (call before acting if you must not miss any)."""
        if self._sub is None:
            # unbounded: events wait here while the caller is busy; none is dropped
            self._sub = connect_subscriber(self._ctx, self.cfg.events_endpoint, hwm=UNBOUNDED)

    def events(
        self, timeout_s: float | None = None, *, statuses: Collection[OrderStatus] | None = None
    ) -> Iterator[OrderEvent | StreamEvent | Snapshot]:
        """Order and stream events in sequence; a gap in `event_seq` yields a fresh Snapshot.
        `timeout_s`: the call ends once it has passed, between two events, also while
        events keep coming (what came and was not yielded is the next call's; 0: one event
        at most); None: never. `statuses`: only the order events of orders in these statuses (stream
        events and snapshots always); the others are sequenced without being decoded (cheap). A
        snapshot not answered in time raises `Timeout` (the next call asks again); one the
        OMS refuses raises its refusal's exception (e.g. `NotReady`) once, and so does one
        this library cannot read (`IncompatibleCore`: a newer core's order status), and the
        next call goes on past the gap without it."""
        self.subscribe()
        assert self._sub is not None
        wanted = None if statuses is None else frozenset(OrderStatus(s).value for s in statuses)
        yield from self._stream.events(self._sub, timeout_s, wanted)

    def _snapshot(self) -> Message:
        """The open orders now, as `events` asks for them after a gap (`take_snapshot`)."""
        return take_snapshot(self._exchange)[1]

    def wait_for_status(
        self, client_order_id: str, statuses: set[OrderStatus], timeout_s: float = 10.0
    ) -> OrderView:
        """Poll the OMS until the order reaches one of `statuses`."""
        deadline = time.monotonic() + timeout_s
        while True:
            view = self.get_order(client_order_id)
            if view.status in statuses:
                return view
            if time.monotonic() >= deadline:
                raise Timeout(f"{client_order_id} still {view.status} after {timeout_s} s")
            time.sleep(0.005)
