"""The actors an operator stopped (`tradepulse stop ACTOR`), and the connectors the
supervisor gave up on, as the other actors read it.

The supervisor owns the stops (`actors.supervisor.operator_stop`) and writes them here, in
the runtime dir (`protocol.paths.operator_stops_path`), before it stops the actor and
after it starts it again. The OMS reads it to refuse orders for a stopped venue with a
reason saying so (and to show the venue as stopped); the heartbeat reads it so that a
venue whose connector is deliberately offline is no outage (no kill-switch).

A connector the supervisor gave up on (over its restart budget, or its state corrupt: its
venue DOWN) is recorded here too, with `gave_up` saying why (`decision.why`), until an
incarnation of it is READY: the OMS refuses its venue's orders (VENUE_DOWN) and drops the never-sent
ones as for a stop, but the heartbeat does NOT excuse it (`operator_venues`): its silence is
an outage (kill-switch), unlike a deliberate stop. Absent from the data: an operator stop.

One run's worth: the supervisor writes an empty file when it starts (a fresh `run` starts
everything). A missing file is "nothing stopped"; an unreadable one too (logged by the
reader): a stop is an operator's convenience, never what keeps trading safe.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from actors.runtime.durable import write_atomic
from protocol.domain import MAX_REASON_CHARS
from protocol.paths import read_regular


@dataclass(frozen=True)
class OperatorStop:
    actor: str
    reason: str
    since: float  # time.time() of the stop
    venue: str | None = None  # a connector's venue
    by: str | None = None  # the operator (`OperatorId.describe()`: user, uid, pid)
    gave_up: str | None = None  # no operator's: the supervisor gave up on it, why (state_corrupt)

    def describe(self) -> str:
        """How status shows it: "stopped (by operator alice: <reason>)" (the name only), or
        "gave up (state_corrupt)" for a connector the supervisor gave up on."""
        if self.gave_up is not None:
            return f"gave up ({self.gave_up})"
        who = f" {self.by.split(' (', 1)[0]}" if self.by else ""
        return f"stopped (by operator{who}: {self.reason or 'no reason given'})"


def connector_venue(actor: str) -> str | None:
    """The venue of a connector's actor id (`connector.<venue>`, as the config names it);
    None for any other actor."""
    kind, _, venue = actor.partition(".")
    return venue if kind == "connector" and venue else None


def bounded_stop(stop: OperatorStop) -> OperatorStop:
    """A stop another host reported, as this host records it: the venue its actor's (not
    one it names), the reason and who cut at `MAX_REASON_CHARS`."""
    by = stop.by[:MAX_REASON_CHARS] if stop.by else None
    reason = stop.reason[:MAX_REASON_CHARS]
    gave_up = stop.gave_up[:MAX_REASON_CHARS] if stop.gave_up is not None else None
    return OperatorStop(stop.actor, reason, stop.since, connector_venue(stop.actor), by, gave_up)


def write_stops(path: Path, stops: dict[str, OperatorStop]) -> None:
    """Replace the file with `stops` (actor id -> stop); not fsynced: rebuilt every run."""
    data = stops_as_data(stops)
    write_atomic(path, json.dumps({"stops": data}, sort_keys=True).encode(), durable=False)


def stops_as_data(stops: dict[str, OperatorStop]) -> dict[str, dict[str, object]]:
    """actor id -> its stop as plain data (the file's "stops", an edge's report); "gave_up"
    only for a connector the supervisor gave up on (absent: an operator's stop)."""
    return {actor: _stop_data(s) for actor, s in stops.items()}


def _stop_data(s: OperatorStop) -> dict[str, object]:
    data: dict[str, object] = {"reason": s.reason, "since": s.since, "venue": s.venue, "by": s.by}
    if s.gave_up is not None:
        data["gave_up"] = s.gave_up
    return data


def parse_stops(raw: bytes) -> dict[str, OperatorStop]:
    """The file's content; ValueError if it is not what `write_stops` writes."""
    obj = json.loads(raw)
    return stops_from_data(obj.get("stops") if isinstance(obj, dict) else None)


def stops_from_data(stops: object) -> dict[str, OperatorStop]:
    """`stops_as_data`'s output back; ValueError (or TypeError) if it is something else (a
    `since` that is no finite number: too big for a float, nan, inf)."""
    if not isinstance(stops, dict):
        raise ValueError("no 'stops' object")
    out: dict[str, OperatorStop] = {}
    for actor, s in stops.items():
        if not isinstance(s, dict):
            raise ValueError(f"stop of {actor!r} is not an object")
        venue, by, gave_up = s.get("venue"), s.get("by"), s.get("gave_up")
        out[str(actor)] = OperatorStop(
            str(actor),
            str(s.get("reason", "")),
            _since(actor, s.get("since", 0.0)),
            str(venue) if venue else None,
            str(by) if by else None,
            None if gave_up is None else str(gave_up) or "unknown",
        )
    return out


def _since(actor: object, since: object) -> float:
    try:
        value = float(since)  # type: ignore[arg-type]  # anything else: TypeError
    except OverflowError as exc:  # an int of 400 digits
        raise ValueError(f"stop of {actor!r}: 'since' too big") from exc
    if not math.isfinite(value):
        raise ValueError(f"stop of {actor!r}: 'since' is not finite ({value})")
    return value


class StopsWatcher:
    """Follows the file: `venues()` costs one stat and re-reads only when it changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._venues: dict[str, OperatorStop] = {}
        self._stops: dict[str, OperatorStop] = {}
        self.error: str | None = None  # why the last read failed (the caller logs it)

    def venues(self) -> dict[str, OperatorStop]:
        """venue -> the stop of its connector; an unreadable file (stat or content) is
        nothing stopped, with `error` set until a look succeeds."""
        self._look()
        return self._venues

    def operator_venues(self) -> dict[str, OperatorStop]:
        """`venues` without the connectors the supervisor gave up on: the venues whose
        connector is deliberately offline (the heartbeat excuses their silence, no other)."""
        return {v: s for v, s in self.venues().items() if s.gave_up is None}

    def stops(self) -> dict[str, OperatorStop]:
        """actor id -> its stop (an edge's link reports them to the core), as `venues`."""
        self._look()
        return self._stops

    def _look(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._venues, self._stops, self.error = None, {}, {}, None
            return
        except OSError as exc:  # nothing stopped (fail closed: a silent venue is an outage)
            self._stamp, self._venues, self._stops = None, {}, {}  # re-read once seen again
            self.error = f"{type(exc).__name__}: {exc}"
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:  # `error` is still that content's (None, or unparsable)
            return
        self._stamp = stamp
        try:
            stops = parse_stops(read_regular(self.path))  # a FIFO: an error, not a wait
        except (OSError, ValueError, TypeError) as exc:
            self.error, self._venues, self._stops = f"{type(exc).__name__}: {exc}", {}, {}
            return
        self.error = None
        self._stops = stops
        self._venues = {s.venue: s for s in stops.values() if s.venue}
