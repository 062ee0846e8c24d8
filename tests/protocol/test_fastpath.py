"""The codec's msgspec fast path (protocol.fastpath) is the pydantic path, only faster:
derived field for field from the models, the same value for every frame it accepts, and
no frame accepted that the full path refuses. The encoder writes the same bytes."""

from __future__ import annotations

import copy
import math
import typing
from decimal import Decimal
from typing import Any

import msgpack
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from protocol import fastpath
from protocol.codec import PROTOCOL_VERSION, Envelope, Sender, decode, encode
from protocol.domain import OrderStatus, OrdType, Side
from protocol.exceptions import ProtocolError
from protocol.messages import ActorHeartbeat, OrderEvent, SubmitOrder
from tests.protocol.samples import build, message_type, mutate_field, odd_values

HOT = list(fastpath.HOT)


def _frame(model: BaseModel) -> bytes:
    return encode(Sender("t", 1).envelope(model))[0]  # type: ignore[arg-type]


def _full(raw: bytes) -> Envelope | ProtocolError:
    try:
        return decode([raw], fast=False)
    except ProtocolError as exc:
        return exc


def _fast(raw: bytes) -> Envelope | None:
    """What the fast path returns, None where it leaves the frame to the full path."""
    try:
        hot = fastpath.decode_fast(raw)
    except Exception:  # noqa: BLE001 - any failure: the full path decides
        return None
    if hot is None or hot[0].v != PROTOCOL_VERSION:
        return None
    return decode([raw])


def _same(a: BaseModel, b: BaseModel) -> None:
    """Equal values of equal types in the same order, with the same fields set."""
    assert type(a) is type(b)
    assert repr(a) == repr(b)
    assert a.model_fields_set == b.model_fields_set
    for (ka, va), (kb, vb) in zip(a.__dict__.items(), b.__dict__.items(), strict=True):
        assert ka == kb and type(va) is type(vb), (ka, va, vb)
        if isinstance(va, BaseModel):
            _same(va, vb)
    assert a.model_dump(mode="json") == b.model_dump(mode="json")


def test_every_hot_message_has_a_fast_path() -> None:
    """Each hot model is derived (no construct it cannot mirror), field for field."""
    assert set(fastpath.DECODERS) == {message_type(m) for m in HOT}
    for model in HOT:
        struct, _ = fastpath.derive(model)
        assert struct.__struct_fields__ == tuple(n for n in model.model_fields if n != "type")


def test_a_model_with_a_construct_it_cannot_mirror_gets_no_fast_path() -> None:
    from protocol.messages import KillSwitchCommand, ListOrders

    for model in (KillSwitchCommand, ListOrders):  # a model validator; number bounds
        with pytest.raises(fastpath.Unsupported):
            fastpath.derive(model)


@pytest.mark.parametrize("full", [True, False], ids=["all_fields", "required_only"])
@pytest.mark.parametrize("cls", HOT, ids=message_type)
def test_fast_decode_equals_the_full_decode(cls: type[BaseModel], full: bool) -> None:
    raw = _frame(build(cls, full=full))
    fast, slow = _fast(raw), _full(raw)
    assert fast is not None and isinstance(slow, Envelope)
    assert (fast.type, fast.sender, fast.seq, fast.msg_id, fast.ts_ns) == (
        slow.type, slow.sender, slow.seq, slow.msg_id, slow.ts_ns,
    )  # fmt: skip
    _same(fast.body, slow.body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("symbol", "AAPL\n"),  # Python's `$` matches before a final newline, pydantic's not
        ("qty", "0" * 101),  # a plain decimal, but over the 100 characters of a decimal text
        ("qty", 1.5),  # decimals never travel as floats
        ("side", "buy"),
        ("client_order_id", ""),
        ("venue", "x" * 33),
    ],
)
def test_what_pydantic_refuses_the_fast_path_does_not_take(field: str, value: Any) -> None:
    obj = msgpack.unpackb(_frame(build(SubmitOrder)))
    obj["body"][field] = value
    raw = msgpack.packb(obj)
    assert _fast(raw) is None
    assert isinstance(_full(raw), ProtocolError)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_non_finite_float_field_is_refused_by_both_paths(value: float) -> None:
    """A float field (an actor's loop lag) of inf or nan: the full path's shape check
    refuses it, so the fast path must not take it (found by the hypothesis test below)."""
    obj = msgpack.unpackb(_frame(build(ActorHeartbeat)))
    obj["body"]["loop_lag_s"] = value
    raw = msgpack.packb(obj)
    assert _fast(raw) is None
    assert isinstance(_full(raw), ProtocolError)


