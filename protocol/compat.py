"""What a client reads from a newer core: fields it does not know are ignored, so a desk
upgrades the core and its strategies separately (rolling upgrades).

The core adds fields to what it sends (OrderView gained `pending_qty`, OrderEvent its
fees); a client built before them used to refuse every such message: a strategy went blind
the moment its core was upgraded. A client's readings (`tolerant=True` of
`protocol.codec.decode` / `decode_item` and of `protocol.event_batch`: the replies and
events `ExecutionClient` reads, a control client's reply) now drop a field their schema
does not have, at any depth of the models they know, and validate everything else exactly
as before: a known field's type, enum, decimal or bound is refused as strictly as ever.
Only the `CLIENT_READS` types relax; what the core and its actors receive (client requests,
actor <-> actor messages) stays strict, `tolerant=False` being the default everywhere.

Still refused (docs/architecture.md "Compatibility"): an unknown message type, a field
removed or renamed, a required field added, a value a known field does not take. That
includes a new enum member (a new `OrderStatus`): an older client cannot say whether an
order in it is open, filled or dead, and mapping it to a member it knows would misread the
order, so the message is refused as malformed, logged once (`wire_refused`). A reply so
refused is the OMS's answer all the same (`answered`: its correlation id), and a resend
gets the same one: the call raises `IncompatibleCore` at once, naming the field, not
`Timeout` at its deadline; an event so refused is a gap, whose snapshot lists the order
too: `events` raises `IncompatibleCore` once rather than show a wrong state, then goes
on past the gap (not asking again every retry interval, its stream stalled, for as long
as the order is open). The unknown fields' values must still be what the encoder writes
(the codec's shape check; on the fast path, `fastpath`'s plain values, else the full path).

Each unknown field is counted per process (`unknown_fields()`) and logged once by its path
(`wire_unknown_field`, e.g. "order_event.order.bust_ref"): the client library has no
structlog or metrics of its own, so this is the stdlib logger `tradepulse.client`, which a
strategy's logging shows.

The fast path: the strict decoder is tried first (the same cost as before for a same-version
core); only a frame it refuses is decoded again with a relaxed copy of its Structs (the same
types, unknown fields skipped by msgspec), whose unknown fields are then named and checked.
"""

from __future__ import annotations

import functools
import logging
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Final, Union

import msgspec
from pydantic import BaseModel

from protocol import fastpath
from protocol.messages import Message

# The message types a client reads from the core: `ExecutionClient`'s replies and events,
# `submit_many`'s `Replies` items, a control client's reply. Nothing the core receives.
CLIENT_READS: Final = frozenset({
    "order_ack", "request_rejected", "order_list", "positions", "snapshot", "order_event",
    "order_events", "stream_event", "replies", "control_reply",
})  # fmt: skip
MAX_NAMES: Final = 256  # distinct unknown field paths (and refusals) remembered per process
_LOG: Final = logging.getLogger("tradepulse.client")
_MODELS: Final[dict[str, type[BaseModel]]] = {
    m.model_fields["type"].default: m
    for m in typing.get_args(typing.get_args(Message)[0])
    if m.model_fields["type"].default in CLIENT_READS
}
_counts: dict[str, int] = {}  # unknown field path -> messages that carried it
_refused: set[str] = set()  # refusals logged


class _Answer(msgspec.Struct):
    """What a frame says it answers; every other field, known or not, skipped."""

    corr: str = ""


_ANSWER_DECODER: Final = msgspec.msgpack.Decoder(_Answer)


def unknown_fields() -> dict[str, int]:
    """Unknown field path -> how many messages read by this process carried it."""
    return dict(_counts)


def _relax(annotation: Any, memo: dict[type, type]) -> Any:
    """`annotation` with every msgspec Struct in it replaced by a copy that skips unknown
    fields (the same fields, types, constraints and defaults)."""
    if isinstance(annotation, type) and issubclass(annotation, msgspec.Struct):
        if annotation not in memo:
            fields = [
                (f.name, _relax(f.type, memo))
                if f.required
                else (f.name, _relax(f.type, memo), f.default)
                for f in msgspec.structs.fields(annotation)
            ]
            memo[annotation] = msgspec.defstruct(annotation.__name__, fields, kw_only=True)
        return memo[annotation]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return typing.Annotated[(_relax(args[0], memo), *annotation.__metadata__)]
    if origin is list:
        return list[_relax(args[0], memo)]  # type: ignore[misc]
    if origin in (Union, types.UnionType):
        return Union[tuple(_relax(a, memo) for a in args)]  # noqa: UP007 - built at run time
    return annotation


def _tolerant_decoders() -> dict[str, tuple[msgspec.msgpack.Decoder[Any], Callable[[Any], Any]]]:
    memo: dict[type, type] = {}
    return {
        mtype: (msgspec.msgpack.Decoder(_relax(decoder.type, memo)), build)
        for mtype, (decoder, build) in fastpath.DECODERS.items()
        if mtype in CLIENT_READS
    }


