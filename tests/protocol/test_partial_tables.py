"""A config table the file gives in part gets the defaults of the table left out whole.

A field whose default is an instance built with other values than its class's defaults
(`reconnect: BackoffCfg = BackoffCfg(initial_s=0.05, ...)`) gives a table that names only
some keys the class's defaults for the rest: `[venues.reconnect] max_s = 10` got
`initial_s = 0`, a reconnect loop with no backoff. Every table's default must equal its
class's own defaults (a subclass carries the table's defaults, as `ReconnectCfg` does)."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel

from protocol.config import SystemConfig


def _models(annotation: Any) -> list[type[BaseModel]]:
    found = (
        [annotation] if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []
    )
    return found + [m for arg in get_args(annotation) for m in _models(arg)]


def _mismatches(model: type[BaseModel], path: str, seen: set[type[BaseModel]]) -> list[str]:
    if model in seen:
        return []
    seen.add(model)
    out = []
    for name, field in model.model_fields.items():
        default = field.default
        if isinstance(default, BaseModel) and default != type(default)():
            out.append(f"{path}{name}: {default!r} is not {type(default).__name__}()")
        for sub in _models(field.annotation):
            out += _mismatches(sub, f"{path}{name}.", seen)
    return out


def test_every_tables_default_is_its_class_defaults() -> None:
    seen: set[type[BaseModel]] = set()
    assert _mismatches(SystemConfig, "", seen) == []
    assert len(seen) >= 20  # the walk reached the nested tables (venues, sim, ccxt, link...)
