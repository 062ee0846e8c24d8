"""The outgoing fast path (protocol.wire_out) is pydantic, only faster: `construct` stores
what `Model(**values)` stores (or leaves the values to it), `dump` writes what
`model_dump(mode="json", exclude={"type"})` writes, so the codec's bytes are the same."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from protocol import wire_out
from protocol.codec import Sender, encode
from protocol.messages import (
    Ack,
    Acks,
    ActorHeartbeat,
    ExecAck,
    ExecReport,
    ExecReports,
    OrderAck,
    OrderEvent,
    OrderList,
    OrderStatus,
    OrderView,
    OrdType,
    PlaceOrder,
    Positions,
    RiskCheck,
    RiskChecks,
    RiskVerdicts,
    Side,
    Snapshot,
    SubmitOrder,
    TimeInForce,
)
from protocol.venue_messages import OpenOrders, OrderStatusAnswer
from tests.protocol.samples import build

DERIVED = sorted(wire_out.BUILDERS, key=lambda m: m.__name__)
MESSAGES = [m for m in DERIVED if "type" in m.model_fields]


def _same(a: BaseModel, b: BaseModel) -> None:
    """Equal values of the same types, in the same order, with the same fields set."""
    assert type(a) is type(b)
    assert a.model_fields_set == b.model_fields_set
    assert list(a.__dict__) == list(b.__dict__)
    for (k, va), vb in zip(a.__dict__.items(), b.__dict__.values(), strict=True):
        assert type(va) is type(vb) and va == vb, (k, va, vb)
        if isinstance(va, BaseModel):
            _same(va, vb)
    assert a == b and repr(a) == repr(b)


def _values(model: BaseModel) -> dict[str, Any]:
    """The keyword arguments a sender would pass: the fields it set, as they are held."""
    return {k: v for k, v in model.__dict__.items() if k in model.model_fields_set}


def _old_bytes(body: BaseModel) -> bytes:
    env = Sender("t", 1).envelope(body)  # type: ignore[arg-type]
    head = {"v": env.version, "type": env.type, "sender": env.sender, "epoch": env.epoch,
            "seq": env.seq, "id": env.msg_id, "corr": env.corr_id, "ts_ns": env.ts_ns}  # fmt: skip
    packed = msgpack.packb(
        {**head, "body": body.model_dump(mode="json", exclude={"type"})}, use_bin_type=True
    )
    assert encode(env) == [packed]
    return packed


def test_the_hot_outgoing_messages_are_derived() -> None:
    hot = (OrderView, OrderEvent, OrderAck, RiskCheck, PlaceOrder, ExecAck)
    batches = (RiskChecks, RiskVerdicts, Acks, Ack)  # each per order, or a turn's orders
    lists = (OrderList, OpenOrders, Positions, Snapshot)  # a warm start's 10,000 orders
    for model in (*hot, *batches, *lists):
        assert model in wire_out.BUILDERS and model in wire_out.DUMPERS
    assert SubmitOrder not in wire_out.BUILDERS  # constrained text: pydantic's
    assert SubmitOrder in wire_out.DUMPERS  # ... but written as it is held (the client's)


WRITTEN_ONLY = sorted(set(wire_out.DUMPERS) - set(wire_out.BUILDERS), key=lambda m: m.__name__)


@pytest.mark.parametrize("full", [True, False], ids=["all_fields", "required_only"])
@pytest.mark.parametrize("cls", WRITTEN_ONLY, ids=lambda m: m.__name__)
def test_a_model_only_written_here_dumps_as_pydantic(cls: type[BaseModel], full: bool) -> None:
    """Constrained text keeps `construct` on pydantic, but its dump is pydantic's."""
    validated = build(cls, full=full)
    assert wire_out.dump(validated) == validated.model_dump(mode="json", exclude={"type"})
    _old_bytes(validated)


@pytest.mark.parametrize("full", [True, False], ids=["all_fields", "required_only"])
@pytest.mark.parametrize("cls", DERIVED, ids=lambda m: m.__name__)
def test_construct_and_dump_equal_pydantic(cls: type[BaseModel], full: bool) -> None:
    validated = build(cls, full=full)
    built = wire_out.construct(cls, **_values(validated))
    _same(built, validated)
    assert wire_out.dump(built) == validated.model_dump(mode="json", exclude={"type"})
    if "type" in cls.model_fields:
        _old_bytes(built)  # the codec writes the bytes it wrote through pydantic