_DECODERS: Final = _tolerant_decoders()


def decode_body(mtype: str, body: bytes | msgspec.Raw) -> Message | None:
    """The message of type `mtype` in these body bytes, its unknown fields skipped (named
    and counted), on the fast path; None where that path cannot vouch for it (the caller's
    full path decides) or `mtype` is not one a client reads. Called once the strict fast
    path refused the body."""
    entry = _DECODERS.get(mtype)
    if entry is None:
        return None
    try:
        msg = entry[1](entry[0].decode(body))
        found: list[tuple[str, Any]] = []
        data = msgspec.msgpack.decode(body)
        if "type" in data:
            raise ValueError("body must not repeat 'type'")
        _unknown(_MODELS[mtype], data, mtype, found)
        fastpath._plain([value for _, value in found])  # as the encoder writes, else refused
    except Exception:  # noqa: BLE001 - it cannot vouch: the full path decides
        return None
    _count(found)
    return typing.cast(Message, msg)


def prune(mtype: str, body: dict[str, Any]) -> dict[str, Any]:
    """`body` (a message's, without its `type`) less the fields its model does not have, at
    any depth of the models it holds (counted and logged); unchanged for a type a client
    does not read. The shape of the whole body was checked already (`codec._check_shape`)."""
    model = _MODELS.get(mtype)
    if model is None:
        return body
    found: list[tuple[str, Any]] = []
    out = _strip(model, body, mtype, found, top=True)
    _count(found)
    return typing.cast(dict[str, Any], out)


def answered(frames: Sequence[Any]) -> str:
    """The correlation id of a reply the client's reading refused ("" where it has none
    that can be read, the header of a newer envelope included): the OMS answered the
    request with it, and a resend gets the same answer (requests are idempotent), so the
    client raises at once instead of resending until its deadline."""
    try:
        return _ANSWER_DECODER.decode(frames[0]).corr if len(frames) == 1 else ""
    except Exception:  # noqa: BLE001 - not even that: no answer of a request it knows
        return ""


def refused(reason: str) -> None:
    """A client's reading refused a message: logged once per reason (`wire_refused`), e.g.
    a newer core's enum value, which the strategy's operator must see (it is not ignored)."""
    if reason not in _refused and len(_refused) < MAX_NAMES:
        _refused.add(reason)
        _LOG.warning("wire_refused %s", reason)


def _count(found: list[tuple[str, Any]]) -> None:
    for path, _ in found:
        if path in _counts:
            _counts[path] += 1
        elif len(_counts) < MAX_NAMES:
            _counts[path] = 1
            _LOG.warning("wire_unknown_field %s: ignored (a newer core's field)", path)


def _strip(
    model: type[BaseModel], data: Any, path: str, found: list[tuple[str, Any]], top: bool = False
) -> Any:
    """`data` less the keys `model` does not have (and so on inside), each (path, value)
    added to `found`; anything not a map is left as it is (validation refuses it)."""
    if not isinstance(data, dict):
        return data
    if top and "type" in data:
        raise ValueError("body must not repeat 'type'")
    plan = _plan(model)
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in plan:
            if not isinstance(key, str):
                raise ValueError("map keys must be text")
            found.append((f"{path}.{key}", value))
            continue
        inner = plan[key]
        if inner is None:
            out[key] = value
        elif type(value) is list:
            out[key] = [_strip(inner, v, f"{path}.{key}", found) for v in value]
        else:
            out[key] = _strip(inner, value, f"{path}.{key}", found)
    return out


def _unknown(model: type[BaseModel], data: Any, path: str, found: list[tuple[str, Any]]) -> None:
    """What `_strip` would add to `found`, without building the stripped map (the fast
    path's walk: set differences, then the maps of the models inside)."""
    if type(data) is not dict:
        return
    plan = _plan(model)
    if len(data) > len(plan) or not plan.keys() >= data.keys():
        for key in data.keys() - plan.keys():
            if not isinstance(key, str):
                raise ValueError("map keys must be text")
            found.append((f"{path}.{key}", data[key]))
    for key, inner in _nested(model):
        value = data.get(key)
        if type(value) is list:
            for v in value:
                _unknown(inner, v, f"{path}.{key}", found)
        elif value is not None:
            _unknown(inner, value, f"{path}.{key}", found)


@functools.cache
def _nested(model: type[BaseModel]) -> tuple[tuple[str, type[BaseModel]], ...]:
    """The fields of `model` that hold a model (alone, optional or in a list)."""
    return tuple((name, inner) for name, inner in _plan(model).items() if inner is not None)


@functools.cache
def _plan(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """Each field of `model` -> the model its value holds (alone, optional or in a list), or
    None (a value: kept as it is). Several possible models: None (validation decides)."""
    return {name: _held_model(info.annotation) for name, info in model.model_fields.items()}


def _held_model(annotation: Any) -> type[BaseModel] | None:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated or origin is list:
        return _held_model(args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if origin in (Union, types.UnionType):
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if len(models) == 1 else None
    return None
