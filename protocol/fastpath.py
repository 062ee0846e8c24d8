"""The codec's fast path: msgspec decoders for the hot messages, derived at import from
the pydantic models (the one definition of every message).

A pydantic decode costs 8-38 us per message (an order crosses about ten process
boundaries); msgspec parses and type-checks the same msgpack in C. For each hot message
type, a msgspec Struct is derived field by field from the model: the same names, types,
string lengths and patterns, enums and literals; every field that may be missing is
`UNSET` there, and the model's own default fills it. Only constructs whose meaning is the
same in both (and checked by tests/protocol/test_fastpath.py) are derived; a model with
anything else (a validator, a number bound, `Any`) gets no fast path.

The fast path never accepts what pydantic refuses, and never returns another value: it
is narrower. msgspec is strict where pydantic is lax (an int where a bool is expected, a
float for an int, bytes for text); a decimal is taken only in its plain form
(`-?[0-9]+(.[0-9]+)?`, then the same `check_decimal`), free-form maps only when they hold
plain values (text keys, text, numbers, booleans, nil, finite floats, shallow and small).
Anything else raises inside `decode_fast`, and the caller decodes the frame again with
the full path, whose refusal (or acceptance) is the answer. The result is built with
`model_construct` from values equal to what validation yields, with the same fields set.
"""

from __future__ import annotations

import enum
import math
import os
import re
import sys
import types
import typing
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final, Literal, Union

import msgspec
from annotated_types import MaxLen, MinLen
from pydantic import BaseModel

from protocol.domain import MAX_DECIMAL_TEXT, Dec, check_decimal
from protocol.fastpath_build import straight_build
from protocol.messages import (
    Ack,
    Acks,
    ActorHeartbeat,
    CancelOnVenue,
    CancelOrder,
    ExecAck,
    ExecReport,
    ExecReports,
    Message,
    OpenOrders,
    OrderAck,
    OrderEvent,
    OrderEvents,
    OrderList,
    PlaceOrder,
    Replies,
    RequestRejected,
    Requests,
    RiskCheck,
    RiskChecks,
    RiskVerdict,
    RiskVerdicts,
    StreamEvent,
    SubmitOrder,
    SubmitOrders,
    VenueStateChanged,
)

# TP_WIRE_FASTPATH=0: every decode through pydantic and no peeking (this module off), for an
# A/B measurement (`TP_WIRE_FASTPATH=0 make bench-quick`) or if it were ever suspect
ENABLED: Final = os.environ.get("TP_WIRE_FASTPATH", "1") != "0"
HOT: Final[tuple[type[BaseModel], ...]] = (
    SubmitOrder, OrderAck, OrderEvent, CancelOrder, RequestRejected, RiskCheck, RiskVerdict,
    RiskChecks, RiskVerdicts, PlaceOrder, CancelOnVenue, ExecReport, ExecReports, ExecAck,
    ActorHeartbeat, Ack, Acks, Requests, StreamEvent, VenueStateChanged, OpenOrders, OrderList,
    SubmitOrders, Replies, OrderEvents,
)  # fmt: skip
MAX_PLAIN_DEPTH: Final = 8  # free-form maps deeper than this take the full path
MAX_PLAIN_ITEMS: Final = 4096  # and so do those (and lists) with more elements
_DEC_META: Final = typing.get_args(Dec)[1:]  # Dec's validators and serializer, by identity
_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")
_DECIMALS: dict[str, Decimal] = {}  # text -> checked Decimal (immutable: safe to share)
_DECIMALS_MAX: Final = 8192


class Unsupported(TypeError):
    """A model construct the fast path does not derive (that model keeps the full path)."""


class _Header(msgspec.Struct, forbid_unknown_fields=True):
    v: int
    type: str
    sender: str
    epoch: int
    seq: int
    id: str
    corr: str
    ts_ns: int
    body: msgspec.Raw


HEADER_DECODER: Final = msgspec.msgpack.Decoder(_Header)
Convert = Callable[[Any], Any]


def _decimal(text: str) -> Decimal:
    value = _DECIMALS.get(text)
    if value is None:
        if not _PLAIN_DECIMAL.match(text):
            raise ValueError("not a plain decimal: the full path decides")
        value = check_decimal(Decimal(text))
        if len(_DECIMALS) >= _DECIMALS_MAX:
            _DECIMALS.clear()
        _DECIMALS[text] = value
    return value


