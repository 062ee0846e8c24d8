"""The venue rate limit: a token bucket with a fake clock."""

from __future__ import annotations

import pytest

from actors.connector.ratelimit import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_starts_full_and_allows_a_burst_then_refuses() -> None:
    """A fresh bucket lets `burst` messages through at once, then no more."""
    clock = Clock()
    bucket = TokenBucket(rate_per_s=10, burst=3, clock=clock)
    assert [bucket.try_take() for _ in range(4)] == [True, True, True, False]


def test_refills_at_the_rate_and_says_how_long_to_wait() -> None:
    """After the burst, one token comes back every 1/rate seconds; wait_s says when."""
    clock = Clock()
    bucket = TokenBucket(rate_per_s=10, burst=2, clock=clock)
    assert bucket.try_take() and bucket.try_take()
    assert bucket.wait_s() == pytest.approx(0.1)
    clock.now += 0.05
    assert not bucket.try_take()
    assert bucket.wait_s() == pytest.approx(0.05)
    clock.now += 0.05
    assert bucket.try_take()
    assert not bucket.try_take()


def test_never_holds_more_than_the_burst() -> None:
    """A long idle period refills to `burst`, not beyond."""
    clock = Clock()
    bucket = TokenBucket(rate_per_s=100, burst=5, clock=clock)
    clock.now += 3600
    assert bucket.tokens == 5
    assert sum(bucket.try_take() for _ in range(10)) == 5


def test_sustained_rate_matches_the_configured_rate() -> None:
    """Taking whenever allowed over 10 simulated seconds passes burst + rate * 10 messages."""
    clock = Clock()
    bucket = TokenBucket(rate_per_s=50, burst=5, clock=clock)
    sent = 0
    for _ in range(10_000):
        if bucket.try_take():
            sent += 1
        else:
            clock.now += bucket.wait_s()
        if clock.now >= 1010.0:
            break
    assert 500 <= sent <= 506


def test_wait_is_zero_when_a_token_is_there_and_taking_many_needs_them_all() -> None:
    clock = Clock()
    bucket = TokenBucket(rate_per_s=1, burst=3, clock=clock)
    assert bucket.wait_s() == 0.0
    assert not bucket.try_take(4)
    assert bucket.try_take(3)
    assert bucket.wait_s(2) == pytest.approx(2.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_rejects_a_meaningless_configuration(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate_per_s=rate, burst=burst)
