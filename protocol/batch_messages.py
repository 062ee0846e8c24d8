"""A client's several submits in one message, the OMS's several replies to one client, and
the OMS's order events of one turn on its event stream.

`SubmitOrders` (client -> OMS) carries up to `MAX_SUBMIT_BATCH` submits; `Replies` (OMS ->
client) the answers to those of them whose replies became ready in one OMS loop turn. Both
are envelopes of lone messages: each item has its own message id (a submit) or correlation
id (a reply) and the wire body it would carry alone, and is decoded and validated alone
(`protocol.codec.decode_item`). An item its decoder refuses fails alone; the others go on. A
value the codec refuses in any message (msgpack bin or ext, NaN, a non-text map key, nesting
over the bound) makes the whole message malformed, as in every batch message.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import Field

from protocol.domain import Msg

MAX_SUBMIT_BATCH: Final = 256  # submits in one `SubmitOrders` (a client sends more as several)
MAX_SUBMIT_BATCH_BYTES: Final = 512 * 1024  # its frame: 256 submits of the longest fields fit
# order events in one `OrderEvents` (~25 msgpack elements each: a full batch stays inside the
# fast path's bound on plain maps, `protocol.fastpath.MAX_PLAIN_ITEMS`), and its frame
MAX_EVENT_BATCH: Final = 128
# 128 events of ordinary size (~280-500 bytes) fit; events with long texts go as more messages
MAX_EVENT_BATCH_BYTES: Final = 64 * 1024
# An order's `reason` as the OMS shows it (events, replies, snapshots): a venue's reject
# text has no bound of its own, so it is cut here (the journal keeps it whole); the rest of
# an event is bounded too, so every event-stream message is under MAX_EVENT_BATCH_BYTES
MAX_ORDER_REASON_CHARS: Final = 1000
# The event stream's queues are bounded by bytes, not only messages: its high-water mark
# (each way: the OMS's PUB for each subscriber, risk's SUB) is this budget in full batches,
# so a stalled subscriber costs at most ~64 MiB a side before a drop (which it recovers
# from: a gap); that is ~131,000 events of lag a side in full batches (a busy OMS), as
# 100,000 lone events were before, but 1,024 where each event goes alone (a quiet OMS)
EVENT_STREAM_BYTES: Final = 64 << 20
EVENT_STREAM_HWM: Final = EVENT_STREAM_BYTES // MAX_EVENT_BATCH_BYTES  # 1,024 messages


def clip_order_reason(reason: str) -> str:
    """At most `MAX_ORDER_REASON_CHARS` of an order's reason (cut ones end in "...")."""
    if len(reason) <= MAX_ORDER_REASON_CHARS:
        return reason
    return reason[: MAX_ORDER_REASON_CHARS - 3] + "..."


class SubmitOrders(Msg):
    """Several `SubmitOrder`s in one message, in order: `orders[i]` is `{"id": its own
    message id, "body": the wire body of a lone SubmitOrder}`. The OMS serves each exactly as
    that lone submit with that id (idempotent per client_order_id, so a resend of the batch
    or of one item creates nothing twice) and answers each correlated to its id: alone, or
    inside a `Replies`. A malformed item is counted and logged `bad_message` and gets no
    answer, as a malformed lone message gets none."""

    type: Literal["submit_orders"] = "submit_orders"
    orders: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_SUBMIT_BATCH)


class Replies(Msg):
    """Several replies to one client in one message (sent without a correlation id):
    `replies[i]` is `{"corr": the message id of the request answered, "type": the reply's
    type, "body": the wire body it would carry alone}`, exactly as that lone reply. Only
    answers to the items of a `SubmitOrders` travel so (a lone request's reply stays lone)."""

    type: Literal["replies"] = "replies"
    replies: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_SUBMIT_BATCH)


class OrderEvents(Msg):
    """The order events the OMS publishes in one loop turn, in one message on its event
    stream: `events[i]` is the wire body of a lone `OrderEvent` (what it would carry
    alone), in `event_seq` order with no gap. A subscriber takes each as that lone event
    (`protocol.event_batch.read_events`): sequenced by its own `event_seq`, decoded on its
    own. Up to `MAX_EVENT_BATCH` items under `MAX_EVENT_BATCH_BYTES`; a turn with more is
    published as several, and a turn's one event alone, as a lone `OrderEvent`."""

    type: Literal["order_events"] = "order_events"
    events: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_EVENT_BATCH)
