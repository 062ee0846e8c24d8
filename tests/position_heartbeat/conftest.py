"""The heartbeat tests' default harness: `h`, beating every INTERVAL_S (`beating`; a module
may define its own `h`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.actor_stubs import Harness
from tests.position_heartbeat.beating import beating
from tests.position_heartbeat.test_actor import BEATS, INTERVAL_S, OUTAGE_S


@pytest.fixture
def h() -> Iterator[Harness]:
    with beating(
        INTERVAL_S,  # and the venue asked every beat (test_venue_interval)
        divergence_beats=BEATS,
        missing_intervals=2,
        oms={"outage_tolerance_s": OUTAGE_S},
        clock=True,  # answer windows of 0.8 x INTERVAL_S: on the wall clock, load missed them
    ) as harness:
        yield harness
