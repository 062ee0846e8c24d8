"""Rolling upgrades (`protocol.compat`): a client reads what a newer core sends, the fields
its schema lacks ignored (counted, logged once), its known fields validated as strictly as
before; what the core receives stays strict."""

from __future__ import annotations

import enum
import logging
import types
import typing
import uuid
from collections.abc import Sequence
from typing import Any, Literal, Union

import annotated_types
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from protocol import compat
from protocol.codec import decode, decode_item
from protocol.event_batch import read_events
from protocol.exceptions import ProtocolError
from protocol.wire_out import dump
from tests.protocol.newer_core import NEWER, filled_event, frame, newer
from tests.protocol.samples import MESSAGE_CLASSES, build, message_type

# --------------------------------------------------------------------------- the core stays strict


def test_what_the_core_receives_stays_strict() -> None:
    """A request to the OMS with an unknown field is refused, also by a tolerant reading
    (not a type a client reads); so is an unknown field in what risk reads of the stream."""
    submit = {"client_order_id": "c", "venue": "simA", "symbol": "AAPL", "side": "BUY",
              "qty": "1", "order_type": "LIMIT", "price": "95", "extra": 1}  # fmt: skip
    for tolerant in (False, True):
        with pytest.raises(ProtocolError, match="extra"):
            decode(frame("submit_order", submit), tolerant=tolerant)
        with pytest.raises(ProtocolError, match="extra"):
            decode_item("submit_order", submit, tolerant=tolerant)
    batch = read_events(frame("order_events", {"events": [newer(dump(filled_event()))]}))
    assert batch is not None
    with pytest.raises(ProtocolError, match="bust_ref"):
        batch[1][0].decode()
    with pytest.raises(ProtocolError, match="bust_ref"):
        decode(frame("order_event", newer(dump(filled_event()))))


# --------------------------------------------------------------------------- known fields


BAD = [
    (("order", "qty"), "abc"), (("order", "qty"), "1e999999999"), (("order", "qty"), 1.5),
    (("order", "status"), "BUSTED"), (("order", "side"), 1), (("event_seq",), "seven"),
    (("fill_px",), "NaN"), (("order",), None), (("order", "client_order_id"), None),
]  # fmt: skip


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(("where", "value"), BAD)
def test_a_malformed_known_field_is_refused_as_before(
    where: tuple[str, ...], value: Any, fast: bool
) -> None:
    """Beside a newer core's fields, a bad value of a known field (a new enum member
    among them: an older client cannot tell what it means) is refused with the error a
    strict reading of it alone gives."""
    body = dump(filled_event())
    target = body
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    with pytest.raises(ProtocolError) as strict:
        decode(frame("order_event", body), fast=fast)
    later = newer(body, "order") if isinstance(body["order"], dict) else newer(body)
    with pytest.raises(ProtocolError) as tolerant:
        decode(frame("order_event", later), fast=fast, tolerant=True)
    assert str(tolerant.value) == str(strict.value)


