"""Reconciliation's status queries and the venue's rate limit (issue 11, finding 3): the
OMS hands the connector one OrderStatusQuery naming every order it asks about; the adapter
turns it into one H per order, and those pass the same outbound token bucket as orders
(`rate_limit_per_s` / `rate_burst`): the excess waits, none goes out above the rate."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.connector.fix.test_adapter import Done, Harness, ask


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def test_status_requests_are_paced_by_the_outbound_token_bucket(h: Harness) -> None:
    """Ten H at 20 msg/s with a burst of 2: two leave at once, eight wait in the outbound
    queue, and the last reaches the venue no sooner than (10 - 2) / 20 s after the first."""
    a = h.connected(rate_limit_per_s=20.0, rate_burst=2)
    done = Done()
    started = time.monotonic()
    a.order_status([ask(f"c{i}") for i in range(10)], done)
    h.loop.turn(0)
    assert a.info()["queued"] == 8  # waiting for tokens, not on the wire

    def hs() -> int:
        return len([m for m in h.venue.received if m.msg_type == "H"])

    h.loop.run_until(lambda: hs() == 10, timeout_s=5)
    assert time.monotonic() - started >= (10 - 2) / 20.0 - 0.01
    h.loop.run_until(lambda: bool(done.calls), timeout_s=5)
    assert sorted(done.calls[0].unknown) == sorted(f"c{i}" for i in range(10))