def _optional_decimal(text: str | None) -> Decimal | None:
    return None if text is None else _decimal(text)


_TEXT_ONLY: Final = frozenset({str})  # the key types a map may hold


def _plain(value: Any) -> Any:
    """`value` if it holds only what our encoder writes, small and shallow; else raise."""
    stack = [(value, 1)]
    items = 0
    while stack:
        item, depth = stack.pop()
        if depth > MAX_PLAIN_DEPTH:
            raise ValueError("nested too deep for the fast path")
        children = item.values() if type(item) is dict else item
        if type(item) is dict and not _TEXT_ONLY.issuperset(map(type, item)):  # no genexpr
            raise ValueError("map keys must be text")
        items += len(item)
        if items > MAX_PLAIN_ITEMS:
            raise ValueError("too many elements for the fast path")
        for c in children:
            t = type(c)
            if t is dict or t is list:
                stack.append((c, depth + 1))
            elif t is float:
                if not math.isfinite(c):
                    raise ValueError("non-finite float")
            elif t not in (str, int, bool, type(None)):
                raise ValueError(f"{t.__name__} is not plain")
    return value


def _bounded_list(value: list[Any]) -> list[Any]:
    if len(value) > MAX_PLAIN_ITEMS:
        raise ValueError("too many elements for the fast path")
    return value


def _str_type(metadata: list[Any]) -> Any:
    """`str` with pydantic's length and pattern constraints as a msgspec `Meta`."""
    kwargs: dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, MinLen):
            kwargs["min_length"] = m.min_length
        elif isinstance(m, MaxLen):
            kwargs["max_length"] = m.max_length
        elif type(m).__name__ == "_PydanticGeneralMetadata" and set(vars(m)) == {"pattern"}:
            pattern = m.pattern
            if not (pattern.startswith("^") and pattern.endswith("$") and "\\" not in pattern):
                raise Unsupported(f"pattern {pattern!r}")
            # Python's `$` also matches before a final newline; pydantic's (Rust) does not
            kwargs["pattern"] = pattern[:-1] + r"\Z"
        else:
            raise Unsupported(f"constraint {m!r}")
    return typing.Annotated[str, msgspec.Meta(**kwargs)] if kwargs else str


