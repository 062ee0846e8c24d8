"""Heartbeat log volume through the real system: with nothing changing, the supervisor's log
carries one `heartbeat` line per venue every `heartbeat.log_every_n` beats (log level info),
not one per beat; a fill changes the views and is logged on the next beat."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.system_ops import client, submit_when_open

pytestmark = pytest.mark.integration

EVERY_N = 5
INTERVAL_S = 0.2


def test_quiet_venues_log_one_heartbeat_line_per_n_beats(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Over 4 info lines of a venue with no orders, each later line comes N beats after the
    one before (the beat numbers count every beat) and says N-1 beats went to debug. After a
    fill on simA one of the next beats logs the new position (a change), not the Nth."""
    sut = start_system(
        overrides={
            "heartbeat": {
                "interval_s": INTERVAL_S,
                "venue_positions_interval_s": INTERVAL_S,
                "log_every_n": EVERY_N,
            }
        }
    )

    def lines(venue: str, since: int = 0) -> list[dict[str, Any]]:
        return sut.events("heartbeat", since=since, venue=venue)

    quiet = eventually(lambda: lines("simA") if len(lines("simA")) >= 4 else None, 20.0)[:4]
    beats = [e["beat"] for e in quiet]
    assert [b - a for a, b in zip(beats, beats[1:], strict=False)] == [EVERY_N] * 3, quiet
    assert [e["quiet_beats"] for e in quiet[1:]] == [EVERY_N - 1] * 3
    assert all(e["diff"] == {} and e["venue_positions"] == {} for e in quiet)
    assert len(lines("simB")) <= len(lines("simA")) + 1  # the same for the other venue

    with client(sut) as c:
        since = sut.mark()
        order = submit_when_open(c, "simA", "BUY", "10", price="101.00")  # crosses the ask
        c.wait_for_status(order.client_order_id, {OrderStatus.FILLED}, 10.0)
        filled_at = sut.actor("heartbeat")["info"]["beats"]
        changed = eventually(
            lambda: [e for e in lines("simA", since) if e["venue_positions"] == {"AAPL": "10"}],
            10.0,
        )[0]
    assert changed["oms_positions"] == {"AAPL": "10"}
    assert (
        changed["beat"] <= filled_at + 3
    )  # the next beats (+ slack for a missed one), not the Nth
