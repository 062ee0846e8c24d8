"""The fast path's last step (`protocol.fastpath.derive`), generated per model: a decoded
msgspec Struct to its pydantic model, as one straight-line function.

`derive`'s general builder walks the fields (`asdict`, a test for missing fields, a loop
over the conversions, a Python call per decimal): 17-18 us for an `OrderEvent` on the cold
caches of a latency-bound process (a client's event, risk's check; issue 16). Messages
that carry every field (all of ours: `model_dump` writes them all) take this one instead:
the fields read by name into the model's map, a decimal looked up in the fast path's cache
inline (a call only for one not seen yet), the other conversions called as before; a
message missing a field goes to the general builder, whose answer stands. The same values,
in the same order, with the same fields set (tests/protocol/test_fastpath_build.py checks
it against the general builder).
"""

from __future__ import annotations

import keyword
import typing
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec
from pydantic import BaseModel

Convert = Callable[[Any], Any]


def straight_build(
    model: type[BaseModel],
    tag: dict[str, Any],
    plan: list[tuple[str, Convert | None]],
    optional: tuple[str, ...],
    general: Convert,
    *,
    decimal: Callable[[str], Decimal],
    optional_decimal: Callable[[str | None], Decimal | None],
    cache: dict[str, Decimal],
) -> Convert | None:
    """The generated builder of `model` (None where a field name is no identifier: the
    general builder stays). `plan`: (field, conversion) in the model's order, the tag
    excepted; `optional`: the fields a message may leave out (then `general` builds it);
    `decimal`, `optional_decimal`: the fast path's decimal conversions, whose cache
    (`cache`: text -> checked Decimal) is read inline."""
    if any(not name.isidentifier() or keyword.iskeyword(name) for name, _ in plan):
        return None
    every = frozenset((*tag, *(name for name, _ in plan)))
    env: dict[str, Any] = {"_new": model.__new__, "_model": model, "_set": object.__setattr__,
                           "_general": general, "_unset": msgspec.UNSET, "_D": cache,
                           "_dec": decimal, "_every": every}  # fmt: skip
    lines = ["def build(obj):"]
    if optional:
        missing = " or ".join(f"obj.{name} is _unset" for name in optional)
        lines += [f"    if {missing}:", "        return _general(obj)"]
    items = []
    if tag:
        env["_tag"] = tag["type"]
        items.append("'type': _tag")
    for i, (name, convert) in enumerate(plan):
        if convert is None:
            items.append(f"{name!r}: obj.{name}")
            continue
        if convert is decimal:
            lines += [f"    t{i} = obj.{name}", f"    v{i} = _D.get(t{i})",
                      f"    if v{i} is None:", f"        v{i} = _dec(t{i})"]  # fmt: skip
        elif convert is optional_decimal:
            lines += [f"    v{i} = obj.{name}", f"    if v{i} is not None:",
                      f"        t{i} = _D.get(v{i})",
                      f"        v{i} = _dec(v{i}) if t{i} is None else t{i}"]  # fmt: skip
        else:
            env[f"c{i}"] = convert
            lines.append(f"    v{i} = c{i}(obj.{name})")
        items.append(f"{name!r}: v{i}")
    lines += [
        "    m = _new(_model)",
        f"    _set(m, '__dict__', {{{', '.join(items)}}})",
        "    _set(m, '__pydantic_fields_set__', set(_every))",
        "    _set(m, '__pydantic_extra__', None)",
        "    _set(m, '__pydantic_private__', None)",
        "    return m",
    ]
    exec("\n".join(lines) + "\n", env)  # noqa: S102 - code generated from the model's own field names
    return typing.cast(Convert, env["build"])
