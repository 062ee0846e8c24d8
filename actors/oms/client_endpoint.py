"""The OMS's client-facing ROUTER (`client.sock`), apart from its internal one (`oms.sock`).

Clients (`protocol.client.ExecutionClient`) are not processes of the system, so this socket
has no connection gate; instead it takes only what a client sends (`CLIENT_TYPES`: orders,
cancels, replaces, queries, the snapshot). Anything else here - an execution, a venue
state, a stream event, a kill-switch request - is refused with NOT_ALLOWED, counted
(`tradepulse_messages_refused_total{actor="oms",type}`) and logged rate-limited
(`message_refused`); a malformed frame is counted and dropped as on any socket. What is
taken is served by the OMS's `on_request`, as on the internal socket. It is bound without
`ROUTER_HANDOVER`: a connection with a routing id already connected gets nothing (libzmq
ignores it), so no one takes another client's replies by reusing its routing id.

A `SubmitOrders` (several submits in one message, `protocol.batch_messages`) is served item
by item, each exactly as the lone `SubmitOrder` it stands for: decoded and validated alone
(`protocol.codec.decode_item`; a malformed item is counted and logged `bad_message` and gets
no answer, as a malformed lone message gets none), served under its own message id. A batch
over `MAX_SUBMIT_BATCH_BYTES`, or with a value the codec refuses in any message, is
malformed as a whole. A turn reads at most `TURN_ITEMS` submits (`actors.runtime.turn_budget`:
lone or batch items, the batch that crosses it read whole): the rest waits in the socket,
so a flood never stops the loop's beat. A read of many orders is charged by its size
(`_read_cost`: a `snapshot_request` 128 items, a `list_orders` page its limit over 40).
The answers to a batch's items are held while a window is open (`hold` / `release`: the OMS
opens one around its turn's after-commit replies, so never before the journal commit behind
them, and this endpoint one around a batch's items) and go out at its end, per client: one
alone as itself, several as `Replies` of up to `REPLIES_CHUNK` and `REPLIES_BYTES`. A lone
request's answer is never held: old clients see nothing new.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Protocol

import msgspec

from actors.runtime.peer import Replier
from actors.runtime.turn_budget import TurnBudget
from protocol import fastpath
from protocol.batch_messages import MAX_SUBMIT_BATCH, MAX_SUBMIT_BATCH_BYTES
from protocol.codec import PROTOCOL_VERSION, Envelope, Sender, decode_item
from protocol.exceptions import ProtocolError
from protocol.messages import ListOrders, Message, SnapshotRequest, SubmitOrder, SubmitOrders
from protocol.sockets import Context, bind_router, send_nowait
from protocol.wire_out import dump

CLIENT_TYPES = frozenset(
    {
        "submit_order",
        "submit_orders",
        "cancel_order",
        "replace_order",
        "get_order",
        "list_orders",
        "get_positions",
        "snapshot_request",
    }
)
SNAPSHOT_COST = 128  # items a snapshot (up to 5,000 open orders) is charged: two a turn
PAGE_ORDERS_PER_ITEM = 40  # a list_orders page (up to 10,000 orders) by its limit: one a turn
REPLIES_CHUNK = 128  # answers in one `Replies`: inside the fast path's element bound
REPLIES_BYTES = 1 << 20  # and its frame: long venue texts make it halves (4 MiB limit)


class ClientHost(Protocol):
    """What the client endpoint needs of the OMS."""

    ctx: Context
    sender: Sender

    def decode_or_count(self, frames: list[bytes], source: str) -> Envelope | None: ...

    def count_bad(self, source: str, error: str) -> None: ...

    def serve(self, env: Envelope, reply: Replier) -> None: ...

    def refuse(self, env: Envelope, reply: Replier, reason: str) -> None: ...

    def send_dropped(self, kind: str, reason: str, peer: str, type_: str) -> None: ...


class ClientEndpoint:
    def __init__(self, host: ClientHost, endpoint: str) -> None:
        self._host = host
        # no handover: a stranger reusing a client's routing id must not take its replies
        self.sock = bind_router(host.ctx, endpoint, handover=False)
        self._holding = 0  # open windows (`hold`); the last `release` sends what is held
        self._held: dict[bytes, list[tuple[Message, str]]] = {}  # client -> (reply, corr)
        self._batched = _HeldReplies(self)  # the reply host of a batch's items
        self._budget = TurnBudget()  # submits read a turn (actors.runtime.turn_budget)

    def send_router(self, identity: list[bytes], body: Message, corr_id: str = "") -> bool:
        """A reply to a client, without blocking (`ReplyHost`)."""
        reason = send_nowait(self.sock, identity + self._host.sender.encode(body, corr_id))
        return self._sent(identity[0], reason, body.type)

    def _sent(self, identity: bytes, reason: str | None, type_: str) -> bool:
        if reason is not None:
            self._host.send_dropped("reply", reason, identity.decode(errors="replace"), type_)
        return reason is None

    def hold(self) -> None:
        """Open a window: the answers to batch items are held until its `release`."""
        self._holding += 1

    def release(self) -> None:
        """Close a window; the last one sends what is held, per client, in order."""
        self._holding -= 1
        if self._holding or not self._held:
            return
        held, self._held = self._held, {}
        for identity, replies in held.items():
            for start in range(0, len(replies), REPLIES_CHUNK):
                self._send_replies(identity, replies[start : start + REPLIES_CHUNK])

    def _send_replies(self, identity: bytes, chunk: list[tuple[Message, str]]) -> None:
        """One answer alone as itself, several as one `Replies` under `REPLIES_BYTES` (else
        in halves: answers carry venue texts of any length, and a frame over the limit is
        refused whole by the client, at every resend)."""
        if len(chunk) == 1:
            self.send_router([identity], chunk[0][0], chunk[0][1])
            return
        items = [{"corr": corr, "type": b.type, "body": dump(b)} for b, corr in chunk]
        _, frames = self._host.sender.encode_body("replies", {"replies": items})
        if len(frames[0]) > REPLIES_BYTES:
            half = len(chunk) // 2
            self._send_replies(identity, chunk[:half])
            self._send_replies(identity, chunk[half:])
            return
        self._sent(identity, send_nowait(self.sock, [identity, *frames]), "replies")

    def send_held(self, identity: list[bytes], body: Message, corr_id: str) -> bool:
        """A batch item's answer: held while a window is open, else sent now."""
        if not self._holding:
            return self.send_router(identity, body, corr_id)
        self._held.setdefault(identity[0], []).append((body, corr_id))
        return True

    def on_readable(self) -> None:
        budget = self._budget  # a bounded slice a turn, a batch as its items: a flooding
        for frames in budget.read(self.sock):  # client waits its turn, the loop beats on
            if len(frames) == 2 and (fast := _fast_batch(frames[1])) is not None:
                budget.left -= len(fast) - 1
                self._serve_items(frames[0], fast)
            elif (env := self._host.decode_or_count(frames[1:], "client")) is None:
                pass
            elif isinstance(env.body, SubmitOrders):
                budget.spend(env)
                self._serve_batch(frames[0], env, env.body, len(frames[-1]))
            else:
                self._serve_one(frames, env)
                budget.left -= _read_cost(env) - 1  # a read of many orders: by its size

    def _serve_one(self, frames: list[bytes], env: Envelope) -> None:
        reply = Replier(self, frames[:1], env.msg_id)
        if env.type in CLIENT_TYPES:
            self._host.serve(env, reply)
        else:
            self._host.refuse(env, reply, f"{env.type} is not a client request")

    def _serve_batch(self, identity: bytes, env: Envelope, batch: SubmitOrders, size: int) -> None:
        if size > MAX_SUBMIT_BATCH_BYTES:
            why = f"submit_orders of {size} bytes is over {MAX_SUBMIT_BATCH_BYTES}"
            self._host.count_bad("client", why)
            return
        items: list[Envelope] = []
        for item in batch.orders:
            one = _item(env, item)
            if isinstance(one, ProtocolError):
                self._host.count_bad("client", str(one))
            else:
                items.append(one)
        self._serve_items(identity, items)

    def _serve_items(self, identity: bytes, items: list[Envelope]) -> None:
        """Each as the lone submit it stands for; their immediate answers (refused at
        intake) go together too."""
        ident = [identity]
        self.hold()
        try:
            for one in items:
                self._host.serve(one, Replier(self._batched, ident, one.msg_id))
        finally:
            self.release()


