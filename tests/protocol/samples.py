"""Sample instances of every wire message, built from the models' own field annotations, so a
message added to `protocol.messages` is covered by the round-trip tests without edits here."""

from __future__ import annotations

import enum
import types
import typing
from decimal import Decimal
from typing import Any, Literal, Union

from hypothesis import strategies as st
from pydantic import BaseModel

from protocol.messages import Message

MESSAGE_CLASSES: list[type[BaseModel]] = list(typing.get_args(typing.get_args(Message)[0]))


def sample_value(annotation: Any, name: str, *, full: bool) -> Any:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return sample_value(args[0], name, full=full)
    if origin is Literal:
        return args[0]
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return sample_value(inner[0], name, full=full)
    if origin is list:
        return [sample_value(args[0], name, full=full)]
    if origin is dict:
        key_t, value_t = args
        if value_t is Any:
            return {"k": "v", "n": 1, "nested": {"x": [1, "two"]}}
        return {f"{name}-key": sample_value(value_t, name, full=full)}
    if isinstance(annotation, type):
        if issubclass(annotation, BaseModel):
            return build(annotation, full=full)
        if issubclass(annotation, enum.Enum):
            return list(annotation)[-1]
        if annotation is bool:
            return True
        if annotation is int:
            return 7
        if annotation is float:
            return 0.125
        if annotation is Decimal:
            return Decimal("123.4500")  # trailing zeros must survive the wire
        if annotation is str:
            return f"{name}-1"
    if annotation is Any:
        return {"any": 1}
    raise TypeError(f"no sample for {name}: {annotation!r}")


def build(cls: type[BaseModel], *, full: bool = True) -> Any:
    """An instance of `cls`: every field set (`full`) or only the required ones."""
    values = {}
    for name, info in cls.model_fields.items():
        if name == "type":
            continue
        if not info.is_required() and _has_pattern(info):
            if full:  # a string with a pattern: its default is a valid sample
                values[name] = info.default
        elif info.is_required() or full:
            values[name] = sample_value(info.annotation, name, full=full)
    return cls(**values)


def _has_pattern(info: Any) -> bool:
    return any(getattr(m, "pattern", None) for m in info.metadata)


def message_type(cls: type[BaseModel]) -> str:
    default = cls.model_fields["type"].default
    assert isinstance(default, str)
    return default


def odd_values(*extra: Any, max_leaves: int) -> Any:
    """Hypothesis: a value a hostile peer may put where a field goes (the property tests of
    the fast paths): null, bools, 64-bit ints, floats, short text, the `extra` leaves, and
    small lists and maps of them."""
    leaf = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    leaf = st.one_of(leaf, st.text(max_size=6), *extra)
    return st.recursive(
        leaf,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
        max_leaves=max_leaves,
    )


def mutate_field(where: dict[Any, Any], action: str, data: Any, values: Any) -> None:
    """One hostile edit of a decoded map, drawn with hypothesis' `data`: `replace` a field's
    value, `drop` a field, or `add` an unknown one (values from `values`)."""
    names = sorted(where)
    if action == "replace" and names:
        where[data.draw(st.sampled_from(names))] = data.draw(values)
    elif action == "drop" and names:
        del where[data.draw(st.sampled_from(names))]
    elif action == "add":
        where[data.draw(st.text(max_size=6))] = data.draw(values)
