"""The envelope codec: every message round-trips; every malformed input is a ProtocolError
that says what was wrong; decode never raises anything else and never hangs."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from protocol.codec import (
    MAX_CONTAINERS,
    MAX_ELEMENTS,
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Envelope,
    Sender,
    decode,
    encode,
)
from protocol.exceptions import ProtocolError
from protocol.messages import (
    MESSAGE_TYPES,
    ActorHeartbeat,
    OrderView,
    OrdType,
    PlaceOrder,
    Positions,
    PositionView,
    Side,
    Snapshot,
    Stop,
)
from tests.protocol.samples import MESSAGE_CLASSES, build, message_type

HEADER_FIELDS = ("v", "type", "sender", "epoch", "seq", "id", "corr", "ts_ns", "body")
DECODE_BOUND_S = 1.0  # a decode of any input of a few KB takes well under a millisecond


def _raw(cls: type[BaseModel] = Stop, *, full: bool = True) -> dict[str, Any]:
    """A valid envelope as the map that goes on the wire."""
    env = Sender("oms", 1_700_000_000_000).envelope(build(cls, full=full), corr_id="corr-1")
    obj = msgpack.unpackb(encode(env)[0], raw=False)
    assert isinstance(obj, dict)
    return obj


def _pack(obj: Any) -> bytes:
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


def _decode_error(frame: bytes | Any) -> str:
    with pytest.raises(ProtocolError) as info:
        decode([frame])
    return str(info.value)


def _bounded_decode(frames: list[Any]) -> Envelope | ProtocolError:
    """Decode; only ProtocolError may escape, and it must not take long."""
    start = time.monotonic()
    try:
        result: Envelope | ProtocolError = decode(frames)
    except ProtocolError as exc:
        result = exc
    assert time.monotonic() - start < DECODE_BOUND_S
    return result


# --------------------------------------------------------------------------- round trips


def test_samples_cover_every_message_type() -> None:
    """The round-trip tests below see every type in the discriminated union."""
    assert {message_type(c) for c in MESSAGE_CLASSES} == set(MESSAGE_TYPES)


@pytest.mark.parametrize("full", [True, False], ids=["all_fields", "required_only"])
@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=message_type)
def test_every_message_type_round_trips(cls: type[BaseModel], full: bool) -> None:
    """encode then decode gives back an equal envelope: header fields and an equal body of
    the same class (Decimals keep their exact digits)."""
    msg = build(cls, full=full)
    env = Sender("connector.simA", 1_700_000_000_123).envelope(msg, corr_id="c-9")
    frames = encode(env)
    assert len(frames) == 1 and isinstance(frames[0], bytes)
    back = decode(frames)
    assert back == env
    assert type(back.body) is cls
    assert back.body.model_dump() == msg.model_dump()
    assert (back.type, back.sender, back.epoch, back.seq, back.corr_id, back.version) == (
        message_type(cls), "connector.simA", 1_700_000_000_123, 1, "c-9", PROTOCOL_VERSION,
    )  # fmt: skip


def _floats_in(obj: Any) -> list[float]:
    if isinstance(obj, float):
        return [obj]
    if isinstance(obj, dict):
        return [f for v in obj.values() for f in _floats_in(v)]
    if isinstance(obj, list):
        return [f for v in obj for f in _floats_in(v)]
    return []


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=message_type)
def test_decimals_travel_as_strings(cls: type[BaseModel]) -> None:
    """No Decimal field is ever put on the wire as a float: the only floats in an encoded
    body come from fields declared float."""
    body = _raw(cls)["body"]
    assert all(f == 0.125 for f in _floats_in(body)), body  # 0.125: the float-field sample


def test_place_order_quantity_is_a_decimal_string_on_the_wire() -> None:
    """A price of 101.10 travels as the string "101.10" and decodes to Decimal("101.10")."""
    msg = PlaceOrder(
        cl_ord_id="A1",
        symbol="AAPL",
        side=Side.BUY,
        qty=Decimal("5"),
        order_type=OrdType.LIMIT,
        price=Decimal("101.10"),
    )
    frame = encode(Sender("oms", 1).envelope(msg))[0]
    assert msgpack.unpackb(frame)["body"]["price"] == "101.10"
    body = decode([frame]).body
    assert isinstance(body, PlaceOrder) and body.price == Decimal("101.10")
    assert str(body.price) == "101.10"


def test_sender_stamps_increasing_sequence_and_unique_ids() -> None:
    """One Sender numbers its envelopes 1, 2, 3... with distinct message ids and its epoch."""
    sender = Sender("risk", 77)
    envs = [sender.envelope(Stop()) for _ in range(5)]
    assert [e.seq for e in envs] == [1, 2, 3, 4, 5]
    assert len({e.msg_id for e in envs}) == 5
    assert {e.epoch for e in envs} == {77} and {e.sender for e in envs} == {"risk"}
    assert all(e.ts_ns > 0 for e in envs)


@pytest.mark.parametrize(
    "wrap", [bytes, bytearray, memoryview, zmq.Frame], ids=lambda w: w.__name__
)
def test_decode_accepts_every_frame_type_zmq_hands_out(wrap: Callable[[bytes], Any]) -> None:
    """bytes, bytearray, memoryview and zmq.Frame (recv with copy=False) all decode."""
    env = Sender("oms", 3).envelope(Stop(reason="x"))
    assert decode([wrap(encode(env)[0])]) == env


# --------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("frames", "needle"),
    [
        ([], "expected 1 frame, got 0"),
        ([b"a", b"b"], "expected 1 frame, got 2"),
        ([12345], "not bytes"),
        ([b""], "not msgpack"),
        ([b"\xc1"], "not msgpack"),  # a reserved msgpack byte
        ([b"\x92\x01"], "not msgpack"),  # truncated array
        ([b"\xdd\xff\xff\xff\xff"], "not msgpack"),  # array32 claiming 4 billion items
        ([b"\xdf\xff\xff\xff\xff"], "not msgpack"),  # map32 claiming 4 billion pairs
        ([b"\xdb\xff\xff\xff\xff"], "not msgpack"),  # str32 claiming 4 GB
        ([b"\x91" * 100_000], "not msgpack"),  # nested 100k deep
        ([_pack([1, 2, 3])], "must be a map, got list"),
        ([_pack("hello")], "must be a map, got str"),
        ([_pack(None)], "must be a map"),
        ([_pack({1: 2})], "not msgpack"),  # non-string map keys are refused by the unpacker
        ([b"\xa3ab\xff"], "not msgpack"),  # str that is not UTF-8
        ([b"\x00" * (MAX_FRAME_BYTES + 1)], "over the"),
    ],
)
def test_malformed_frames_raise_protocol_error_naming_the_problem(
    frames: list[Any], needle: str
) -> None:
    """Empty, truncated, hostile or wrongly shaped frames: a ProtocolError that says why,
    quickly, whatever the claimed lengths."""
    result = _bounded_decode(frames)
    assert isinstance(result, ProtocolError)
    assert needle in str(result)


@pytest.mark.parametrize("field", HEADER_FIELDS)
def test_missing_envelope_field_is_named(field: str) -> None:
    """An envelope without one of its header fields names that field."""
    obj = _raw()
    del obj[field]
    msg = _decode_error(_pack(obj))
    assert repr(field) in msg and "missing" in msg


_WRONG_TYPES = {
    "v": "1", "type": 5, "sender": 5, "epoch": "1", "seq": 1.5, "id": 5, "corr": None,
    "ts_ns": "now", "body": [1],
}  # fmt: skip


@pytest.mark.parametrize("field", HEADER_FIELDS)
def test_mistyped_envelope_field_is_named(field: str) -> None:
    """A header field of the wrong type names the field and the type it had."""
    obj = _raw()
    obj[field] = _WRONG_TYPES[field]
    msg = _decode_error(_pack(obj))
    assert repr(field) in msg and type(_WRONG_TYPES[field]).__name__ in msg


@pytest.mark.parametrize("field", ["v", "epoch", "seq", "ts_ns"])
def test_bool_is_not_an_integer_header(field: str) -> None:
    """msgpack `true` is not accepted where an integer is expected."""
    obj = _raw()
    obj[field] = True
    assert repr(field) in _decode_error(_pack(obj))


@pytest.mark.parametrize("version", [0, 2, PROTOCOL_VERSION + 100, -1])
def test_wrong_protocol_version_is_refused(version: int) -> None:
    obj = _raw()
    obj["v"] = version
    assert f"unsupported protocol version {version}" in _decode_error(_pack(obj))


@pytest.mark.parametrize("mtype", ["", "no_such_message", "STOP", "Stop "])
def test_unknown_message_type_is_refused(mtype: str) -> None:
    obj = _raw()
    obj["type"] = mtype
    assert f"unknown message type {mtype!r}" in _decode_error(_pack(obj))


def test_extra_envelope_field_is_named() -> None:
    obj = _raw()
    obj["priority"] = 1
    msg = _decode_error(_pack(obj))
    assert "unknown fields" in msg and "priority" in msg


def test_body_repeating_its_type_is_refused() -> None:
    obj = _raw()
    obj["body"]["type"] = "stop"
    assert "type" in _decode_error(_pack(obj))


def test_oversize_valid_envelope_is_refused_before_parsing() -> None:
    """A well-formed envelope over the frame limit is refused with the limit in the message."""
    env = Sender("oms", 1).envelope(Stop(reason="x" * MAX_FRAME_BYTES))
    msg = _decode_error(encode(env)[0])
    assert str(MAX_FRAME_BYTES) in msg and "limit" in msg


def _required_fields(cls: type[BaseModel]) -> list[str]:
    return [n for n, f in cls.model_fields.items() if f.is_required()]


_WITH_REQUIRED = [c for c in MESSAGE_CLASSES if _required_fields(c)]


@pytest.mark.parametrize("cls", _WITH_REQUIRED, ids=message_type)
def test_missing_body_field_is_named(cls: type[BaseModel]) -> None:
    """A body without a required field: the error names the message type and the field."""
    for field in _required_fields(cls):
        obj = _raw(cls)
        del obj["body"][field]
        msg = _decode_error(_pack(obj))
        assert message_type(cls) in msg and repr(field) in msg and "required" in msg


_BAD_VALUE: list[list[object]] = [[]]  # a list holding a list: no field of any message accepts it


@pytest.mark.parametrize(
    "cls", [c for c in MESSAGE_CLASSES if len(c.model_fields) > 1], ids=message_type
)
def test_mistyped_body_field_is_named(cls: type[BaseModel]) -> None:
    """Each body field given a value of the wrong type: the error names that field."""
    for field in cls.model_fields:
        if field == "type":
            continue
        obj = _raw(cls)
        obj["body"][field] = _BAD_VALUE
        msg = _decode_error(_pack(obj))
        assert message_type(cls) in msg and field in msg


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=message_type)
def test_extra_body_field_is_named(cls: type[BaseModel]) -> None:
    obj = _raw(cls)
    obj["body"]["surprise"] = 1
    msg = _decode_error(_pack(obj))
    assert "surprise" in msg


def test_quantity_that_is_not_a_number_is_named() -> None:
    """A Decimal field given text that is not a number is refused, naming the field."""
    obj = _raw(PlaceOrder)
    obj["body"]["qty"] = "ten"
    assert "'qty'" in _decode_error(_pack(obj))


# --------------------------------------------------------------------------- property tests

_msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_random_bytes_raise_only_protocol_error(data: bytes) -> None:
    """Any bytes at all: decode returns an envelope or raises ProtocolError, quickly."""
    _bounded_decode([data])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=4))
def test_random_multipart_raises_only_protocol_error(frames: list[bytes]) -> None:
    _bounded_decode(list(frames))


@settings(max_examples=300, deadline=None)
@given(_msgpack_values)
def test_valid_msgpack_of_any_shape_raises_protocol_error(value: Any) -> None:
    """Well-formed msgpack that is not an envelope is a ProtocolError, never a crash."""
    result = _bounded_decode([_pack(value)])
    assert isinstance(result, ProtocolError)


def _mutate(obj: dict[str, Any], kind: str, draw: Callable[..., Any]) -> str:
    """Apply one near-miss to a valid envelope; returns a word the error must contain."""
    if kind == "drop_header":
        field = draw(st.sampled_from(HEADER_FIELDS))
        del obj[field]
        return repr(field)
    if kind == "mistype_header":
        field = draw(st.sampled_from(HEADER_FIELDS))
        obj[field] = _WRONG_TYPES[field]
        return repr(field)
    if kind == "extra_header":
        name = draw(st.text(min_size=1, max_size=10).filter(lambda s: s not in HEADER_FIELDS))
        obj[name] = draw(_msgpack_values)
        return "unknown fields"
    if kind == "version":
        obj["v"] = draw(st.integers(-1000, 1000).filter(lambda v: v != PROTOCOL_VERSION))
        return "version"
    if kind == "type":
        obj["type"] = draw(st.text(max_size=20).filter(lambda t: t not in MESSAGE_TYPES))
        return "unknown message type"
    if kind == "drop_body" and obj["body"]:
        field = draw(st.sampled_from(sorted(obj["body"])))
        del obj["body"][field]
        return ""  # optional fields may be dropped legally
    if kind == "mistype_body" and obj["body"]:
        field = draw(st.sampled_from(sorted(obj["body"])))
        obj["body"][field] = _BAD_VALUE
        return str(field)
    body = obj["body"]  # a name it has would be no extra field, and the envelope still valid
    name = draw(st.text(min_size=1, max_size=10).filter(lambda s: s != "type" and s not in body))
    body[name] = draw(_msgpack_values)
    return repr(name)


_KINDS = ["drop_header", "mistype_header", "extra_header", "version", "type", "drop_body",
          "mistype_body", "extra_body"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(MESSAGE_CLASSES), st.sampled_from(_KINDS), st.booleans(), st.data())
def test_near_valid_envelopes_raise_protocol_error_naming_the_problem(
    cls: type[BaseModel], kind: str, full: bool, data: st.DataObject
) -> None:
    """A valid envelope with one field removed, mistyped, added, or a wrong version or
    type: ProtocolError naming what was wrong (dropping an optional body field is legal)."""
    obj = _raw(cls, full=full)
    needle = _mutate(obj, kind, data.draw)
    result = _bounded_decode([_pack(obj)])
    if kind == "drop_body":
        return  # either outcome is right; only ProtocolError may escape
    if kind == "extra_body" and any(needle == repr(f) for f in cls.model_fields):
        return  # an optional field left out (not `full`) given a value: may be valid
    assert isinstance(result, ProtocolError), (kind, obj)
    assert needle in str(result)


def test_heartbeat_with_deeply_nested_info_is_bounded() -> None:
    """Deep (but msgpack-legal) nesting inside a free-form field decodes or fails fast."""
    info: dict[str, Any] = {"leaf": 1}
    for _ in range(400):
        info = {"a": info}
    obj = _raw(ActorHeartbeat)
    obj["body"]["info"] = info
    result = _bounded_decode([_pack(obj)])
    assert isinstance(result, (Envelope, ProtocolError))


def _max_frame_of(junk: Any) -> bytes:
    """A valid envelope whose body carries `junk`, at most the frame limit."""
    obj = _raw()
    obj["body"]["junk"] = junk
    frame = _pack(obj)
    assert MAX_FRAME_BYTES - 200_000 < len(frame) <= MAX_FRAME_BYTES
    return frame


@pytest.mark.parametrize(
    ("junk", "refusal"),
    [
        ([[0] * 14] * 270_000, f"more than {MAX_ELEMENTS} elements"),
        ([[{}] * 1000] * 4000, f"more than {MAX_CONTAINERS} maps and arrays"),
        ([0] * 4_190_000, "exceeds max_array_len"),  # one array: refused at its header
        ([{}] * 4_190_000, "exceeds max_array_len"),
    ],
    ids=["small_arrays", "empty_maps", "zeros", "one_array_of_maps"],
)
def test_a_max_size_frame_of_many_elements_is_refused_by_its_budget(
    junk: Any, refusal: str
) -> None:
    """A 4 MiB envelope of 4M zeros took 0.55 s to check (five got the OMS hang-killed):
    the unpacker counts maps, arrays and elements and stops at a budget."""
    error = _decode_error(_max_frame_of(junk))
    assert refusal in error, error


def _densest(field: str, n: int) -> BaseModel:
    """`n` minimal orders (a snapshot) or positions (a positions reply)."""
    if field == "orders":
        order = build(OrderView, full=False)
        order = order.model_copy(update={"client_order_id": "c", "venue": "v", "symbol": "S"})
        return Snapshot(event_seq=1, orders=[order] * n)
    return Positions(source="oms", positions=[PositionView(venue="v", symbol="S", qty=1)] * n)


@pytest.mark.parametrize("field", ["orders", "positions"])
def test_the_densest_messages_we_send_fit_the_budgets_at_the_frame_limit(field: str) -> None:
    """A snapshot of minimal orders and a positions reply of minimal positions, each as
    big as a frame may be, decode (the budgets are sized for them)."""
    sender = Sender("oms", 1)
    one = len(sender.encode(_densest(field, 1))[0])  # type: ignore[arg-type]
    per_item = len(sender.encode(_densest(field, 2))[0]) - one  # type: ignore[arg-type]
    n = (MAX_FRAME_BYTES - one) // per_item
    frame = sender.encode(_densest(field, n))[0]  # type: ignore[arg-type]
    assert MAX_FRAME_BYTES - 1024 < len(frame) <= MAX_FRAME_BYTES  # array header grows
    assert len(getattr(decode([frame]).body, field)) == n


@pytest.mark.parametrize("key", [".", "..", ".x", "a."])
def test_a_refused_value_names_its_field_even_when_the_key_has_dots(key: str) -> None:
    """Found by hypothesis: an extra body field '.' holding bytes was named field ''."""
    obj = _raw(Stop)
    obj["body"][key] = b""
    error = _decode_error(_pack(obj))
    assert f"field {key!r}: a value of type bytes is not allowed" in error, error
    obj = _raw(ActorHeartbeat)
    obj["body"]["info"] = {key: [1, b""]}
    error = _decode_error(_pack(obj))
    assert f"field 'info': a value of type bytes is not allowed (at info.{key}.1)" in error
