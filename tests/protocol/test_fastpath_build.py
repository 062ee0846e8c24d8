"""The fast path's generated builder (protocol.fastpath_build) is the general one, only
faster: for every decoded body, of every hot message and of every model nested in one, it
returns the same model (the same values and types, in the same order, the same fields set)
or refuses (raises) as the general builder does."""

from __future__ import annotations

import functools
import typing
from typing import Any

import msgpack
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from protocol import fastpath
from tests.protocol.samples import build, odd_values
from tests.protocol.test_fastpath import _same


def _nested(model: type[BaseModel]) -> set[type[BaseModel]]:
    """The models inside `model`'s fields (in lists and optionals too), recursively."""
    found: set[type[BaseModel]] = set()
    for info in model.model_fields.values():
        stack: list[Any] = [info.annotation]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                if t not in found:
                    found |= {t} | _nested(t)
            else:
                stack.extend(typing.get_args(t))
    return found


MODELS = sorted(
    set(fastpath.HOT).union(*(_nested(m) for m in fastpath.HOT)), key=lambda m: m.__name__
)


@functools.cache
def _builders(model: type[BaseModel]) -> tuple[Any, Any, Any]:
    tagged = "type" in model.model_fields and model in fastpath.HOT
    struct, straight = fastpath.derive(model, tagged=tagged)
    _, general = fastpath.derive(model, tagged=tagged, straight=False)
    return msgspec.msgpack.Decoder(struct), straight, general


def _body(model: type[BaseModel], full: bool) -> dict[str, Any]:
    tagged = model in fastpath.HOT
    body: dict[str, Any] = build(model, full=full).model_dump(mode="json")
    if tagged:
        del body["type"]
    return body


def _outcome(build_: Any, obj: Any) -> BaseModel | None:
    try:
        out: BaseModel = build_(obj)
    except Exception:  # noqa: BLE001 - a refusal: the full path decides
        return None
    return out


@pytest.mark.parametrize("full", [True, False], ids=["all_fields", "required_only"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_model_gets_the_generated_builder_and_it_builds_the_same(
    model: type[BaseModel], full: bool
) -> None:
    decoder, straight, general = _builders(model)
    assert straight is not general  # generated: no field name kept it away
    obj = decoder.decode(msgpack.packb(_body(model, full)))
    fastpath._DECIMALS.clear()  # its decimals not seen yet, then seen
    new, old, again = straight(obj), general(obj), straight(obj)
    _same(new, old)
    _same(again, old)


_values_st = odd_values(
    st.from_regex(r"\A-?[0-9]{1,4}(\.[0-9]{1,4})?\Z"),
    st.sampled_from(["0", "-0", "0.000", "1" * 30, "9" * 101, "1e5", "NaN"]),
    max_leaves=6,
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(MODELS), st.booleans(), st.data())
def test_the_generated_builder_agrees_with_the_general_one(
    model: type[BaseModel], full: bool, data: st.DataObject
) -> None:
    """A valid body with fields replaced by odd values or dropped (old: the general
    builder; new: the generated one): what msgspec decodes, both build alike or both
    refuse."""
    body = _body(model, full)
    for _ in range(data.draw(st.integers(0, 3))):
        names = sorted(body)
        if not names:
            break
        name = data.draw(st.sampled_from(names))
        if data.draw(st.booleans()):
            body[name] = data.draw(_values_st)
        else:
            del body[name]
    decoder, straight, general = _builders(model)
    try:
        obj = decoder.decode(msgpack.packb(body))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return
    fastpath._DECIMALS.clear()  # its decimals not seen yet (then seen: `again`)
    new, old, again = _outcome(straight, obj), _outcome(general, obj), _outcome(straight, obj)
    assert (new is None) == (old is None) == (again is None)
    if new is not None and old is not None and again is not None:
        _same(new, old)
        _same(again, old)
