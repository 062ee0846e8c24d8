"""The codec's outgoing fast path: a message built from values its sender already holds
validated, and its body written to the wire without pydantic's serializer.

The OMS re-validates what it already validated on every order (an `OrderView` of its own
`Order`, the `RiskCheck` and `PlaceOrder` of it: 4-8 us each, a Python call per decimal),
then `model_dump(mode="json")` walks the model again (5-6 us an event). Both are derived
here, field for field, from the pydantic models (the one definition of every message):

- `construct(Model, **values)` is `Model(**values)` when every value is already of the
  exact type validation would yield (a `Decimal` inside the bounds, `check_decimal`; an
  enum member; an `int`, `bool` or `str` where the field has no constraint; a nested
  model instance, which pydantic keeps as it is). Then it stores them, with the same
  fields set, without pydantic; anything else (a string for a decimal, an unknown field,
  a decimal out of bounds) goes through `Model(**values)`, whose answer or error stands.
- `dump(model)` is `model.model_dump(mode="json", exclude={"type"})` (the codec's body):
  decimals as `str`, enums as their values, nested models in full, free-form maps and
  floats as they are when they are plain JSON (a copy; anything else: pydantic's); None
  for a type with a field it does not derive, and the codec then uses pydantic.
  Text under a constraint (the client's `SubmitOrder`) is written as it is held: only
  `construct` leaves such a model to pydantic. tests/protocol/test_wire_out.py checks the
  same value and the same bytes for every message type derived.

`TP_WIRE_FASTPATH=0` turns this off with the decode fast path (`protocol.fastpath`).
"""

from __future__ import annotations

import enum
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Literal, TypeVar, Union

from annotated_types import MaxLen, MinLen
from pydantic import BaseModel

from protocol.domain import Dec, check_decimal
from protocol.fastpath import ENABLED
from protocol.messages import ExecReports, Message, OrderView, PositionView

M = TypeVar("M", bound=BaseModel)
Dump = Callable[[Any], Any]
_DEC_META: Final = typing.get_args(Dec)[1:]  # Dec's validators and serializer, by identity
_MISSING: Final = object()


class Unsupported(TypeError):
    """A field this module does not derive: its model keeps pydantic."""


@dataclass(frozen=True)
class _Kind:
    """What `construct` takes for a field: a value of exactly `type_` (or None when
    `optional`), passed through `convert` (which raises for what validation refuses)."""

    type_: type
    convert: Callable[[Any], Any] | None = None
    optional: bool = False


def _literal(allowed: tuple[Any, ...]) -> Callable[[str], str]:
    def take(value: str) -> str:
        if value not in allowed:
            raise ValueError("not one of the literal's values")
        return value

    return take


def _str_list(value: list[Any]) -> list[str]:
    if not all(type(v) is str for v in value):
        raise TypeError("not a list of str")
    return list(value)  # pydantic's validation copies it too


def _bounded(
    convert: Callable[[Any], Any] | None, metadata: list[Any]
) -> Callable[[list[Any]], list[Any]]:
    """A list field under `min_length` / `max_length`: its length checked as validation
    checks it, then its items taken as the list's own kind takes them."""
    low = max([m.min_length for m in metadata if isinstance(m, MinLen)], default=0)
    high = min([m.max_length for m in metadata if isinstance(m, MaxLen)], default=math.inf)

    def take(value: list[Any]) -> list[Any]:
        if not low <= len(value) <= high:
            raise ValueError("length out of bounds")
        return list(value) if convert is None else typing.cast(list[Any], convert(value))

    return take


def _finite(value: float) -> float:
    """A float as `model_dump(mode="json")` writes it; infinities and NaN go to pydantic."""
    if type(value) is not float or not math.isfinite(value):
        raise TypeError("not a finite float")
    return value