@pytest.mark.parametrize("value", [1, "1e2", " 1", "+1", ".5", "1_000"])
def test_a_decimal_pydantic_takes_in_another_form_is_left_to_it(value: Any) -> None:
    """pydantic takes these (as Decimal(value)); the fast path only the plain form."""
    obj = msgpack.unpackb(_frame(build(SubmitOrder)))
    obj["body"]["qty"] = value
    raw = msgpack.packb(obj)
    assert _fast(raw) is None
    full = _full(raw)
    assert isinstance(full, Envelope) and isinstance(decode([raw]).body, SubmitOrder)
    _same(decode([raw]).body, full.body)


# --------------------------------------------------------------------------- property tests

_DECIMAL_TEXT = st.from_regex(r"\A[ +-]?[0-9]{0,4}(\.[0-9]{0,4})?([eE][+-]?[0-9]{1,3})?\n?\Z")
_values = odd_values(
    st.binary(max_size=4), _DECIMAL_TEXT, st.sampled_from([s.value for s in Side]),
    st.sampled_from(["AAPL\n", " AAPL", "AAPL ", "A" * 33, "x" * 101, "0" * 101, "NaN", "1E+999"]),
    max_leaves=8,
)  # fmt: skip


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(HOT), st.booleans(), st.data())
def test_the_fast_path_never_accepts_more_nor_decodes_differently(
    cls: type[BaseModel], full: bool, data: st.DataObject
) -> None:
    """A valid hot message with fields replaced by odd values (numbers for text, floats and
    odd text for decimals, bools for ints, bytes, nesting, unknown fields, dropped fields):
    whatever the fast path accepts, the full path accepts with the same value."""
    obj = msgpack.unpackb(_frame(build(cls, full=full)))
    body = obj["body"]
    for _ in range(data.draw(st.integers(1, 3))):
        action = data.draw(st.sampled_from(["replace", "drop", "add", "header"]))
        if action == "header":
            obj[data.draw(st.sampled_from(sorted(obj)))] = data.draw(_values)
        else:
            mutate_field(body, action, data, _values)
    raw = msgpack.packb(obj)
    fast, slow = _fast(raw), _full(raw)
    if fast is not None:
        assert isinstance(slow, Envelope), slow
        _same(fast.body, slow.body)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _json_values))
def test_the_encoder_writes_the_bytes_msgpack_wrote(info: dict[str, Any]) -> None:
    """msgspec's encoder replaced msgpack.packb(use_bin_type=True): the same bytes."""
    env = Sender("t", 1).envelope(
        ActorHeartbeat.model_construct(loop_lag_s=0.5, info=copy.deepcopy(info))
    )
    old = msgpack.packb(
        {"v": env.version, "type": env.type, "sender": env.sender, "epoch": env.epoch,
         "seq": env.seq, "id": env.msg_id, "corr": env.corr_id, "ts_ns": env.ts_ns,
         "body": env.body.model_dump(mode="json", exclude={"type"})},
        use_bin_type=True,
    )  # fmt: skip
    assert encode(env) == [old]


def test_decimals_are_cached_once_checked() -> None:
    """The cache holds checked values only: an out-of-bounds decimal is never cached."""
    assert fastpath._decimal("95.00") == Decimal("95.00")
    with pytest.raises(ValueError):
        fastpath._decimal("1" * 30)
    assert "1" * 30 not in fastpath._DECIMALS


def test_an_event_decodes_through_the_fast_path() -> None:
    raw = _frame(build(OrderEvent))
    assert fastpath.decode_fast(raw) is not None
    assert msgspec.msgpack.decode(raw)["type"] == "order_event"


# --------------------------------------------------------------------------- lists of models


def _open_orders(n: int) -> bytes:
    from protocol.venue_messages import ExecCut, OpenOrders, VenueOrder

    orders = [
        VenueOrder(
            cl_ord_id=f"c{i}", venue_order_id=f"v{i}" if i % 3 else "", symbol="AAPL",
            side=Side.BUY if i % 2 else Side.SELL, order_qty=Decimal("10"),
            price=None if i % 5 == 0 else Decimal(f"99.{i % 100:02d}"),
            status=OrderStatus.ACCEPTED if i % 7 else OrderStatus.PARTIALLY_FILLED,
            cum_qty=Decimal(i % 7), leaves_qty=Decimal(10 - i % 7),
        )
        for i in range(n)
    ]  # fmt: skip
    return _frame(
        OpenOrders(venue="simA", orders=orders, cut=ExecCut(connector_epoch=1, exec_seq=n))
    )


