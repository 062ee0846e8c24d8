"""The connector's reconnect policy: venue states and backoff delays, pure."""

from __future__ import annotations

import pytest

from actors.connector.policy import ReconnectPolicy
from protocol.config import BackoffCfg
from protocol.messages import VenueConnState as S

BACKOFF = BackoffCfg(initial_s=0.05, factor=2.0, max_s=1.0, jitter=0.0)


def policy(down_after: int = 5, stable_s: float = 5.0, jitter: float = 0.0) -> ReconnectPolicy:
    b = BACKOFF.model_copy(update={"jitter": jitter})
    return ReconnectPolicy(b, down_after, stable_s, rand=lambda: 1.0)


def test_starts_connecting_and_failed_attempts_back_off_exponentially_to_the_cap() -> None:
    p = policy(down_after=100)
    assert p.state is S.CONNECTING
    retries = [p.on_down(False, 0.0) for _ in range(7)]
    assert [r.delay_s for r in retries] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert [r.attempt for r in retries] == [1, 2, 3, 4, 5, 6, 7]
    assert {r.state for r in retries} == {S.CONNECTING}


def test_down_after_n_consecutive_failures_then_retries_at_the_max_delay() -> None:
    """DOWN at the Nth failure, and every retry from then on waits the max delay."""
    p = policy(down_after=3)
    states = [p.on_down(False, 0.0) for _ in range(5)]
    assert [r.state for r in states] == [S.CONNECTING, S.CONNECTING, S.DOWN, S.DOWN, S.DOWN]
    assert [r.delay_s for r in states] == [0.05, 0.1, 1.0, 1.0, 1.0]
    assert p.on_attempt() is S.DOWN  # an attempt while DOWN does not leave DOWN
    assert p.on_up(10.0) is S.CONNECTED and p.failures == 0


def test_a_lost_session_is_disconnected_then_connecting_at_the_next_attempt() -> None:
    p = policy()
    p.on_up(0.0)
    retry = p.on_down(True, 100.0)
    assert (retry.state, retry.attempt, retry.delay_s) == (S.DISCONNECTED, 1, 0.05)
    assert p.on_attempt() is S.CONNECTING


def test_a_stable_session_resets_the_backoff_a_flapping_one_does_not() -> None:
    """A venue that takes the logon and drops it at once gets growing delays; one that
    stayed up `stable_s` is retried from the first step again."""
    p = policy(stable_s=5.0)
    delays = []
    now = 0.0
    for _ in range(4):
        p.on_up(now)
        now += 0.1
        delays.append(p.on_down(True, now).delay_s)
    assert delays == [0.05, 0.1, 0.2, 0.4]
    p.on_up(now)
    assert p.on_down(True, now + 5.0).delay_s == 0.05


def test_failures_count_only_consecutive_failed_attempts() -> None:
    p = policy(down_after=3)
    p.on_down(False, 0.0)
    p.on_down(False, 0.0)
    p.on_up(1.0)
    p.on_down(True, 2.0)
    p.on_attempt()
    retry = p.on_down(False, 2.0)
    assert (retry.state, retry.failures) == (S.CONNECTING, 1)


@pytest.mark.parametrize("rand", [0.0, 0.5, 1.0])
def test_jitter_stays_within_its_fraction_and_never_exceeds_the_cap(rand: float) -> None:
    b = BACKOFF.model_copy(update={"jitter": 0.2})
    p = ReconnectPolicy(b, 100, 5.0, rand=lambda: rand)
    delays = [p.on_down(False, 0.0).delay_s for _ in range(10)]
    nominal = [min(1.0, 0.05 * 2**i) for i in range(10)]
    for d, n in zip(delays, nominal, strict=True):
        assert n * 0.8 - 1e-9 <= d <= min(1.0, n * 1.2) + 1e-9
