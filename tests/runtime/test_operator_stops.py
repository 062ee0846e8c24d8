"""The operator stops file (`actors.runtime.operator_stops`) as the OMS and the heartbeat
read it: a missing file is nothing stopped, a change is seen at the next look, an
unreadable file is nothing stopped with the error kept for the reader to log."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from unittest import mock

from actors.runtime.operator_stops import (
    OperatorStop,
    StopsWatcher,
    bounded_stop,
    parse_stops,
    stops_as_data,
    stops_from_data,
    write_stops,
)
from protocol.domain import MAX_REASON_CHARS


def test_missing_then_written_then_emptied(tmp_path: Path) -> None:
    path = tmp_path / "operator_stops.json"
    watcher = StopsWatcher(path)
    assert watcher.venues() == {} and watcher.error is None
    stop = OperatorStop("connector.simB", "maintenance", 12.5, "simB")
    write_stops(path, {"connector.simB": stop, "heartbeat": OperatorStop("heartbeat", "", 1.0)})
    assert watcher.venues() == {"simB": stop}  # only connectors stop a venue
    assert parse_stops(path.read_bytes())["heartbeat"].venue is None
    write_stops(path, {})
    assert watcher.venues() == {}


def test_an_unreadable_file_is_nothing_stopped_with_the_error_kept(tmp_path: Path) -> None:
    path = tmp_path / "operator_stops.json"
    watcher = StopsWatcher(path)
    for raw in (b"{torn", b'{"stops": []}', b'{"stops": {"x": 1}}', b"[]"):
        path.write_bytes(raw)
        assert watcher.venues() == {}
        assert watcher.error is not None
    write_stops(path, {"connector.simA": OperatorStop("connector.simA", "r", 1.0, "simA")})
    assert list(watcher.venues()) == ["simA"] and watcher.error is None


def test_describe_says_who_stopped_it_and_why() -> None:
    assert OperatorStop("connector.simA", "maint", 0.0).describe() == (
        "stopped (by operator: maint)"
    )
    assert OperatorStop("connector.simA", "", 0.0).describe() == (
        "stopped (by operator: no reason given)"
    )


def test_a_failed_stat_is_nothing_stopped_and_its_error_clears_when_it_recovers(
    tmp_path: Path,
) -> None:
    """A stat that fails (EACCES on the runtime dir) is nothing stopped (fail closed: a
    silent connector counts as an outage) with the error set; the next successful look
    clears the error and sees the stop again, and so does a missing file."""
    path = tmp_path / "operator_stops.json"
    stop = OperatorStop("connector.simB", "maint", 1.0, "simB")
    write_stops(path, {"connector.simB": stop})
    watcher = StopsWatcher(path)
    assert watcher.venues() == {"simB": stop}
    real = os.stat

    def denied(p: Any, *args: Any, **kwargs: Any) -> Any:
        if str(p) == str(path):
            raise PermissionError(13, "Permission denied")
        return real(p, *args, **kwargs)

    with mock.patch("os.stat", denied):
        assert watcher.venues() == {}
        assert watcher.error is not None and "Permission denied" in watcher.error
    assert watcher.venues() == {"simB": stop} and watcher.error is None
    with mock.patch("os.stat", denied):
        watcher.venues()
    path.unlink()
    assert watcher.venues() == {} and watcher.error is None


def test_a_gave_up_record_round_trips_and_says_so(tmp_path: Path) -> None:
    """A connector the supervisor gave up on: `gave_up` (why) survives the file and an edge's
    report (`stops_as_data` / `stops_from_data`, `bounded_stop`), `describe` says "gave up
    (<why>)", and only operator stops are `operator_venues` (what the heartbeat excuses)."""
    path = tmp_path / "operator_stops.json"
    gave_up = OperatorStop(
        "connector.simB", "its state is corrupt", 3.0, "simB", None, "state_corrupt"
    )
    stop = OperatorStop("connector.simA", "maint", 2.0, "simA", "alice (uid 1, pid 2)")
    write_stops(path, {"connector.simB": gave_up, "connector.simA": stop})
    assert json.loads(path.read_bytes())["stops"]["connector.simB"]["gave_up"] == "state_corrupt"
    assert "gave_up" not in json.loads(path.read_bytes())["stops"]["connector.simA"]
    watcher = StopsWatcher(path)
    assert watcher.venues() == {"simB": gave_up, "simA": stop}
    assert watcher.operator_venues() == {"simA": stop}
    assert gave_up.describe() == "gave up (state_corrupt)"
    back = stops_from_data(json.loads(json.dumps(stops_as_data({"connector.simB": gave_up}))))
    assert back == {"connector.simB": gave_up}
    long = OperatorStop("connector.simB", "r", 1.0, "elsewhere", None, "x" * 1000)
    assert bounded_stop(long).gave_up == "x" * MAX_REASON_CHARS
    assert bounded_stop(long).venue == "simB"


def test_an_older_file_without_the_field_reads_as_operator_stops(tmp_path: Path) -> None:
    """A file (or an edge's report) written before `gave_up` existed: every entry is an
    operator's stop, excused by the heartbeat as before."""
    path = tmp_path / "operator_stops.json"
    old = {"connector.simB": {"reason": "maint", "since": 1.0, "venue": "simB", "by": None}}
    path.write_bytes(json.dumps({"stops": old}).encode())
    [stop] = parse_stops(path.read_bytes()).values()
    assert stop.gave_up is None and stop.describe() == "stopped (by operator: maint)"
    assert list(StopsWatcher(path).operator_venues()) == ["simB"]
