"""An edge's stops report, read by the core's link: whatever an edge sends, the link
outlives it (a report it cannot read is dropped and counted `malformed`), and what it keeps
is bounded: only the edge's own actors, their venue from the actor id, the reason and who
cut at `MAX_REASON_CHARS` (the link's heartbeat carries it to the supervisor)."""

from __future__ import annotations

import json
import types
from typing import Any

import pytest

from actors.link.actor import LinkActor
from actors.link.remote_control import MAX_STOPS_REPORT_BYTES, read_stops_report, stops_report
from actors.runtime.operator_stops import OperatorStop
from protocol.domain import MAX_REASON_CHARS

EDGE_ACTORS = {"connector.lse", "venuesim.lse"}


def _fake_core_link() -> Any:
    fake = types.SimpleNamespace(edge_stops={}, drops=[], _edge_actors={"edge-a": EDGE_ACTORS})
    fake._dropped = lambda peer, reason: fake.drops.append((peer, reason))
    return fake


BAD_REPORTS = [
    pytest.param(b"{x", id="not_json"),
    pytest.param(b'{"connector.lse": {"since": 1' + b"0" * 400 + b"}}", id="since_400_digits"),
    pytest.param(b'{"connector.lse": {"since": "nan"}}', id="since_nan"),
    pytest.param(b'{"connector.lse": {"since": 1e999}}', id="since_inf"),
    pytest.param(b'{"connector.lse": {"since": [1]}}', id="since_list"),
    pytest.param(b"[" * 100_000, id="nested_100k"),
    pytest.param(b"[" * 60_000, id="nested_under_the_size_cap"),
    pytest.param(b'{"connector.lse": {"reason": "' + b"x" * 70_000 + b'"}}', id="too_big"),
    pytest.param(
        json.dumps({f"connector.v{i}": {"since": 1.0} for i in range(3)}).encode(),
        id="more_stops_than_the_edge_has_actors",
    ),
]


@pytest.mark.parametrize("raw", BAD_REPORTS)
def test_a_report_the_core_cannot_read_is_dropped_as_malformed_not_a_crash(raw: bytes) -> None:
    """The core's link takes any bad report from an edge's ping (an int too big for a float,
    JSON nested past the recursion limit, a `since` that is not finite, a report too big or
    with more stops than the edge runs actors): counted `malformed`, the last good report
    kept, the link alive."""
    fake = _fake_core_link()
    good = OperatorStop("connector.lse", "maintenance", 1.0, "lse", "alice")
    fake.edge_stops["edge-a"] = {"connector.lse": good}
    LinkActor._on_stops_report(fake, "edge-a", raw)
    assert fake.drops == [("edge-a", "malformed")]
    assert fake.edge_stops["edge-a"] == {"connector.lse": good}


def test_a_report_keeps_only_the_edges_actors_with_their_own_venue_and_bounded_text() -> None:
    """An entry for an actor the edge does not run is ignored; a connector's venue is its
    actor id's (never the venue the report names: the core's own venue would be stopped);
    the reason and who are cut at `MAX_REASON_CHARS`."""
    raw = json.dumps(
        {
            "connector.lse": {"reason": "r" * 5000, "since": 2.5, "venue": "corevenue",
                              "by": "b" * 5000},
            "oms": {"reason": "no", "since": 1.0},
        }
    ).encode()  # fmt: skip
    assert len(raw) <= MAX_STOPS_REPORT_BYTES
    got = read_stops_report(raw, EDGE_ACTORS)
    assert got == {
        "connector.lse": OperatorStop(
            "connector.lse", "r" * MAX_REASON_CHARS, 2.5, "lse", "b" * MAX_REASON_CHARS
        )
    }


def test_an_edges_own_report_reads_back_as_it_was_sent() -> None:
    """What `stops_report` sends (reason and who within bounds) is what the core reads."""
    stops = {
        "connector.lse": OperatorStop("connector.lse", "maint", 3.0, "lse", "alice (uid 1)"),
        "venuesim.lse": OperatorStop("venuesim.lse", "", 4.0, None, None),
    }
    assert read_stops_report(stops_report(stops, EDGE_ACTORS), EDGE_ACTORS) == stops
    assert read_stops_report(stops_report(None, EDGE_ACTORS), EDGE_ACTORS) is None


def test_an_edges_gave_up_record_reaches_the_core_as_one() -> None:
    """A connector the edge's supervisor gave up on: the report carries `gave_up` (the
    core's OMS refuses its venue VENUE_DOWN, its heartbeat counts the outage); an operator's
    stop comes back as one (no `gave_up`)."""
    gave_up = OperatorStop(
        "connector.lse", "its state is corrupt", 5.0, "lse", None, "state_corrupt"
    )
    stopped = OperatorStop("venuesim.lse", "maint", 6.0, None, "bob")
    raw = stops_report({"connector.lse": gave_up, "venuesim.lse": stopped}, EDGE_ACTORS)
    back = read_stops_report(raw, EDGE_ACTORS)
    assert back == {"connector.lse": gave_up, "venuesim.lse": stopped}
    assert back["connector.lse"].describe() == "gave up (state_corrupt)"
