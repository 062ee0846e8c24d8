"""A subscriber's reading of an `OrderEvents` (the OMS's order events of one turn in one
message): its items as the lone `OrderEvent`s they stand for, each with its own
`event_seq` and order status read without decoding the rest, and decoded on demand.

`read_events(frames)` is None for any other message (the subscriber decodes it as
before), else (the OMS epoch, the items). A batch whose envelope or items' `event_seq` and
status do not parse is malformed as a whole: `ProtocolError`, which the subscriber counts
and logs as any malformed message; its events are then missing from the sequence, so the
next one shows the gap and the subscriber recovers as from a dropped message (a snapshot,
a rebuild). An item whose full decode fails (`EventItem.decode` raises `ProtocolError`)
fails alone, as a lone malformed event would: on the fast path it is decoded as the lone
`OrderEvent` envelope with its body would be (the codec's refusals of msgpack bin or ext,
NaN, a non-text key too); where the fast path cannot vouch for the batch, the codec
decodes it whole and such a value makes the whole batch malformed, as in every batch.

The fast path reads each item's own msgpack bytes (`msgspec.Raw`) with the lone
`OrderEvent`'s msgspec decoder (`protocol.fastpath`), without the generic path's walk of
the envelope and re-encode of each body; a frame it cannot vouch for is decoded by the
codec, whose answer stands.

`tolerant=True`: a client's reading (`protocol.event_stream`): a field of a newer core that
its schema lacks is ignored, in the batch or in an item, as the codec's `tolerant` does
(`protocol.compat`); risk's exposure sync and the benches read strictly (the default).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec

from protocol import compat, fastpath
from protocol.batch_messages import MAX_EVENT_BATCH, OrderEvents
from protocol.codec import MAX_FRAME_BYTES, PROTOCOL_VERSION, decode, decode_item
from protocol.exceptions import ProtocolError
from protocol.fastpath import peek_order_event
from protocol.messages import OrderEvent, StreamEvent

TYPE: Final = "order_events"
BATCH_TAG: Final = b"\xacorder_events"  # the envelope's type as msgpack writes it (fixstr 12)
_ENCODER: Final = msgspec.msgpack.Encoder()
_LONE_HEAD: Final = {"v": PROTOCOL_VERSION, "type": "order_event", "sender": "oms", "epoch": 0,
                     "seq": 0, "id": "", "corr": "", "ts_ns": 0}  # fmt: skip


class EventItem:
    """One order event of a batch: its `event_seq` and order `status` (read), the rest
    decoded by `decode` (validated exactly as the lone `OrderEvent` would be)."""

    __slots__ = ("_body", "_raw", "_tolerant", "event_seq", "status")

    def __init__(
        self, event_seq: int, status: str, raw: msgspec.Raw | None, body: Any, tolerant: bool
    ) -> None:
        self.event_seq = event_seq
        self.status = status
        self._raw = raw  # its own msgpack bytes (fast path), or
        self._body = body  # its decoded map (full path)
        self._tolerant = tolerant  # a client's: a newer core's fields ignored

    def decode(self) -> OrderEvent:
        """The lone `OrderEvent` it stands for; `ProtocolError` if it is malformed."""
        if self._raw is not None and fastpath.ENABLED:
            decoder, build = fastpath.DECODERS["order_event"]
            try:
                event = build(decoder.decode(self._raw))
                if isinstance(event, OrderEvent):
                    return event
            except Exception:  # noqa: BLE001 - the fast path cannot vouch: the full path decides
                event = compat.decode_body("order_event", self._raw) if self._tolerant else None
                if isinstance(event, OrderEvent):
                    return event
        if self._raw is not None:  # as the lone message with this body: the codec decides
            frame = _ENCODER.encode({**_LONE_HEAD, "body": self._raw})
            # the fast decoders refused it above
            event = decode([frame], fast=False, tolerant=self._tolerant).body
        else:  # from the codec's decode of the whole batch (its values checked there)
            event = decode_item("order_event", self._body, tolerant=self._tolerant)
        if not isinstance(event, OrderEvent):  # pragma: no cover - the type decoded
            raise ProtocolError("order_events: an item is not an order event")
        return event


class _PeekOrder(msgspec.Struct):
    status: str


class _PeekItem(msgspec.Struct):
    event_seq: int
    order: _PeekOrder


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    events: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=MAX_EVENT_BATCH)]


_BATCH_DECODER: Final = msgspec.msgpack.Decoder(_Batch)
_PEEK_DECODER: Final = msgspec.msgpack.Decoder(_PeekItem)


def read_events(
    frames: list[bytes], *, tolerant: bool = False
) -> tuple[int, list[EventItem]] | None:
    """(OMS epoch, items in order) of an `OrderEvents` frame; None for another message;
    `ProtocolError` for a malformed batch (see the module docstring; `tolerant`: there)."""
    raw = frames[0] if len(frames) == 1 else None  # several: the caller's decode refuses it
    if not isinstance(raw, bytes) or raw.find(BATCH_TAG, 0, 64) < 0:
        return None
    if len(raw) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(raw)} bytes is over the {MAX_FRAME_BYTES} byte limit")
    if fastpath.ENABLED:
        fast = _fast(raw, tolerant)
        if fast is not None:
            return fast
    env = decode(frames, tolerant=tolerant)  # raises ProtocolError, naming what was wrong
    if not isinstance(env.body, OrderEvents):
        return None
    return env.epoch, [_item(i, body, tolerant) for i, body in enumerate(env.body.events)]


def _fast(raw: bytes, tolerant: bool) -> tuple[int, list[EventItem]] | None:
    try:
        head = fastpath.HEADER_DECODER.decode(raw)
        if head.type != TYPE or head.v != PROTOCOL_VERSION:
            return None
        out = []
        for item in _BATCH_DECODER.decode(head.body).events:
            peek = _PEEK_DECODER.decode(item)
            out.append(EventItem(peek.event_seq, peek.order.status, item, None, tolerant))
    except Exception:  # noqa: BLE001 - it cannot vouch: the full path decides
        return None
    return head.epoch, out


def _item(index: int, body: dict[str, Any], tolerant: bool) -> EventItem:
    seq, order = body.get("event_seq"), body.get("order")
    status = order.get("status") if isinstance(order, dict) else None
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(status, str):
        raise ProtocolError(f"order_events: item {index} has no event_seq and order status")
    return EventItem(seq, status, None, body, tolerant)


Unit = tuple[int, OrderEvent | StreamEvent | None]  # (event_seq, event; None: only sequenced)


def events_of(frames: list[bytes], wanted: frozenset[str] | None = None) -> list[Unit]:
    """The events a frame of the OMS event stream carries, in order: an order event or a
    stream event, or a batch's items one by one (`item_event`). With `wanted` (order
    statuses), an order event of another status is only sequenced (not decoded). What is
    malformed, or no event, is left out (its place in the sequence is then a gap)."""
    try:
        batch = read_events(frames)
    except ProtocolError:
        return []
    if batch is not None:
        return [u for u in (item_event(i, wanted) for i in batch[1]) if u is not None]
    lone = lone_event(frames, wanted)
    return [] if lone is None else [lone[1]]


def item_event(item: EventItem, wanted: frozenset[str] | None = None) -> Unit | None:
    """A batch's item as the lone event it stands for (see `events_of`)."""
    if wanted is not None and item.status not in wanted:
        return item.event_seq, None
    try:
        return item.event_seq, item.decode()
    except ProtocolError:
        return None  # as a lone malformed event: left out