def _read_cost(env: Envelope) -> int:
    """The items a client request is charged in the turn budget: a read of many orders
    costs what it will take (found by review: 16 snapshot requests in one turn at 4,000
    open orders got the OMS hang-killed), everything else one."""
    if isinstance(env.body, SnapshotRequest):
        return SNAPSHOT_COST
    if isinstance(env.body, ListOrders):
        return max(1, env.body.limit // PAGE_ORDERS_PER_ITEM)
    return 1


class _HeldReplies:
    """The `ReplyHost` of a batch item's `Replier`: its answer may wait for the window."""

    __slots__ = ("_endpoint",)

    def __init__(self, endpoint: ClientEndpoint) -> None:
        self._endpoint = endpoint

    def send_router(self, identity: list[bytes], body: Message, corr_id: str = "") -> bool:
        return self._endpoint.send_held(identity, body, corr_id)


def _item(env: Envelope, item: dict[str, Any]) -> Envelope | ProtocolError:
    """One item of a `SubmitOrders` as the lone `SubmitOrder` envelope it stands for."""
    msg_id, body = item.get("id"), item.get("body")
    if set(item) != {"id", "body"} or not isinstance(msg_id, str) or not msg_id:
        return ProtocolError("submit_orders: an item is {id, body}, with an id")
    try:
        msg = decode_item("submit_order", body)
    except ProtocolError as exc:
        return exc
    return _lone(env.sender, env.epoch, env.seq, msg_id, env.ts_ns, msg)


def _lone(sender: str, epoch: int, seq: int, msg_id: str, ts_ns: int, body: Message) -> Envelope:
    return Envelope("submit_order", sender, epoch, seq, msg_id, "", ts_ns, body, PROTOCOL_VERSION)


# --------------------------------------------------------------------------- the fast path
# A batch's items decoded straight from their own bytes by the lone SubmitOrder's msgspec
# decoder (`protocol.fastpath`), without the generic path's plain-map walk of the envelope
# and re-encode of each body (17 us an item against 10 for a lone submit). Only a batch
# whose every item it vouches for is taken here; anything else (a malformed item, a bound
# crossed, the fast path off) is decoded by the codec and served as above, whose answer
# stands.


class _Item(msgspec.Struct, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1)]
    body: msgspec.Raw


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    orders: Annotated[list[_Item], msgspec.Meta(min_length=1, max_length=MAX_SUBMIT_BATCH)]


_BATCH_DECODER: Final = msgspec.msgpack.Decoder(_Batch)
_TAG: Final = b"\xadsubmit_orders"  # the envelope's type, as msgpack writes it (fixstr 13)


def _fast_batch(raw: bytes) -> list[Envelope] | None:
    """The items of a `SubmitOrders` frame as lone submit envelopes; None for another
    message or one the fast path cannot vouch for (the caller decodes it fully)."""
    if not fastpath.ENABLED or len(raw) > MAX_SUBMIT_BATCH_BYTES or raw.find(_TAG, 0, 64) < 0:
        return None
    try:
        head = fastpath.HEADER_DECODER.decode(raw)
        if head.type != "submit_orders" or head.v != PROTOCOL_VERSION:
            return None
        decoder, build = fastpath.DECODERS["submit_order"]
        out = []
        for item in _BATCH_DECODER.decode(head.body).orders:
            body = build(decoder.decode(item.body))
            assert isinstance(body, SubmitOrder)
            out.append(_lone(head.sender, head.epoch, head.seq, item.id, head.ts_ns, body))
    except Exception:  # noqa: BLE001 - it cannot vouch: the full path decides
        return None
    return out
