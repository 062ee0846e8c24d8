"""`OrderEvents` on the wire: the OMS's order events of one turn in one message
(`actors.oms.event_wire.messages` writes it, `protocol.event_batch` reads it). Each item is
the lone `OrderEvent` it stands for (the same value on the fast and the full path), in
order, each with its own `event_seq` and status; the messages stay inside their bounds; a
malformed batch is refused whole, a malformed item alone."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.oms.event_wire import messages, order_event_body, packed
from actors.oms.orders import Order
from protocol import fastpath
from protocol.batch_messages import MAX_EVENT_BATCH, MAX_EVENT_BATCH_BYTES, OrderEvents
from protocol.codec import Sender, decode
from protocol.event_batch import events_of, read_events
from protocol.exceptions import ProtocolError
from protocol.messages import OrderEvent, OrderStatus, OrdType, Side, StreamEvent, TimeInForce
from tests.oms.test_event_wire import orders

_PATHS = pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])


def _frames(events: list[OrderEvent]) -> list[list[bytes]]:
    """The OMS's messages for these events, as it publishes them."""
    sender = Sender("oms", 3)
    raws = [packed(e.model_dump(mode="json", exclude={"type"})) for e in events]
    return [sender.encode_body(t, body)[1] for t, body in messages(raws)]


def _events(n: int, reason: str = "") -> list[OrderEvent]:
    out = []
    for i in range(n):
        order = _order(f"c{i}", reason)
        out.append(OrderEvent(event_seq=i + 1, order=order.view(), fill_qty=Decimal("0.5")))
    return out


def _order(coid: str, reason: str) -> Order:
    return Order(
        client_order_id=coid, venue="simA", symbol="AAPL", side=Side.BUY, qty=Decimal(2),
        order_type=OrdType.LIMIT, price=Decimal("95.5"), tif=TimeInForce.DAY,
        status=OrderStatus.ACCEPTED, cl_ord_id=coid, cl_ord_ids=(coid,), reason=reason,
    )  # fmt: skip


def _read(frames: list[list[bytes]]) -> list[OrderEvent]:
    out = []
    for f in frames:
        batch = read_events(f)
        if batch is None:
            body = decode(f).body
            assert isinstance(body, OrderEvent)
            out.append(body)
        else:
            assert batch[0] == 3  # the OMS epoch
            out += [item.decode() for item in batch[1]]
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(orders(), min_size=1, max_size=300), st.booleans())
def test_every_event_reads_back_as_the_lone_event_in_order(orders_: list[Any], fast: bool) -> None:
    """Each item decodes to what the lone `OrderEvent` with its body decodes to."""
    bodies = [order_event_body(order, i + 1, None, None) for i, order in enumerate(orders_)]
    sender = Sender("oms", 3)
    frames = [sender.encode_body(t, b)[1] for t, b in messages([packed(b) for b in bodies])]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastpath, "ENABLED", fast)
        got = _read(frames)
        events = [decode(sender.encode_body("order_event", b)[1]).body for b in bodies]
    assert got == events
    assert [e.model_fields_set for e in got] == [e.model_fields_set for e in events]
    for f in frames:
        assert len(f[0]) <= MAX_EVENT_BATCH_BYTES
        body = decode(f).body
        assert isinstance(body, OrderEvent) or 2 <= len(body.events) <= MAX_EVENT_BATCH


def test_one_event_goes_alone_and_several_together() -> None:
    assert [decode(f).type for f in _frames(_events(1))] == ["order_event"]
    assert [decode(f).type for f in _frames(_events(2))] == ["order_events"]
    sizes = [len(decode(f).body.events) for f in _frames(_events(MAX_EVENT_BATCH + 2))]
    assert sizes == [MAX_EVENT_BATCH, 2]


def test_long_events_are_cut_by_bytes() -> None:
    """Events with the longest reasons (a full batch of them is over the byte bound): more
    messages, each under the bound."""
    events = _events(MAX_EVENT_BATCH, reason="x" * 60_000)  # cut to MAX_ORDER_REASON_CHARS
    frames = _frames(events)
    assert len(frames) > 2
    assert all(len(f[0]) <= MAX_EVENT_BATCH_BYTES for f in frames)
    assert _read(frames) == events


@_PATHS
def test_items_carry_their_seq_and_status_before_any_decode(fast: bool) -> None:
    (frame,) = _frames(_events(3))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastpath, "ENABLED", fast)
        batch = read_events(frame)
    assert batch is not None
    assert [(i.event_seq, i.status) for i in batch[1]] == [(1, "ACCEPTED"), (2, "ACCEPTED"),
                                                            (3, "ACCEPTED")]  # fmt: skip