def test_a_venues_open_orders_decode_through_the_fast_path_as_through_pydantic() -> None:
    """A warm start's mass status: 10,000 VenueOrders in one OpenOrders, each item built
    as pydantic builds it (values, types, fields set), the cut too."""
    raw = _open_orders(10_000)
    assert fastpath.decode_fast(raw) is not None
    fast, slow = _fast(raw), _full(raw)
    assert fast is not None and isinstance(slow, Envelope)
    _same(fast.body, slow.body)
    for a, b in zip(fast.body.orders, slow.body.orders, strict=True):  # type: ignore[attr-defined]
        _same(a, b)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("order_qty", 1.5), ("price", "1e2"), ("side", "buy"), ("status", "DONE"),
        ("cl_ord_id", b"c1"), ("extra", 1), ("symbol", None), ("cum_qty", "0" * 101),
    ],
)  # fmt: skip
def test_an_odd_value_inside_a_listed_order_is_left_to_the_full_path(
    field: str, value: Any
) -> None:
    """One item of the list with a value the fast path does not vouch for: the full path
    decides (it refuses all of these but "1e2", which it reads as Decimal("1E+2"))."""
    obj = msgpack.unpackb(_open_orders(3))
    obj["body"]["orders"][1][field] = value
    raw = msgpack.packb(obj, use_bin_type=True)
    assert _fast(raw) is None
    slow = _full(raw)
    assert isinstance(slow, ProtocolError) == (field != "price"), slow


def test_a_page_of_the_oms_orders_decodes_through_the_fast_path_as_through_pydantic() -> None:
    """Risk's exposure rebuild reads the OMS's open orders in pages of 10,000 OrderViews."""
    from protocol.messages import OrderList, OrderView

    views = [
        OrderView(
            client_order_id=f"c{i}", venue="simA", symbol="AAPL", side=Side.BUY,
            qty=Decimal("10"), order_type=OrdType.LIMIT,
            price=None if i % 5 == 0 else Decimal(f"99.{i % 100:02d}"),
            status=OrderStatus.ACCEPTED, cl_ord_id=f"k{i}", cum_qty=Decimal(i % 7),
            ts_ns=i,
        )
        for i in range(10_000)
    ]  # fmt: skip
    raw = _frame(OrderList(orders=views, next_offset=None, event_seq=12))
    fast, slow = _fast(raw), _full(raw)
    assert fast is not None and isinstance(slow, Envelope)
    for a, b in zip(fast.body.orders, slow.body.orders, strict=True):  # type: ignore[attr-defined]
        _same(a, b)
    _same(fast.body, slow.body)


def test_a_list_longer_than_the_fast_paths_bound_is_left_to_the_full_path() -> None:
    """Over `MAX_MODEL_ITEMS` items the full path's budget decides (here: it accepts)."""
    raw = _open_orders(fastpath.MAX_MODEL_ITEMS + 1)
    assert _fast(raw) is None
    assert isinstance(_full(raw), Envelope)


def test_the_bound_on_a_list_keeps_the_full_paths_budget() -> None:
    """For each hot message with a list of models: its lists at the fast path's bounds, of
    items with every field present, and its other fields, stay inside the codec's element
    and container budget (so the fast path never takes a message the full path refuses)."""
    from protocol.codec import MAX_CONTAINERS, MAX_ELEMENTS

    checked = 0
    for model in HOT:
        elements, containers = 9 + len(model.model_fields), 2
        for info in model.model_fields.values():
            origin, args = typing.get_origin(info.annotation), typing.get_args(info.annotation)
            models = [a for a in (info.annotation, *args) if isinstance(a, type)]
            models = [a for a in models if issubclass(a, BaseModel)]
            if origin is list and models:
                elements += fastpath.MAX_MODEL_ITEMS * (1 + len(models[0].model_fields))
                containers += 1 + fastpath.MAX_MODEL_ITEMS
                checked += 1
            elif origin in (list, dict):  # text lists and plain maps: their own bound
                elements += fastpath.MAX_PLAIN_ITEMS
                containers += fastpath.MAX_PLAIN_ITEMS
            elif models:  # one nested model (flat in every hot message)
                elements += len(models[0].model_fields)
                containers += 1
        assert elements < MAX_ELEMENTS and containers < MAX_CONTAINERS, model
    assert checked == 4  # OpenOrders, OrderList, RiskChecks, RiskVerdicts