def lone_event(
    frames: list[bytes], wanted: frozenset[str] | None = None, *, tolerant: bool = False
) -> tuple[int, Unit] | None:
    """(OMS epoch, the event) of a frame that is no batch (see `events_of`; `tolerant`: the
    module docstring)."""
    peek = None if wanted is None else peek_order_event(frames)
    if peek is not None and wanted is not None and peek[2] not in wanted:
        return peek[0], (peek[1], None)  # not wanted: only its place in the sequence counts
    fast = _fast_lone(frames) if fastpath.ENABLED else None
    if fast is not None:
        epoch, body = fast
    else:
        try:
            env = decode(frames, tolerant=tolerant)
        except ProtocolError:
            return None
        epoch, body = env.epoch, env.body
    if not isinstance(body, (OrderEvent, StreamEvent)):
        return None
    if wanted is not None and isinstance(body, OrderEvent) and body.order.status not in wanted:
        return epoch, (body.event_seq, None)  # not peeked (fast path off): filtered here
    return epoch, (body.event_seq, body)


def _fast_lone(frames: list[bytes]) -> tuple[int, Any] | None:
    """(epoch, body) of a lone event frame as `decode` reads it on its fast path, without
    the calls around it and the Envelope (a subscriber keeps only these two; issue 16):
    the same checks (one frame of bytes within the size limit, the header and the body
    through the fast path's decoders, the protocol version). None where that path would
    not vouch for the frame: `decode` decides then, as always."""
    if len(frames) != 1:
        return None
    raw = frames[0]
    if type(raw) is not bytes or len(raw) > MAX_FRAME_BYTES:
        return None
    try:
        head = fastpath.HEADER_DECODER.decode(raw)
        entry = fastpath.DECODERS.get(head.type)
        if entry is None or head.v != PROTOCOL_VERSION:
            return None
        return head.epoch, entry[1](entry[0].decode(head.body))
    except Exception:  # noqa: BLE001 - the fast path cannot vouch: `decode` decides
        return None