def _str_keys(value: dict[Any, Any]) -> dict[str, Any]:
    """A free-form map as validation stores it: a copy; its values kept as they are."""
    if not all(type(k) is str for k in value):
        raise TypeError("not a map of str keys")
    return dict(value)


def _plain(value: Any) -> Any:
    """A free-form value as `model_dump(mode="json")` writes it when it is plain JSON (str,
    int, bool, None, finite float, lists and str-keyed maps of them): a deep copy; anything
    else raises, and pydantic writes it its way (a Decimal, a tuple, an infinity)."""
    t = type(value)
    if t is str or t is int or t is bool or value is None:
        return value
    if t is dict:
        return {_key(k): _plain(v) for k, v in value.items()}
    if t is list:
        return [_plain(v) for v in value]
    return _finite(value)


def _key(key: Any) -> str:
    if type(key) is not str:
        raise TypeError("not a str key")
    return str(key)


def _optional_dump(dump: Dump | None) -> Dump | None:
    if dump is None:
        return None

    def optional(value: Any) -> Any:
        return None if value is None else dump(value)

    return optional


def field_kind(
    annotation: Any, metadata: list[Any], *, written: bool = False, flat_maps: bool = False
) -> tuple[_Kind, Dump | None]:
    """How a field's value is taken (`construct`) and written (`dump`; None: as it is).
    `written`: for `dump` only: text under a constraint (length, pattern: the client's
    `SubmitOrder`) is written as it is held; `construct` cannot check the constraint.
    `flat_maps` (with `written`): a bounded `list[dict[str, Any]]` of flat wire bodies
    (`FLAT_BODIES`) is written by `_flat_maps`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        inner = [*args[1:], *metadata]
        flat = [x for m in inner for x in (getattr(m, "metadata", None) or [m])]
        return field_kind(args[0], flat, written=written, flat_maps=flat_maps)
    if annotation is Decimal and tuple(metadata) == _DEC_META:
        return _Kind(Decimal, check_decimal), str
    if written and annotation is str:
        return _Kind(str), None
    if written and flat_maps and annotation == list[dict[str, Any]]:
        return _Kind(list), _flat_maps  # written only: `construct` never gets here
    if metadata and origin is list and all(isinstance(m, MinLen | MaxLen) for m in metadata):
        kind, dump = field_kind(annotation, [], written=written)
        return _Kind(list, _bounded(kind.convert, metadata)), dump
    if metadata:
        raise Unsupported(f"constraints {metadata!r} on {annotation!r}")
    if annotation in (str, int, bool):
        return _Kind(annotation), None
    if annotation is float:
        return _Kind(float), _finite
    if annotation == dict[str, Any]:
        return _Kind(dict, _str_keys), _plain
    if isinstance(annotation, type) and issubclass(annotation, enum.StrEnum):
        return _Kind(annotation), str
    if origin is Literal and all(type(a) is str for a in args):
        return _Kind(str, _literal(args)), None
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        (inner_t,) = [a for a in args if a is not type(None)]
        kind, dump = field_kind(inner_t, [], written=written)
        return _Kind(kind.type_, kind.convert, optional=True), _optional_dump(dump)
    if origin is list and args == (str,):
        return _Kind(list, _str_list), list
    if _is_model(annotation):
        return _Kind(annotation), _dumper(annotation, top=False)
    if origin is list and len(args) == 1 and _is_model(args[0]):
        return _Kind(list, _model_list(args[0])), _list_dump(_dumper(args[0], top=False))
    raise Unsupported(f"type {annotation!r}")


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_list(model: type[BaseModel]) -> Callable[[list[Any]], list[Any]]:
    """A list of `model` instances (exactly), copied as validation copies it; validation
    keeps each instance as it is (pydantic's `revalidate_instances` is "never")."""

    def take(value: list[Any]) -> list[Any]:
        if not all(type(v) is model for v in value):
            raise TypeError(f"not a list of {model.__name__}")
        return list(value)

    return take


_SCALARS: Final = frozenset((str, int, bool, type(None)))


def _flat_maps(value: list[Any]) -> list[dict[str, Any]]:
    """A list of maps of plain values (str, int, bool or None, under str keys) as
    `model_dump(mode="json")` writes it (a copy of each); anything else raises, and
    pydantic writes it. ~3x faster than pydantic's serializer of `Any` values."""
    out = []
    for item in value:
        if type(item) is not dict:
            raise TypeError("not a dict")
        for key, v in item.items():
            if type(v) not in _SCALARS or type(key) is not str:
                raise TypeError("not a flat map")
        out.append(item.copy())
    return out


def _list_dump(dump: Dump) -> Dump:
    def dump_list(value: list[Any]) -> list[Any]:
        return [dump(v) for v in value]

    return dump_list


def _plan(
    model: type[BaseModel], *, written: bool = False
) -> list[tuple[str, _Kind, Dump | None, Any, Any]]:
    flat_maps = written and model in FLAT_BODIES
    if model.model_config.get("extra") != "forbid" or model.__private_attributes__:
        raise Unsupported(f"{model.__name__}: extra fields or private attributes")
    decorators = model.__pydantic_decorators__
    if decorators.model_validators or decorators.validators or decorators.field_validators:
        raise Unsupported(f"{model.__name__} has validators")
    if model.__pydantic_post_init__ or decorators.field_serializers:
        raise Unsupported(f"{model.__name__}: post-init or serializers")
    plan = []
    for name, info in model.model_fields.items():
        if info.alias is not None or info.serialization_alias is not None or info.exclude:
            raise Unsupported(f"{model.__name__}.{name}: alias or excluded")
        kind, dump = field_kind(
            info.annotation, list(info.metadata), written=written, flat_maps=flat_maps
        )
        plan.append((name, kind, dump, info.default, info.default_factory))
    return plan


def _dumper(model: type[BaseModel], *, top: bool) -> Dump:
    """`model_dump(mode="json")` of `model`'s instances (without `type` at the top), as
    one generated expression (a loop over the fields cost as much as pydantic)."""
    env: dict[str, Any] = {}
    items = []
    for i, (name, _, dump, *_) in enumerate(_plan(model, written=True)):
        if top and name == "type":
            continue
        if dump is None:
            items.append(f"{name!r}: d[{name!r}]")
        else:
            env[f"f{i}"] = dump
            items.append(f"{name!r}: f{i}(d[{name!r}])")
    src = f"def dump_model(obj):\n    d = obj.__dict__\n    return {{{', '.join(items)}}}\n"
    exec(src, env)  # noqa: S102 - code generated from the model's own field names
    return typing.cast(Dump, env["dump_model"])


def _builder(model: type[M]) -> Callable[..., M]:
    """`model(**values)` for values of the exact types validation stores, generated as
    one function with a keyword argument per field; raises for anything else."""
    plan = [entry for entry in _plan(model) if entry[0] != "type"]
    tag = {"type": model.model_fields["type"].default} if "type" in model.model_fields else {}
    env: dict[str, Any] = {"_new": model.__new__, "_model": model, "_set": object.__setattr__,
                           "_missing": _MISSING, "_tag": tag, "_Refused": TypeError,
                           "_every": frozenset(entry[0] for entry in plan)}  # fmt: skip
    params, body, out = [], [], ["**_tag"] if tag else []
    for i, (name, kind, _dump, default, factory) in enumerate(plan):
        params.append(f"{name}=_missing")
        env[f"T{i}"], env[f"c{i}"] = kind.type_, kind.convert
        env[f"d{i}"], env[f"f{i}"] = default, factory
        fill = f"d{i}" if factory is None else f"f{i}()"
        check = f"type({name}) is not T{i}"
        if kind.optional:
            check = f"{name} is not None and {check}"
        lines = [
            f"    if {name} is _missing:", f"        {name} = {fill}",
            f"        given.discard({name!r})", "    else:",
            f"        if {check}:", "            raise _Refused",
        ]  # fmt: skip
        if kind.convert is not None:
            none = f" if {name} is not None else None" if kind.optional else ""
            lines.append(f"        {name} = c{i}({name}){none}")
        body.append("\n".join(lines) + "\n")
        out.append(f"{name!r}: {name}")
    sig = "*, " + ", ".join(params) if params else ""
    src = (
        f"def build({sig}):\n    given = set(_every)\n{''.join(body)}"
        f"    m = _new(_model)\n    _set(m, '__dict__', {{{', '.join(out)}}})\n"
        "    _set(m, '__pydantic_fields_set__', given)\n"
        "    _set(m, '__pydantic_extra__', None)\n    _set(m, '__pydantic_private__', None)\n"
        "    return m\n"
    )
    exec(src, env)  # noqa: S102 - code generated from the model's own field names
    return typing.cast(Callable[..., M], env["build"])


# batches whose items are flat wire bodies (each a dump of a model of scalar fields): a
# connector's `ExecReports`, up to 128 `ExecReport` bodies, one per FIX read (the others'
# items nest maps, e.g. an order event's order, which `_flat_maps` would send to pydantic)
FLAT_BODIES: Final = frozenset({ExecReports})


def _derive_all() -> tuple[dict[type[BaseModel], Any], dict[type[BaseModel], Dump]]:
    builders: dict[type[BaseModel], Any] = {}
    dumpers: dict[type[BaseModel], Dump] = {}
    for model in (*typing.get_args(typing.get_args(Message)[0]), OrderView, PositionView):
        try:  # a model with constrained text (`SubmitOrder`) is written here, built by pydantic
            dumpers[model] = _dumper(model, top=True)
            builders[model] = _builder(model)
        except Unsupported:
            continue
    return builders, dumpers


BUILDERS, DUMPERS = _derive_all()


def construct(model: type[M], /, **values: Any) -> M:
    """`model(**values)` (see the module docstring): without pydantic when every value is
    already what its validation would store."""
    build = BUILDERS.get(model) if ENABLED else None
    if build is not None:
        try:
            built: M = build(**values)
            return built
        except Exception:  # noqa: BLE001 - not certain: pydantic decides (and raises)
            pass
    return model(**values)


def dump(body: BaseModel) -> dict[str, Any]:
    """The wire body of a message: `model_dump(mode="json", exclude={"type"})`."""
    f = DUMPERS.get(type(body)) if ENABLED else None
    if f is not None:
        try:
            out: dict[str, Any] = f(body)
            return out
        except Exception:  # noqa: BLE001 - e.g. a model_construct'ed odd value: pydantic
            pass
    return body.model_dump(mode="json", exclude={"type"})


def json_dumper(model: type[BaseModel]) -> Dump:
    """`model_dump(mode="json")` of `model`'s instances, `type` included (a durable
    record's form: the connector's exec outbox); `Unsupported` if a field is not derived."""
    return _dumper(model, top=False)


def updated(model: M, /, **update: Any) -> M:
    """`model.model_copy(update=update)` (no validation either) without pydantic's
    generic copy (~4 us: `copy.copy` of the dict, the fields set and the extra, then the
    update): the same dict, fields set and private state. A model with extra fields or
    private attributes goes to `model_copy`."""
    if model.__pydantic_extra__ is not None or model.__pydantic_private__ is not None:
        return model.model_copy(update=update)
    values = model.__dict__.copy()
    values.update(update)
    fields_set = set(model.__pydantic_fields_set__)
    fields_set.update(update)
    m = model.__class__.__new__(model.__class__)
    object.__setattr__(m, "__dict__", values)
    object.__setattr__(m, "__pydantic_fields_set__", fields_set)
    object.__setattr__(m, "__pydantic_extra__", None)
    object.__setattr__(m, "__pydantic_private__", None)
    return m
