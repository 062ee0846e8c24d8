"""`check_decimal` remembers the texts of the decimals it took (`protocol.domain._TAKEN`):
a value met again is taken without `as_tuple`, and the memory changes no verdict."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given

from protocol import domain
from tests.protocol.test_bounded_values import FINITE_DECIMALS


@pytest.fixture(autouse=True)
def _empty_memory() -> None:
    domain._TAKEN.clear()


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[Decimal]:
    seen: list[Decimal] = []
    full = domain._check_bounds

    def counted(value: Decimal) -> None:
        seen.append(value)
        full(value)

    monkeypatch.setattr(domain, "_check_bounds", counted)
    return seen


def test_a_value_taken_once_is_taken_again_without_the_full_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The second check of the same price (another object, the same text) skips the
    bounds; each value is still returned as itself."""
    seen = _counting(monkeypatch)
    first, again = Decimal("95.00"), Decimal("95.00")
    assert domain.check_decimal(first) is first
    assert domain.check_decimal(again) is again
    assert seen == [first]


def test_a_refused_value_is_refused_every_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _counting(monkeypatch)
    for _ in range(2):
        with pytest.raises(ValueError, match="exponent"):
            domain.check_decimal(Decimal("0E-61"))
        with pytest.raises(ValueError, match="finite"):
            domain.check_decimal(Decimal("NaN"))
    assert len(seen) == 2  # the zero's bounds, twice; NaN stops before them
    assert not domain._TAKEN


def test_an_equal_value_with_other_digits_gets_its_own_verdict() -> None:
    """0 and 0E-61 are equal numbers with different texts: the first taken does not make
    the second taken (a cache keyed by value would: they hash alike)."""
    assert domain.check_decimal(Decimal("0")) == 0
    with pytest.raises(ValueError, match="exponent"):
        domain.check_decimal(Decimal("0E-61"))
    with pytest.raises(ValueError, match="exponent"):
        domain.check_decimal(Decimal("-0E+19"))


def test_a_decimal_subclass_is_always_checked_in_full() -> None:
    """A subclass may print what it likes: its text is not trusted to name its value."""

    class Liar(Decimal):
        def __str__(self) -> str:
            return "1"

    domain.check_decimal(Decimal("1"))
    with pytest.raises(ValueError):
        domain.check_decimal(Liar("1E+19"))


def test_the_memory_is_bounded() -> None:
    for i in range(domain._TAKEN_MAX * 2 + 3):
        domain.check_decimal(Decimal(i))
    assert 0 < len(domain._TAKEN) <= domain._TAKEN_MAX


@given(FINITE_DECIMALS)
def test_a_remembered_verdict_is_the_full_checks_verdict(value: Decimal) -> None:
    """Checked twice (the second from memory when the first took it), the verdicts agree
    with the full check's."""
    try:
        domain._check_bounds(value)
        expected = True
    except ValueError:
        expected = False
    verdicts = []
    for _ in range(2):
        try:
            verdicts.append(domain.check_decimal(value) is value)
        except ValueError:
            verdicts.append(False)
    assert verdicts == [expected, expected]