def test_a_refusal_of_a_clients_reading_is_logged_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newer core's enum value is not ignored: the strategy's log says why its messages
    are refused, once, however many come."""
    monkeypatch.setattr(compat, "_refused", set())
    body = dump(filled_event())
    body["order"]["status"] = "BUSTED"
    caplog.set_level(logging.WARNING, "tradepulse.client")
    for _ in range(3):
        with pytest.raises(ProtocolError):
            decode(frame("order_event", body), tolerant=True)
    (record,) = [r.getMessage() for r in caplog.records if "wire_refused" in r.getMessage()]
    assert "order.status" in record


def test_an_unknown_fields_values_must_still_be_what_the_encoder_writes() -> None:
    body = {**dump(filled_event()), "raw": b"\x00"}
    for fast in (True, False):
        with pytest.raises(ProtocolError, match="bytes"):
            decode(frame("order_event", body), fast=fast, tolerant=True)


CLIENT_CLASSES = [c for c in MESSAGE_CLASSES if message_type(c) in compat.CLIENT_READS]
_NAME = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)
_PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
    max_leaves=6,
)


@pytest.mark.parametrize("cls", CLIENT_CLASSES, ids=message_type)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_newer_cores_message_reads_as_the_message_it_knows(
    cls: type[BaseModel], data: st.DataObject
) -> None:
    """Every message a client reads, with unknown fields at the top and in every map of a
    model it holds: the tolerant reading equals the strict reading without them, on both
    paths."""
    msg = build(cls, full=data.draw(st.booleans()))
    body = dump(msg)
    strict = decode(frame(message_type(cls), body)).body
    extra = data.draw(st.dictionaries(_NAME.map(lambda n: "x_" + n), _PLAIN, min_size=1))
    nested = [n for n, v in body.items() if n in _MODEL_FIELDS and v]
    later = {**newer(body, *nested), **extra}
    for fast in (True, False):
        assert decode(frame(message_type(cls), later), fast=fast, tolerant=True).body == strict


_MODEL_FIELDS = {"order", "orders", "positions", "cut"}


def test_an_unknown_field_is_counted_every_time_and_logged_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compat, "_counts", {})  # this test's names only (at most MAX_NAMES)
    name = f"x_{uuid.uuid4().hex[:8]}"
    body = dump(filled_event())
    body["order"][name] = 1
    caplog.set_level(logging.WARNING, "tradepulse.client")
    for fast in (True, False, True):
        decode(frame("order_event", body), fast=fast, tolerant=True)
    path = f"order_event.order.{name}"
    assert compat.unknown_fields()[path] == 3
    logged = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert logged == [f"wire_unknown_field {path}: ignored (a newer core's field)"]


def test_the_tolerant_fast_path_is_taken_for_a_newer_event() -> None:
    """Not the pydantic path: a newer core costs a client a second msgspec decode."""
    raw = msgspec.msgpack.encode({**dump(filled_event()), **NEWER})
    assert (
        compat.decode_body("order_event", raw)
        == decode(frame("order_event", dump(filled_event()))).body
    )


# --------------------------------------------------------------------------- the rule ahead

# The required fields of every model a client reads (at any depth). A field added to one of
# them must have a default (docs/architecture.md "Compatibility"): an older core, or an
# older client's tests, leave it out. Removing or renaming a field breaks older clients.
REQUIRED = {
    "RequestRejected": {"reason", "code"},
    "ControlReply": {"status"},
    "Replies": {"replies"},
    "OrderAck": {"order"},
    "OrderView": {"qty", "status", "symbol", "client_order_id", "venue", "order_type", "side"},
    "OrderList": {"orders"},
    "Positions": {"positions", "source"},
    "PositionView": {"qty", "venue", "symbol"},
    "ExecCut": {"exec_seq", "connector_epoch"},
    "OrderEvent": {"event_seq", "order"},
    "OrderEvents": {"events"},
    "StreamEvent": {"event_seq", "event"},
    "Snapshot": {"event_seq", "orders"},
}


# The members of every enum a client reads. A new one is not compatible (docs/architecture.md
# "Compatibility"): an older client refuses the message that carries it. Add it here only
# with a runbook note that clients upgrade first.
ENUMS = {
    "ErrorCode": {"INVALID_ORDER", "RISK_REJECTED", "KILL_SWITCH", "VENUE_DOWN", "NOT_READY",
                  "UNKNOWN_ORDER", "UNKNOWN_VENUE", "INVALID_STATE", "TIMEOUT", "OUT_OF_SESSION",
                  "VENUE_REFUSED", "BAD_REQUEST", "NOT_ALLOWED", "JOURNAL_UNAVAILABLE",
                  "OUTSIDE_TRADING_WINDOW", "INTAKE_PAUSED", "INTERNAL"},
    "Side": {"BUY", "SELL"},
    "OrdType": {"MARKET", "LIMIT"},
    "TimeInForce": {"DAY", "GTC", "IOC", "FOK"},
    "OrderStatus": {"PENDING_RISK", "PENDING_SUBMIT", "ACCEPTED", "PARTIALLY_FILLED", "FILLED",
                    "PENDING_CANCEL", "CANCELLED", "PENDING_REPLACE", "REJECTED", "EXPIRED",
                    "UNKNOWN"},
}  # fmt: skip


def _models(
    model: type[BaseModel], into: dict[str, type[BaseModel]], enums: dict[str, set[str]]
) -> None:
    if model.__name__ in into:
        return
    into[model.__name__] = model
    for info in model.model_fields.values():
        for a in (info.annotation, *typing.get_args(info.annotation)):
            for b in (a, *typing.get_args(a)):
                if isinstance(b, type) and issubclass(b, BaseModel):
                    _models(b, into, enums)
                elif isinstance(b, type) and issubclass(b, enum.Enum):
                    enums[b.__name__] = {m.value for m in b}


def test_client_read_messages_only_gain_fields_with_defaults() -> None:
    models: dict[str, type[BaseModel]] = {}
    enums: dict[str, set[str]] = {}
    for cls in CLIENT_CLASSES:
        _models(cls, models, enums)
    required = {
        name: {f for f, info in m.model_fields.items() if info.is_required()}
        for name, m in models.items()
    }
    assert required == REQUIRED, "a new field of a message clients read needs a default"
    for name, m in models.items():
        for field in REQUIRED[name]:
            assert field in m.model_fields, f"{name}.{field} removed: older clients need it"
    assert enums == ENUMS, "a new enum member clients read: older clients refuse it (see ENUMS)"


# Every field of every model a client reads, with its type as validation reads it. An older
# client reads a field a newer core stops sending (removed, or renamed: the new name is an
# unknown field, ignored) as its default, silently (`cum_qty` renamed: every order unfilled;
# `external` removed: every order the client's own); it refuses one of another type, bounds
# or literal values. So a field stays, as it is; a new one (with a default) is added here.
FIELDS = {
    "ControlReply": {
        "status": "Literal['error', 'ok']",
        "reason": "str",
        "data": "dict[str, Any]",
    },
    "ExecCut": {
        "connector_epoch": "int",
        "exec_seq": "int",
        "since": "int",
        "oms_epoch": "NoneType | int",
    },
    "OrderAck": {
        "order": "OrderView",
        "duplicate": "bool",
    },
    "OrderEvent": {
        "event_seq": "int",
        "order": "OrderView",
        "fill_qty": "Decimal | NoneType",
        "fill_px": "Decimal | NoneType",
        "fill_fee_base": "Decimal | NoneType",
        "fill_fee_quote": "Decimal | NoneType",
    },
    "OrderEvents": {
        "events": "list[dict[str, Any]] [MinLen(min_length=1), MaxLen(max_length=128)]",
    },
    "OrderList": {
        "orders": "list[OrderView]",
        "next_offset": "NoneType | int",
        "event_seq": "NoneType | int",
    },
    "OrderView": {
        "client_order_id": "str",
        "venue": "str",
        "symbol": "str",
        "side": "Side",
        "qty": "Decimal",
        "order_type": "OrdType",
        "price": "Decimal | NoneType",
        "tif": "TimeInForce",
        "status": "OrderStatus",
        "cl_ord_id": "str",
        "venue_order_id": "str",
        "cum_qty": "Decimal",
        "avg_px": "Decimal",
        "reason": "str",
        "external": "bool",
        "ts_ns": "int",
        "pending_qty": "Decimal | NoneType",
    },
    "PositionView": {
        "venue": "str",
        "symbol": "str",
        "qty": "Decimal",
        "avg_px": "Decimal",
        "realized_pnl": "Decimal",
        "cost_known": "bool",
        "unknown_cost_pnl": "Decimal",
        "unknown_qty": "Decimal | NoneType",
        "last_fill_ns": "int",
        "day_start_ns": "int",
        "day_start_pnl": "Decimal",
        "last_px": "Decimal | NoneType",
    },
    "Positions": {
        "source": "str",
        "venue": "NoneType | str",
        "positions": "list[PositionView]",
        "event_seq": "NoneType | int",
        "cut": "ExecCut | NoneType",
    },
    "Replies": {
        "replies": "list[dict[str, Any]] [MinLen(min_length=1), MaxLen(max_length=256)]",
    },
    "RequestRejected": {
        "code": "ErrorCode",
        "reason": "str",
        "field": "NoneType | str",
    },
    "Snapshot": {
        "event_seq": "int",
        "orders": "list[OrderView]",
    },
    "StreamEvent": {
        "event_seq": "int",
        "event": "str",
        "data": "dict[str, Any]",
    },
}  # fmt: skip


def _shape(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """A field's type as an older client's validation reads it: the types, literal values
    and length or number bounds (a decimal's validators are the same for every `Dec`)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    bounds = [m for m in metadata if isinstance(m, annotated_types.BaseMetadata)]
    if origin is typing.Annotated:
        return _shape(args[0], [*annotation.__metadata__, *metadata])
    if origin in (Union, types.UnionType):
        text = " | ".join(sorted(_shape(a) for a in args))
    elif origin is Literal:
        text = f"Literal[{', '.join(repr(a) for a in sorted(args))}]"
    elif origin is not None:
        text = f"{origin.__name__}[{', '.join(_shape(a) for a in args)}]"
    else:
        text = "Any" if annotation is Any else getattr(annotation, "__name__", repr(annotation))
    return f"{text} {bounds}" if bounds else text


def test_client_read_fields_are_never_removed_renamed_or_retyped() -> None:
    models: dict[str, type[BaseModel]] = {}
    for cls in CLIENT_CLASSES:
        _models(cls, models, {})
    shapes = {
        name: {
            f: _shape(i.annotation, i.metadata) for f, i in m.model_fields.items() if f != "type"
        }
        for name, m in models.items()
    }
    for name, fields in FIELDS.items():
        for field, shape in fields.items():
            assert shapes.get(name, {}).get(field) == shape, (
                f"{name}.{field} removed, renamed or retyped: older clients misread or refuse it"
            )
    assert shapes == FIELDS, "a new field of a message clients read: add it to FIELDS"
