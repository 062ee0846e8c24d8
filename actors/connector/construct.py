"""Build a message model from values that are already what its validation yields.

`to_exec_report` and `to_venue_order` (fix mapping) make every value of an `ExecReport` /
`VenueOrder` themselves: text decoded from the frame, `parse_decimal`'s bounded Decimals,
the enums, ints. Validating them again checks nothing new and cost ~10 us per report
(`model_construct`, with its generality, ~6 us); a warm start reads 10,000 of them.
`trusted(Model)` returns a function doing what `Model(**values)` does for such values in
~1.5 us: the same field values (defaults for the fields left out), the same fields set,
an equal, frozen instance. It is the construction `protocol.fastpath` uses for decoded
messages, and refuses, at import, a model where it would not be the same (validators,
aliases, private attributes, defaults that are mutable or made by a factory).
tests/connector/fix/test_fast_reads.py holds each mapping to its validated twin.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)

_IMMUTABLE_DEFAULTS = (str, int, bool, Decimal, type(None))
_MISSING: Any = object()  # a required field not given


def trusted(model: type[M]) -> Callable[..., M]:
    """`build(**values) -> model` for values that already passed the model's validation
    (see the module docstring); TypeError at once for a model it cannot build so."""
    decorators = model.__pydantic_decorators__
    if decorators.model_validators or decorators.validators or decorators.field_validators:
        raise TypeError(f"{model.__name__} has validators")
    if model.__pydantic_post_init__ or model.__private_attributes__:
        raise TypeError(f"{model.__name__}: post-init or private attributes")
    template: dict[str, Any] = {}  # every field in the model's order: default or _MISSING
    for name, info in model.model_fields.items():
        if info.alias is not None or info.validation_alias is not None:
            raise TypeError(f"{model.__name__}.{name} has an alias")
        if info.is_required():
            template[name] = _MISSING
            continue
        if info.default_factory is not None or not isinstance(info.default, _IMMUTABLE_DEFAULTS):
            raise TypeError(f"{model.__name__}.{name}: default not a plain immutable value")
        template[name] = info.default
    new, setattr_ = model.__new__, object.__setattr__
    # by name: `_MISSING in fields.values()` compared each value with it, and a Decimal's
    # comparison asks isinstance(_, numbers.Rational), an ABC check (~1 us a Decimal)
    required = frozenset(name for name, default in template.items() if default is _MISSING)

    def build(**values: Any) -> M:
        fields = template.copy()
        fields.update(values)
        if len(fields) != len(template) or not values.keys() >= required:
            unknown = sorted(values.keys() - template.keys())
            missing = sorted(n for n, v in fields.items() if v is _MISSING)
            raise TypeError(f"{model.__name__}: unknown fields {unknown}, missing {missing}")
        m = new(model)
        setattr_(m, "__dict__", fields)
        setattr_(m, "__pydantic_fields_set__", set(values))
        setattr_(m, "__pydantic_extra__", None)
        setattr_(m, "__pydantic_private__", None)
        return m

    return build