_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None) | st.sampled_from(
    [Decimal("1E+30"), Decimal("1" * 30), Decimal("1E-70"), Decimal("-0"), Decimal("0.000")]
)
_ints = st.integers(-(2**63), 2**63 - 1)
_odd = (
    st.none() | _ints | st.text(max_size=5) | st.booleans() | _decimals | st.just(1.5)
    | st.lists(st.text(max_size=2), max_size=300) | st.just([]) | st.just({"k": 1, 2: 3})
)  # fmt: skip


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(
        [
            OrderView,
            RiskCheck,
            PlaceOrder,
            OrderEvent,
            ExecAck,
            OrderList,
            OrderStatusAnswer,
            RiskChecks,
            RiskVerdicts,
            Acks,
            Ack,
            ActorHeartbeat,
        ]
    ),  # fmt: skip
    st.booleans(),
    st.data(),
)
def test_construct_takes_only_what_validation_takes(
    cls: type[BaseModel], full: bool, data: st.DataObject
) -> None:
    """Values replaced by odd ones (out-of-bounds decimals, text for enums and decimals,
    ints for text, unknown fields): `construct` builds what `Model(**values)` builds, or
    raises the error it raises."""
    values = _values(build(cls, full=full))
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from([*cls.model_fields, "unknown"]))
        values[name] = data.draw(_odd)
    try:
        expected: BaseModel | ValidationError = cls(**copy.deepcopy(values))
    except ValidationError as exc:
        expected = exc
    if isinstance(expected, ValidationError):
        with pytest.raises(ValidationError) as got:
            wire_out.construct(cls, **values)
        assert got.value.errors(include_context=False) == expected.errors(include_context=False)
    else:
        built = wire_out.construct(cls, **values)
        _same(built, expected)
        if "type" in cls.model_fields and _packable(expected):
            _old_bytes(built)
        assert wire_out.dump(built) == expected.model_dump(mode="json", exclude={"type"})


def _packable(model: BaseModel) -> bool:
    """False for an int msgpack cannot write (validation turns Decimal(2**64) into one)."""
    try:
        msgpack.packb(model.model_dump(mode="json"))
    except OverflowError:
        return False
    return True


def test_an_order_event_built_from_held_values_is_the_validated_one() -> None:
    kw: dict[str, Any] = dict(
        client_order_id="c-1", venue="simA", symbol="AAPL", side=Side.BUY, qty=Decimal("1.50"),
        order_type=OrdType.LIMIT, price=Decimal("95.00"), status=OrderStatus.ACCEPTED,
        cum_qty=Decimal("0.5"), avg_px=Decimal("94.99"), ts_ns=12,
    )  # fmt: skip
    view = wire_out.construct(OrderView, **kw)
    event = wire_out.construct(OrderEvent, event_seq=3, order=view, fill_qty=Decimal("0.5"))
    _same(event, OrderEvent(event_seq=3, order=OrderView(**kw), fill_qty=Decimal("0.5")))
    assert event.order is view  # pydantic keeps a nested model instance as it is


def test_a_decimal_out_of_bounds_is_refused_as_validation_refuses_it() -> None:
    with pytest.raises(ValidationError, match="exponent"):
        wire_out.construct(
            RiskCheck, client_order_id="c", venue="v", symbol="s", side=Side.BUY,
            qty=Decimal("1E-70"), order_type=OrdType.MARKET,
        )  # fmt: skip


def test_a_list_is_copied_as_validation_copies_it() -> None:
    ids = ["e1"]
    ack = wire_out.construct(ExecAck, venue="simA", exec_ids=ids)
    ids.append("e2")
    assert ack.exec_ids == ["e1"]
    views = [build(OrderView, full=True)]
    page = wire_out.construct(OrderList, orders=views)
    views.append(build(OrderView, full=False))
    assert len(page.orders) == 1 and page.orders[0] is views[0]  # kept, as validation keeps it


