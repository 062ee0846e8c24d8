"""Request/reply between actors: a `Peer` is a DEALER to another actor's ROUTER whose
requests are matched to replies by correlation id, with a deadline; a `Replier` answers
one request received on our own ROUTER.

Both depend on the small slice of the actor they need (`PeerHost`, `ReplyHost`), which
`actors.runtime.actor.Actor` provides.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, Protocol

import zmq

from actors.runtime.turn_budget import TurnBudget
from actors.runtime.zap import ZapGate
from protocol.codec import Envelope, Sender, item_envelope
from protocol.messages import (
    MAX_ACK_BATCH,
    Ack,
    Acks,
    ErrorCode,
    Message,
    RequestRejected,
    Requests,
)
from protocol.sockets import POLLIN, Context, connect_dealer, send_nowait
from protocol.wire_out import construct, dump

REPLY_GRACE_S = 1.0  # how long a sweep waits for replies already queued in the socket
MAX_BATCH = 1000  # messages read per readable event before the loop gets a turn
REVIVE_EVERY_S = 1.0  # a peer with no room to send connects again at most this often
REQUESTS: Final = Requests.model_fields["type"].default


class PeerHost(Protocol):
    """What a `Peer` needs of its actor."""

    ctx: Context
    actor_id: str
    epoch: int
    sender: Sender
    zap: ZapGate  # judges who bound what we connect to (`from_binders`)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None: ...

    def decode_or_count(self, frames: list[bytes], source: str) -> Envelope | None: ...

    def on_peer_message(self, peer: Peer, env: Envelope) -> None: ...

    def send_dropped(self, kind: str, reason: str, peer: str, type_: str) -> None: ...

    def count_failed(self, type_: str) -> None: ...


class ReplyHost(Protocol):
    """What a `Replier` needs of its actor."""

    def send_router(self, identity: list[bytes], body: Message, corr_id: str = "") -> bool: ...


@dataclass
class _Pending:
    callback: Callable[[Envelope | None], None]
    deadline: float
    timeout_s: float


class Peer:
    """A DEALER to another actor's ROUTER: requests with replies matched by correlation id."""

    before_send: Callable[[], None] | None = None  # its owner's: run before each send

    def __init__(self, actor: PeerHost, target: str, endpoint: str) -> None:
        self.target = target
        self._actor = actor
        identity = f"{actor.actor_id}:{actor.epoch}"
        self.endpoint = endpoint
        self.sock = connect_dealer(actor.ctx, endpoint, identity)
        self._pending: dict[str, _Pending] = {}
        self._budget = TurnBudget()
        # the pending requests' deadlines without a timer each (issue 16: a timer, its
        # closure and its heap entry per request, ~350 B, 20,000 of them in the OMS at
        # 1,500 orders/s and 10 s timeouts; the peak stayed in CPython's arenas): pending
        # ids by timeout, each in deadline order, and one sweep timer armed for the
        # earliest deadline (`_sweep_due`; a timer armed for another time is stale)
        self._by_timeout: dict[float, OrderedDict[str, None]] = {}
        self._sweep_due: float | None = None
        self.last_epoch: int | None = None
        self._revived_at_s = float("-inf")
        self.revived = 0  # times connected again (`_revive`)

    def _revive(self) -> None:
        """Connect again (at most every `REVIVE_EVERY_S`), after a send found no room: with
        a queue of `HWM` (100,000) that means no connection at all, not a slow peer. libzmq
        can end a connecting socket's session for good (seen after our ZAP handler refused
        an OMS killed between its bind and the check: every later send to every later OMS
        was refused, and its reconcile passes never got a consistent cut) and never
        reconnect. Messages queued meanwhile are dropped: requests time out and are sent
        again."""
        now_s = time.monotonic()
        if now_s - self._revived_at_s < REVIVE_EVERY_S:
            return
        self._revived_at_s = now_s
        self.revived += 1
        try:
            self.sock.disconnect(self.endpoint)
        except zmq.ZMQError:
            pass  # the session is gone with its endpoint: nothing to disconnect
        try:
            self.sock.connect(self.endpoint)
        except zmq.ZMQError:
            pass  # tried again at the next send without room, a second on

    def send(self, body: Message, corr_id: str = "") -> str | None:
        """Send without blocking: the message id, or None when the peer's queue is full (it
        is down or not reading; counted and logged by the host)."""
        return self._send_body(body.type, dump(body), corr_id)

    def _send_body(self, type_: str, body: dict[str, Any], corr_id: str = "") -> str | None:
        """`send` of a message already in its wire form (`body`: what `dump` gives)."""
        if self.before_send is not None:
            self.before_send()
        msg_id, frames = self._actor.sender.encode_body(type_, body, corr_id)
        reason = send_nowait(self.sock, frames)
        if reason is not None:
            self._actor.send_dropped("request", reason, self.target, type_)
            if reason == "hwm":
                self._revive()
            return None
        return msg_id

    def request(
        self,
        body: Message,
        callback: Callable[[Envelope | None], None],
        timeout_s: float,
    ) -> str:
        """Send `body`; `callback(reply)` on the reply, or `callback(None)` after timeout.
        A request that cannot be queued (the peer's queue is full) never blocks: it is
        counted at once, and its callback gets None at the same deadline as an unanswered
        one, never inside this call (callers that ask again on None would otherwise spin:
        found by review, thousands of re-asks a second)."""
        msg_id = self.send(body)
        if msg_id is None:
            self._actor.call_later(timeout_s, lambda: callback(None))
            return ""
        self._track(msg_id, callback, timeout_s)
        return msg_id

    def request_many(
        self,
        items: Sequence[tuple[Message, Callable[[Envelope | None], None]]],
        timeout_s: float,
    ) -> None:
        """`request` of each item, sent as one `Requests` (at most `MAX_ACK_BATCH` a
        message; one alone as itself): each keeps its own id, callback and deadline."""
        for start in range(0, len(items), MAX_ACK_BATCH):
            chunk = items[start : start + MAX_ACK_BATCH]
            if len(chunk) == 1:
                self.request(chunk[0][0], chunk[0][1], timeout_s)
                continue
            ids = [self._actor.sender.next_id() for _ in chunk]
            pairs = zip(ids, chunk, strict=True)
            bodies = [{"id": i, "type": b.type, "body": dump(b)} for i, (b, _) in pairs]
            # `Requests(requests=bodies)` as written: each body is fresh and already the wire
            sent = self._send_body(REQUESTS, {"requests": bodies}) is not None
            for msg_id, (_, callback) in zip(ids, chunk, strict=True):
                if sent:
                    self._track(msg_id, callback, timeout_s)
                else:  # as an unsent `request`: None at its deadline, never now
                    self._actor.call_later(timeout_s, partial(callback, None))

    def _track(
        self, msg_id: str, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> None:
        """Hold `callback` for the reply to `msg_id`, or None at its deadline."""
        deadline = time.monotonic() + timeout_s
        self._pending[msg_id] = _Pending(callback, deadline, timeout_s)
        self._by_timeout.setdefault(timeout_s, OrderedDict())[msg_id] = None
        if self._sweep_due is None or deadline < self._sweep_due:
            self._arm(deadline, timeout_s)

    def _arm(self, due: float, delay_s: float) -> None:
        self._sweep_due = due
        self._actor.call_later(delay_s, lambda: self._sweep(due))

    def _sweep(self, due: float) -> None:
        """Every pending request whose deadline has passed gets None, in deadline order
        (across timeouts: as a timer each would have), then the timer is armed again for the
        earliest deadline left."""
        if due != self._sweep_due:
            return  # stale: an earlier deadline armed another timer since
        now = time.monotonic()
        if now < due + REPLY_GRACE_S and _readable(self.sock):
            # replies the turn budget left in our socket: read them (next turn's handler)
            # before judging any request unanswered
            self._actor.call_later(0.0, lambda: self._sweep(due))
            return
        self._sweep_due = None
        expired: list[_Pending] = []
        for timeout_s, ids in list(self._by_timeout.items()):
            while ids:
                msg_id = next(iter(ids))
                pending = self._pending.get(msg_id)
                if pending is not None and pending.deadline > now:
                    break
                del ids[msg_id]
                if pending is not None:  # (not: answered, or failed by `fail_pending`)
                    del self._pending[msg_id]
                    expired.append(pending)
            if not ids and self._by_timeout.get(timeout_s) is ids:
                del self._by_timeout[timeout_s]
        expired.sort(key=lambda p: p.deadline)  # stable: in request order within a timeout
        for pending in expired:
            pending.callback(None)
        firsts = [self._pending[next(iter(ids))].deadline for ids in self._by_timeout.values()]
        first = min(firsts, default=None)
        # (a callback's new request may have armed a timer meanwhile, for a later deadline)
        if first is not None and (self._sweep_due is None or first < self._sweep_due):
            self._arm(first, max(0.0, first - time.monotonic()))

    def _forget(self, msg_id: str) -> _Pending | None:
        pending = self._pending.pop(msg_id, None)
        if pending is not None:
            ids = self._by_timeout.get(pending.timeout_s)
            if ids is not None:
                ids.pop(msg_id, None)
                if not ids:  # no group left behind per distinct timeout
                    del self._by_timeout[pending.timeout_s]
        return pending

    def fail_pending(self) -> None:
        """The peer restarted (new epoch): what it had not answered never will be. Every
        pending request's callback gets None now instead of at its deadline."""
        pending, self._pending = self._pending, {}
        self._by_timeout = {}
        for p in pending.values():
            p.callback(None)

    def on_readable(self) -> None:
        budget = self._budget  # a bounded slice a turn (runtime.turn_budget); the rest waits
        # only messages whose connection's binder is one of ours (runtime.zap)
        for frames in self._actor.zap.from_binders(budget.read(self.sock, frames=True)):
            env = self._actor.decode_or_count(frames, f"peer:{self.target}")
            if env is None:
                continue
            budget.spend(env)  # a batch (risk's verdicts, a connector's acks): its items
            self.last_epoch = env.epoch
            if isinstance(env.body, Acks) and not env.corr_id:
                self._on_acks(env, env.body)
                continue
            pending = self._forget(env.corr_id)
            if pending is not None:
                pending.callback(env)
            else:
                self._actor.on_peer_message(self, env)

    def _on_acks(self, env: Envelope, acks: Acks) -> None:
        """Each ref as the lone `Ack` it stands for, in order, to its own request (or, late,
        to the host); one whose callback raises fails alone (logged `request_failed`)."""
        for ref in acks.refs:
            one = item_envelope(env, "ack", env.msg_id, ref, construct(Ack, ref=ref))
            pending = self._forget(ref)
            try:
                if pending is not None:
                    pending.callback(one)
                else:
                    self._actor.on_peer_message(self, one)
            except Exception:  # noqa: BLE001 - one request's answer must not fail the rest
                self._actor.count_failed("ack")

    @property
    def in_flight(self) -> int:
        return len(self._pending)


class Replier:
    """Answers one request received on the actor's ROUTER."""

    __slots__ = ("_actor", "_identity", "_msg_id")

    def __init__(self, actor: ReplyHost, identity: list[bytes], msg_id: str) -> None:
        self._actor = actor
        self._identity = identity
        self._msg_id = msg_id

    @property
    def identity(self) -> bytes:
        return self._identity[0]

    def __call__(self, body: Message) -> None:
        self._actor.send_router(self._identity, body, corr_id=self._msg_id)

    def reject(self, code: ErrorCode, reason: str, field: str | None = None) -> None:
        self(RequestRejected(code=code, reason=reason, field=field))

    def internal(self, why: str) -> None:
        """Refused INTERNAL: the request broke something in us (`Actor.answer_later`)."""
        self.reject(ErrorCode.INTERNAL, why)


def _readable(sock: zmq.Socket[bytes]) -> bool:
    try:
        return bool(int(sock.get(zmq.EVENTS)) & POLLIN)
    except zmq.ZMQError:
        return False
