"""`protocol.domain.member_of`: `cls(value)` as a dict lookup, with the enum's own answer
for anything that is not a member's value."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import pytest

from actors.oms.lifecycle import Event, event_of
from protocol.domain import member_of, ord_type_of, side_of, status_of, tif_of
from protocol.messages import OrderStatus, OrdType, Side, TimeInForce

PAIRS: list[tuple[type[StrEnum], Any]] = [
    (OrderStatus, status_of), (Side, side_of), (OrdType, ord_type_of),
    (TimeInForce, tif_of), (Event, event_of),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "of"), PAIRS)
def test_every_value_and_member_gives_the_member_the_enum_gives(cls: Any, of: Any) -> None:
    for member in cls:
        assert of(member.value) is cls(member.value) is member
        assert of(member) is member


@pytest.mark.parametrize("bad", ["accepted", "", "NEW ", None, 1, ["NEW"], {"NEW": 1}])
def test_anything_else_raises_what_the_enum_raises(bad: Any) -> None:
    """An unknown or unhashable value (a corrupt journal record's) fails exactly as
    `OrderStatus(value)` fails."""
    with pytest.raises(Exception) as theirs:
        OrderStatus(bad)
    with pytest.raises(Exception) as ours:
        status_of(bad)
    assert type(ours.value) is type(theirs.value)
    assert str(ours.value) == str(theirs.value)


def test_an_enum_with_a_missing_hook_keeps_it() -> None:
    class Lenient(StrEnum):
        A = "a"

        @classmethod
        def _missing_(cls, value: object) -> Lenient:
            return cls.A

    assert member_of(Lenient)("zzz") is Lenient.A


@pytest.mark.parametrize("bad", ["accepted", ["NEW"]])
def test_a_refusal_chains_no_lookup_error(bad: Any) -> None:
    """`OrderStatus(value)` raises a ValueError with no context; a refusal raised inside
    the lookup's `except` would carry the KeyError (or unhashable TypeError) as its
    __context__: a traceback in the log ("During handling of the above exception...")
    that `cls(value)` never printed (a corrupt journal record's replay error)."""
    with pytest.raises(ValueError) as theirs:
        OrderStatus(bad)
    with pytest.raises(ValueError) as ours:
        status_of(bad)
    assert theirs.value.__context__ is None
    assert ours.value.__context__ is None