def test_another_message_is_not_a_batch() -> None:
    sender = Sender("oms", 3)
    assert read_events(sender.encode(StreamEvent(event_seq=1, event="x"))) is None
    assert read_events(_frames(_events(1))[0]) is None


def _tampered(change: Any) -> list[bytes]:
    (frame,) = _frames(_events(2))
    obj = msgpack.unpackb(frame[0])
    change(obj["body"])
    return [msgpack.packb(obj)]


@_PATHS
@pytest.mark.parametrize(
    "change",
    [
        lambda b: b.update(events=[]),
        lambda b: b.update(events=b["events"] * MAX_EVENT_BATCH),
        lambda b: b.update(events=["not a map", {}]),
        lambda b: b["events"][1].pop("event_seq"),
        lambda b: b["events"][0]["order"].update(status=7),
        lambda b: b.update(extra=1),
    ],
    ids=["empty", "too_many", "not_maps", "no_seq", "status_not_text", "extra_field"],
)
def test_a_malformed_batch_is_refused_whole(fast: bool, change: Any) -> None:
    frame = _tampered(change)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastpath, "ENABLED", fast)
        with pytest.raises(ProtocolError):
            read_events(frame)
        assert events_of(frame) == []


@_PATHS
def test_a_malformed_item_fails_alone(fast: bool) -> None:
    """The second item's fill is no decimal: it is left out, the first still comes (its
    place in the sequence is then a gap for the subscriber, as a lone malformed event)."""
    frame = _tampered(lambda b: b["events"][1].update(fill_qty="lots"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastpath, "ENABLED", fast)
        batch = read_events(frame)
        assert batch is not None
        with pytest.raises(ProtocolError, match="fill_qty"):
            batch[1][1].decode()
        assert [seq for seq, _ in events_of(frame)] == [1]


@_PATHS
def test_a_value_the_codec_refuses_is_refused_in_an_item(fast: bool) -> None:
    """A symbol as msgpack bin (pydantic alone would take bytes for text): refused as in a
    lone event; on the fast path the item alone, else the whole batch (the codec's)."""
    frame = _tampered(lambda b: b["events"][1]["order"].update(symbol=b"AAPL"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastpath, "ENABLED", fast)
        assert [seq for seq, _ in events_of(frame)] == ([1] if fast else [])
        if fast:
            batch = read_events(frame)
            assert batch is not None
            with pytest.raises(ProtocolError, match="bytes is not allowed"):
                batch[1][1].decode()
        else:
            with pytest.raises(ProtocolError, match="bytes is not allowed"):
                read_events(frame)


def test_unwanted_statuses_are_sequenced_not_decoded() -> None:
    (frame,) = _frames(_events(2))
    assert events_of(frame, frozenset({"FILLED"})) == [(1, None), (2, None)]
    got = events_of(frame, frozenset({"ACCEPTED"}))
    assert [type(e) for _, e in got] == [OrderEvent, OrderEvent]


def test_the_codec_decodes_a_batch_as_a_message() -> None:
    (frame,) = _frames(_events(2))
    for fast in (True, False):
        body = decode(frame, fast=fast).body
        assert isinstance(body, OrderEvents) and len(body.events) == 2


_plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8)
    | st.floats(allow_nan=True),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=4),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            _plain,
            st.fixed_dictionaries(
                {
                    "event_seq": st.integers(-5, 2**64 - 1) | _plain,
                    "order": st.fixed_dictionaries({"status": st.text(max_size=12) | _plain})
                    | _plain,
                },
                optional={"fill_qty": _plain, "fill_px": _plain, "x": _plain},
            ),  # fmt: skip
        ),
        max_size=6,
    ),
    st.booleans(),
)
def test_any_batch_raises_only_protocol_errors(items: list[Any], fast: bool) -> None:
    """Whatever the items (the envelope valid), reading the batch and decoding its items
    raise only `ProtocolError`, and `events_of` never raises."""
    frame = [Sender("oms", 3).encode_body("order_events", {"events": items})[1][0]]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastpath, "ENABLED", fast)
        try:
            batch = read_events(frame)
        except ProtocolError:
            batch = None
        for item in batch[1] if batch is not None else []:
            try:
                assert isinstance(item.decode(), OrderEvent)
            except ProtocolError:
                pass
        events_of(frame)
        events_of(frame, frozenset({"ACCEPTED"}))