def wire_type(annotation: Any, metadata: list[Any]) -> tuple[Any, Convert | None]:
    """The msgspec type of a field and the conversion of its decoded value to the value
    pydantic's validation yields (None: the same value). Raises `Unsupported`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        inner = [*args[1:], *metadata]
        expanded = [x for m in inner for x in (getattr(m, "metadata", None) or [m])]
        return wire_type(args[0], expanded)
    if metadata and tuple(metadata) == _DEC_META and annotation is Decimal:
        return typing.Annotated[str, msgspec.Meta(max_length=MAX_DECIMAL_TEXT)], _decimal
    if annotation is str:
        return _str_type(metadata), None
    if origin is list and len(args) == 1 and _is_model(args[0]) and metadata:
        return _bounded_model_list(args[0], metadata)
    if origin is list and args in ((dict[str, Any],), (str,)) and metadata:
        return _bounded_plain_list(args[0], metadata)
    if metadata:
        raise Unsupported(f"constraints {metadata!r} on {annotation!r}")
    if annotation is float:  # finite only: the full path's shape check (`codec`) wants so
        return typing.Annotated[float, _FINITE], None
    if annotation in (int, bool):
        return annotation, None
    if isinstance(annotation, type) and issubclass(annotation, enum.StrEnum):
        return annotation, None
    if origin is Literal and all(type(a) is str for a in args):
        return annotation, None
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        (inner_t,) = [a for a in args if a is not type(None)]
        wire, convert = wire_type(inner_t, [])
        if convert is _decimal:
            return wire | None, _optional_decimal
        if _is_model(inner_t):
            return wire | None, _optional_model(convert)
        if convert is not None:
            raise Unsupported(f"optional {inner_t!r}")
        return wire | None, None
    if origin is list and len(args) == 1 and _is_model(args[0]):
        return _model_list(args[0])
    if origin is dict and args == (str, Any):
        return dict[str, Any], _plain
    if origin is list and args == (str,):
        return list[str], _bounded_list
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        struct, build = derive(annotation)
        return struct, build
    raise Unsupported(f"type {annotation!r}")


# --------------------------------------------------------------------------- lists of models
# A venue's open orders (`OpenOrders`: up to 10,000 VenueOrders in one reply, the warm
# start's mass status) and a page of the OMS's orders (`OrderList`: risk rebuilds its
# exposure from pages of 10,000) decode several times faster here than through pydantic.
# The full path's budget (codec.MAX_CONTAINERS, MAX_ELEMENTS) is kept by a bound on the
# list: its items must be flat models (no list, map or model field), so each is one map of
# at most its field count of entries; a longer list takes the full path, which decides
# (tests/protocol/test_fastpath.py checks the bound against the budget).
MAX_MODEL_ITEMS: Final = 16_384


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _optional_model(build: Convert | None) -> Convert:
    assert build is not None
    return lambda value: None if value is None else build(value)


def _bounded_model_list(model: type[BaseModel], metadata: list[Any]) -> tuple[Any, Convert]:
    """`list[model]` with a length bound (`Field(min_length=, max_length=)`): msgspec
    checks the same bounds (a batch message, e.g. `RiskChecks`)."""
    meta = _length_bounds(metadata, f"a list of {model.__name__}")
    wire, convert = _model_list(model)
    return typing.Annotated[wire, meta], convert


def _bounded_plain_list(item: Any, metadata: list[Any]) -> tuple[Any, Convert]:
    """`list[dict[str, Any]]` or `list[str]` with a length bound (a batch of message bodies,
    each decoded by its receiver: `ExecReports`; the refs of an `Acks`): the bounds as
    msgspec's, the whole list plain (`_plain`: its elements together within
    `MAX_PLAIN_ITEMS`, else the full path)."""
    return typing.Annotated[list[item], _length_bounds(metadata, "a list")], _plain


def _length_bounds(metadata: list[Any], what: str) -> msgspec.Meta:
    """A list's `Field(min_length=, max_length=)` as msgspec's bounds; any other constraint
    on `what` is not supported."""
    least: int | None = None
    most: int | None = None
    for m in metadata:
        if isinstance(m, MinLen):
            least = m.min_length
        elif isinstance(m, MaxLen):
            most = m.max_length
        else:
            raise Unsupported(f"constraint {m!r} on {what}")
    return msgspec.Meta(min_length=least, max_length=most)


def _model_list(model: type[BaseModel]) -> tuple[Any, Convert]:
    """The wire type of `list[model]` and its conversion (raises `Unsupported` for a model
    that is not flat)."""
    for name, info in model.model_fields.items():
        inner = typing.get_args(info.annotation) or (info.annotation,)
        if any(typing.get_origin(t) in (list, dict) or _is_model(t) for t in inner):
            raise Unsupported(f"a list of {model.__name__}, whose {name} is a container")
    struct, build = derive(model, tagged=False)

    def convert(items: list[Any]) -> list[Any]:
        if len(items) > MAX_MODEL_ITEMS:
            raise ValueError("too many elements for the fast path")
        return [build(item) for item in items]

    return list[struct], convert  # type: ignore[valid-type]


_IMMUTABLE_DEFAULTS = (str, int, float, bool, Decimal, type(None))
_FINITE = msgspec.Meta(ge=-sys.float_info.max, le=sys.float_info.max)  # refuses inf and nan


def derive(
    model: type[BaseModel], *, tagged: bool = True, straight: bool = True
) -> tuple[type[msgspec.Struct], Callable[[Any], Any]]:
    """The msgspec Struct of `model`'s fields (its `type` tag excepted: the envelope
    carries it; `tagged=False`: a message inside a list of another's, whose tag is in its
    own map, an ordinary field) and a function from a decoded Struct to the model: what
    `model_construct` does for our models (no aliases, no private attributes, no post-init),
    without its generality (it cost more than the decode). `straight`: a message with every
    field present is built by the generated builder (`protocol.fastpath_build`)."""
    decorators = model.__pydantic_decorators__
    if decorators.model_validators or decorators.validators or decorators.field_validators:
        raise Unsupported(f"{model.__name__} has validators")
    if model.__pydantic_post_init__ or model.__private_attributes__:
        raise Unsupported(f"{model.__name__}: post-init, private attributes or root model")
    if model.model_config.get("extra") != "forbid":
        raise Unsupported(f"{model.__name__} does not forbid extra fields")
    fields: list[tuple[str, Any, Any]] = []
    plan: list[tuple[str, Convert | None, Any, Callable[[], Any] | None]] = []
    tag: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if info.alias is not None or info.validation_alias is not None:
            raise Unsupported(f"{model.__name__}.{name} has an alias")
        if name == "type" and tagged:
            if list(model.model_fields)[0] != "type":
                raise Unsupported(f"{model.__name__}: 'type' is not the first field")
            tag = {"type": info.default}  # validation sets it from the envelope: set
            continue
        wire, convert = wire_type(info.annotation, list(info.metadata))
        factory = info.default_factory
        if info.is_required():
            fields.append((name, wire, msgspec.NODEFAULT))
        else:
            fields.append((name, wire | msgspec.UnsetType, msgspec.UNSET))
            if factory is None and not isinstance(info.default, _IMMUTABLE_DEFAULTS):
                raise Unsupported(f"{model.__name__}.{name}: mutable default")
        plan.append((name, convert, info.default, factory))  # type: ignore[arg-type]
    struct = msgspec.defstruct(
        f"Wire{model.__name__}", fields, kw_only=True, forbid_unknown_fields=True
    )
    names = tuple(name for name, *_ in plan)
    every = frozenset((*tag, *names))
    defaults = {name: (default, factory) for name, _, default, factory in plan}
    converts = tuple((name, convert) for name, convert, *_ in plan if convert is not None)
    unset, asdict = msgspec.UNSET, msgspec.structs.asdict
    new, setattr_ = model.__new__, object.__setattr__

    def build(obj: Any) -> Any:
        # a field -> value map in the model's order, the tag first: asdict, not zip's
        # pairs (~0.35 us less for a 16-field OrderView)
        values = {**tag, **asdict(obj)} if tag else asdict(obj)
        if unset in values.values():  # a field left out: the model's default, and not "set"
            fields_set = set(tag)
            for name in names:
                if values[name] is unset:
                    default, factory = defaults[name]
                    values[name] = default if factory is None else factory()
                else:
                    fields_set.add(name)
            for name, convert in converts:
                if name in fields_set:
                    values[name] = convert(values[name])
        else:
            fields_set = set(every)
            for name, convert in converts:
                values[name] = convert(values[name])
        m = new(model)
        setattr_(m, "__dict__", values)
        setattr_(m, "__pydantic_fields_set__", fields_set)
        setattr_(m, "__pydantic_extra__", None)
        setattr_(m, "__pydantic_private__", None)
        return m

    optional = tuple(name for name, _, default in fields if default is not msgspec.NODEFAULT)
    fast = straight_build(
        model, tag, [(name, convert) for name, convert, *_ in plan], optional, build,
        decimal=_decimal, optional_decimal=_optional_decimal, cache=_DECIMALS,
    ) if straight else None  # fmt: skip
    return struct, fast or build


def _decoders() -> dict[str, tuple[msgspec.msgpack.Decoder[Any], Callable[[Any], Any]]]:
    out = {}
    for model in HOT:
        struct, build = derive(model)
        out[model.model_fields["type"].default] = (msgspec.msgpack.Decoder(struct), build)
    return out


DECODERS: Final = _decoders()


def decode_fast(raw: Any) -> tuple[_Header, Message] | None:
    """The header and body of a hot message; None for another type; raises (anything)
    when the fast path cannot vouch for the frame, which the caller then decodes fully."""
    head = HEADER_DECODER.decode(raw)
    entry = DECODERS.get(head.type)
    if entry is None:
        return None
    decoder, build = entry
    return head, build(decoder.decode(head.body))


# --------------------------------------------------------------------------- peeking


class _PeekOrder(msgspec.Struct):
    status: str


class _PeekBody(msgspec.Struct):
    event_seq: int
    order: _PeekOrder


class _PeekEvent(msgspec.Struct):
    type: str
    epoch: int
    body: _PeekBody


_PEEK_DECODER: Final = msgspec.msgpack.Decoder(_PeekEvent)


def peek_order_event(frames: list[bytes]) -> tuple[int, int, str] | None:
    """(OMS epoch, event_seq, order status) of an `OrderEvent` frame, reading nothing else
    (about 1 us, a full decode 5-30): for a subscriber that ignores some statuses. None
    for any other frame or what does not parse; not a validation: decode what you keep."""
    if not ENABLED:
        return None
    try:
        peek = _PEEK_DECODER.decode(frames[0]) if len(frames) == 1 else None
    except (msgspec.DecodeError, TypeError):
        return None
    if peek is None or peek.type != "order_event":
        return None
    return peek.epoch, peek.body.event_seq, peek.body.order.status
