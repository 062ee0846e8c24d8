"""`protocol.wire_out.updated` is `model_copy(update=...)`: the same values, fields set and
private state, the original untouched; a model with extra fields goes to `model_copy`."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from protocol import wire_out
from protocol.messages import ExecReport, OrderView, PlaceOrder
from tests.protocol.samples import build


def _state(m: BaseModel) -> tuple[Any, ...]:
    return (type(m), list(m.__dict__.items()), m.model_fields_set, m.__pydantic_extra__,
            m.__pydantic_private__, repr(m))  # fmt: skip


@pytest.mark.parametrize("full", [True, False], ids=["all_fields", "required_only"])
@pytest.mark.parametrize(
    ("cls", "update"),
    [(ExecReport, {"exec_seq": 7}), (PlaceOrder, {"qty": "2"}), (OrderView, {"ts_ns": 1})],
)
def test_updated_equals_model_copy(
    cls: type[BaseModel], update: dict[str, Any], full: bool
) -> None:
    original = build(cls, full=full)
    before = _state(original)
    ours, theirs = wire_out.updated(original, **update), original.model_copy(update=update)
    assert _state(ours) == _state(theirs)
    assert ours == theirs and ours is not original
    assert ours.model_fields_set is not original.model_fields_set
    assert _state(original) == before


def test_a_model_with_extra_fields_goes_to_model_copy() -> None:
    class Open(BaseModel):
        model_config = ConfigDict(extra="allow")
        a: int = 0

    m = Open(a=1, b=2)  # type: ignore[call-arg]
    ours = wire_out.updated(m, a=3)
    assert _state(ours) == _state(m.model_copy(update={"a": 3}))
    assert (
        ours.__pydantic_extra__ == {"b": 2} and ours.__pydantic_extra__ is not m.__pydantic_extra__
    )