def test_a_list_of_models_holding_anything_else_is_validated_by_pydantic() -> None:
    """A map where an OrderView goes (validation makes one of it), or another model
    (refused): not taken as it is."""
    view = build(OrderView, full=True)
    as_map = view.model_dump()
    page = wire_out.construct(OrderList, orders=[view, as_map])
    _same(page, OrderList(orders=[view, as_map]))
    assert type(page.orders[1]) is OrderView
    with pytest.raises(ValidationError):
        wire_out.construct(OrderList, orders=[build(RiskCheck, full=True)])
    assert wire_out.dump(page) == page.model_dump(mode="json", exclude={"type"})


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda m: m.__name__)
def test_the_sender_writes_the_bytes_of_the_envelope_it_no_longer_builds(
    cls: type[BaseModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Sender.encode` and `encode_body` (no Envelope built): `encode(envelope(body))`."""
    import protocol.codec as codec

    monkeypatch.setattr(codec.time, "time_ns", lambda: 1_700_000_000_123_456_789)
    body = build(cls)
    old, new = Sender("oms", 3), Sender("oms", 3)
    assert new.encode(body, "c1") == encode(old.envelope(body, "c1"))
    msg_id, frames = new.encode_body(body.type, wire_out.dump(body))
    env = old.envelope(body)
    assert (msg_id, frames) == (env.msg_id, encode(env))


_printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=70)


@settings(max_examples=400, deadline=None)
@given(
    coid=_printable, venue=_printable, symbol=_printable,
    side=st.sampled_from(list(Side)), order_type=st.sampled_from(list(OrdType)),
    qty=_decimals, price=st.none() | _decimals, tif=st.sampled_from(list(TimeInForce)),
)  # fmt: skip
def test_a_submit_is_written_as_pydantic_writes_it(
    coid: str, venue: str, symbol: str, side: Side, order_type: OrdType,
    qty: Decimal, price: Decimal | None, tif: TimeInForce,
) -> None:  # fmt: skip
    """Every submit a client validates (old: `model_dump`; new: the derived dumper) is
    written the same: the same map, the same bytes."""
    try:
        body = SubmitOrder(client_order_id=coid, venue=venue, symbol=symbol, side=side, qty=qty,
                           order_type=order_type, price=price, tif=tif)  # fmt: skip
    except ValidationError:
        return
    assert wire_out.dump(body) == body.model_dump(mode="json", exclude={"type"})
    _old_bytes(body)


def test_a_batch_of_execution_bodies_is_written_as_pydantic_writes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`ExecReports` (a connector's executions of one FIX read) is written without
    pydantic when its bodies are flat maps of plain values (what `dump(ExecReport)`
    gives), a copy of each; a body holding anything else (a Decimal, a nested map, bytes,
    a str subclass) goes to pydantic, which writes it its way. Found by a profile of the
    connector: each batch went through pydantic's serializer (~2 us an execution)."""
    body = wire_out.dump(build(ExecReport, full=True))
    flat = ExecReports.model_construct(venue="simA", reports=[body, dict(body)])
    expected = flat.model_dump(mode="json", exclude={"type"})
    odd = [{"x": Decimal("1.5")}, {"x": {"nested": 1}}, {"x": b"raw"}, {"x": Side.BUY}]
    others = [ExecReports.model_construct(venue="v", reports=[body, o]) for o in odd]
    written = [o.model_dump(mode="json", exclude={"type"}) for o in others]
    assert [wire_out.dump(o) for o in others] == written
    monkeypatch.setattr(ExecReports, "model_dump", None)  # pydantic's writer is not asked
    got = wire_out.dump(flat)
    assert got == expected and list(got) == list(expected)
    assert got["reports"][0] is not body  # a copy, as pydantic's


_free = st.recursive(
    st.none() | _ints | st.text(max_size=3) | st.booleans() | st.floats() | _decimals
    | st.binary(max_size=3) | st.sampled_from(list(Side)) | st.just(-0.0),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner)
    | st.dictionaries(st.text(max_size=2) | st.integers(0, 3) | st.sampled_from(list(Side)),
                      inner, max_size=3),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=800, deadline=None)
@given(_free, st.floats())
def test_free_form_values_are_written_as_pydantic_writes_them(value: Any, lag: float) -> None:
    """A heartbeat's `info` and an Ack's `data` (free-form maps) and a float field: written
    without pydantic when they are plain JSON (a deep copy), by pydantic otherwise (a
    Decimal, a tuple, bytes, an enum, an int key, an infinity, NaN), to the same bytes.
    Found by a profile of the OMS: every batch to risk and every heartbeat went through
    pydantic's serializer (no dumper for a bounded list, a float or a free-form map)."""
    for body in (
        ActorHeartbeat.model_construct(loop_lag_s=lag, info={"v": value}),
        Ack.model_construct(ref="r", data={"v": value}),
    ):
        try:
            expected: Any = msgpack.packb(body.model_dump(mode="json", exclude={"type"}))
        except Exception as exc:  # noqa: BLE001 - pydantic's refusal is the answer
            expected = type(exc)
        try:
            got: Any = msgpack.packb(wire_out.dump(body))
        except Exception as exc:  # noqa: BLE001
            got = type(exc)
        assert got == expected
    plain = {"a": [1, {"b": None}], "c": 1.5}
    out = wire_out.dump(Ack.model_construct(ref="r", data=plain))
    assert out["data"] == plain and out["data"]["a"] is not plain["a"]  # a copy


def test_a_bounded_list_is_taken_and_refused_as_validation_does() -> None:
    """`Acks.refs` holds 1 to 256 ids: `construct` keeps them (a copy) or leaves an empty or
    oversized list to pydantic's refusal."""
    refs = ["a", "b"]
    built = wire_out.construct(Acks, refs=refs)
    _same(built, Acks(refs=refs))
    assert built.refs is not refs
    for bad in ([], ["x"] * 257, ["x", 1]):
        with pytest.raises(ValidationError):
            wire_out.construct(Acks, refs=bad)
