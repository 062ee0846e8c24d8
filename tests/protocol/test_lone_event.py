"""A lone event frame on a subscriber's stream (`event_batch.lone_event`) is read on the
codec's fast path without the Envelope (issue 16): for any frame (a valid event, one with
fields replaced, dropped or added, a header changed, another message type, not msgpack),
the same answer as the decode through `codec.decode` it replaced."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from protocol import fastpath
from protocol.codec import Sender, decode, encode
from protocol.event_batch import lone_event
from protocol.exceptions import ProtocolError
from protocol.messages import OrderAck, OrderEvent, OrderStatus, StreamEvent
from tests.protocol.samples import build, mutate_field, odd_values
from tests.protocol.test_fastpath import _same

_STATUSES = [None, frozenset({OrderStatus.ACCEPTED.value}), frozenset({"FILLED", "NEW"})]


def _old(frames: list[Any], wanted: frozenset[str] | None) -> tuple[int, Any] | None:
    """`lone_event` as it was: the event through `codec.decode`, its Envelope's epoch."""
    peek = None if wanted is None else fastpath.peek_order_event(frames)
    if peek is not None and wanted is not None and peek[2] not in wanted:
        return peek[0], (peek[1], None)
    try:
        env = decode(frames)
    except ProtocolError:
        return None
    body = env.body
    if not isinstance(body, (OrderEvent, StreamEvent)):
        return None
    if wanted is not None and isinstance(body, OrderEvent) and body.order.status not in wanted:
        return env.epoch, (body.event_seq, None)
    return env.epoch, (body.event_seq, body)


def _agree(frames: list[Any], wanted: frozenset[str] | None) -> None:
    old, new = _old(frames, wanted), lone_event(frames, wanted)
    if old is None or new is None:
        assert old is new
        return
    assert (old[0], old[1][0]) == (new[0], new[1][0])
    if old[1][1] is None or new[1][1] is None:
        assert old[1][1] is new[1][1]
        return
    _same(new[1][1], old[1][1])


def _frame(model: BaseModel, epoch: int = 3) -> bytes:
    return encode(Sender("oms", epoch).envelope(model))[0]  # type: ignore[arg-type]


@pytest.mark.parametrize("wanted", _STATUSES)
@pytest.mark.parametrize("full", [True, False])
@pytest.mark.parametrize("cls", [OrderEvent, StreamEvent, OrderAck])
def test_each_kind_of_frame_reads_as_before(cls: type[BaseModel], full: bool, wanted: Any) -> None:
    raw = _frame(build(cls, full=full))
    _agree([raw], wanted)
    _agree([raw, raw], wanted)  # two frames: refused
    _agree([bytearray(raw)], wanted)  # not bytes: the codec's own reading
    _agree([raw[:-1]], wanted)
    obj = msgpack.unpackb(raw)
    odd = [("v", 2), ("v", True), ("epoch", -1), ("type", "order_ack"), ("ts_ns", 1.5),
           ("type", "order_event"), ("type", "stream_event")]  # fmt: skip
    for key, value in odd:
        _agree([msgpack.packb({**obj, key: value})], wanted)


_values_st = odd_values(
    st.binary(max_size=4),
    st.sampled_from(["1", "0.5", "1E+2", "ACCEPTED", "FILLED", "order_event", "stream_event"]),
    max_leaves=6,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([OrderEvent, OrderEvent, StreamEvent, OrderAck]), st.booleans(),
    st.sampled_from([None, None, frozenset(s.value for s in OrderStatus), *_STATUSES[1:]]),
    st.data(),
)  # fmt: skip
def test_any_frame_reads_as_it_did_through_the_codec(
    cls: type[BaseModel], full: bool, wanted: Any, data: st.DataObject
) -> None:
    obj = msgpack.unpackb(_frame(build(cls, full=full)))
    for _ in range(data.draw(st.sampled_from([0, 0, 1, 1, 1, 2, 3]))):
        where = obj if data.draw(st.booleans()) else obj.get("body")
        if not isinstance(where, dict):
            break
        mutate_field(
            where, data.draw(st.sampled_from(["replace", "drop", "add"])), data, _values_st
        )
    _agree([msgpack.packb(obj)], wanted)


def test_the_comparison_tells_two_events_apart() -> None:
    """(the test's own check: `_same` is not vacuous)"""
    with pytest.raises(AssertionError):
        _same(build(OrderEvent, full=True), build(OrderEvent, full=False))
