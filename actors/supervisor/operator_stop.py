"""`tradepulse stop ACTOR` / `start ACTOR`: the supervisor's side of an operator stop.

A stopped actor stays stopped (no restart, no restart budget used, not counted as a crash,
`Child.hold`) until `start` (`Child.release`, with a fresh budget). The stops are written
to the runtime dir (`actors.runtime.operator_stops`) BEFORE the actor is asked to stop, so
the OMS refuses orders for a stopped connector's venue with a reason saying so and the
heartbeat never counts its silence as an outage (no `connector_outage` kill-switch);
`start` removes the stop once the new process is spawned.

The kill-switch wins over a stop: risk's restart of a connector whose mass cancel goes
unanswered (`Restart.override_stop`) lifts the stop, so the cancel reaches the venue,
even when the stops file cannot be written (logged `operator_stops_write_failed`).

Decisions (docs/runbook.md): risk and the OMS are critical, a stop of either is refused
(`tradepulse shutdown` stops the whole system); stops are not persisted across a
supervisor restart: a fresh `run` starts everything (the file is removed at start).

A connector the supervisor gives up on (over its restart budget, or `state_corrupt`) is
recorded in the same file (`gave_up`, `OperatorStops.gave_up`), so the OMS refuses its
venue's orders at once instead of sending them to no connector; the record goes when an
incarnation of it is READY (`revived`, after `restart`, `start` or a backoff's respawn). It is no
operator's stop: `held` does not return it, and the heartbeat still counts an outage.

Across hosts, an edge's supervisor holds the stops of its own actors (and forgets them when
it restarts, as on one host); the core keeps a record of them for its OMS and heartbeat
(`hold_elsewhere`), which follows the edge's report (`align_elsewhere`) while the link is up.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import structlog

from actors.runtime import metrics
from actors.runtime.operator_stops import OperatorStop, bounded_stop, write_stops
from actors.supervisor.child import Child
from actors.supervisor.restart_policy import unknown_actor
from actors.supervisor.stop_guard import stop_refusal
from actors.supervisor.venues import STATE_CORRUPT_TEXT
from protocol.paths import operator_stops_path


class OperatorStops:
    """The actors an operator stopped; the daemon gives it its children, how to stop one
    (politely, escalating), spawn one, and let the start queue go past one (a child stopped
    while the system is still starting must not hold up the actors after it)."""

    def __init__(
        self,
        children: Mapping[str, Child],
        runtime_dir: Path,
        stop: Callable[[Child, str], None],
        spawn: Callable[[Child], None],
        leave_start_queue: Callable[[Child], None],
        log: structlog.typing.FilteringBoundLogger,
    ) -> None:
        self._children = children
        self._path = operator_stops_path(runtime_dir)
        self._stop, self._spawn, self._log = stop, spawn, log
        self._leave_start_queue = leave_start_queue
        self._stops: dict[str, OperatorStop] = {}
        with contextlib.suppress(OSError):  # a fresh run: nothing is stopped
            self._path.unlink(missing_ok=True)

    def _write(self, stops: dict[str, OperatorStop]) -> OSError | None:
        """Persist `stops` and make them this host's records; the error (logged, the records
        unchanged) when the file cannot be written."""
        try:
            write_stops(self._path, stops)
        except OSError as exc:
            self._log.error("operator_stops_write_failed", path=str(self._path), error=str(exc))
            return exc
        self._stops = stops
        return None

    def held(self, actor: str) -> OperatorStop | None:
        """The operator's stop of `actor` (None: not stopped; given up on is no stop)."""
        stop = self._stops.get(actor)
        return stop if stop is not None and stop.gave_up is None else None

    def gave_up(self, child: Child, why: str) -> None:
        """The supervisor gave up on `child` (`why`: state_corrupt, restart_intensity): a
        connector's is recorded for the OMS (its venue's orders refused, VENUE_DOWN) until
        an incarnation of it is READY; a failed write is logged (the OMS then learns by
        timeouts)."""
        venue = _connector_venue(child)
        if venue is None or child.id in self._stops:  # an operator's stop stays
            return
        detail = _gave_up_reason(why)
        stop = OperatorStop(child.id, detail, time.time(), venue, gave_up=why)
        if self._write({**self._stops, child.id: stop}) is None:
            self._log.warning("connector_gave_up_recorded", child=child.id, venue=venue, why=why)

    def revived(self, child: Child) -> None:
        """`child` is READY (or running, at each of its heartbeats): the record that the
        supervisor gave up on it goes. Not at its spawn: a retry over its restart budget
        that dies starting would let orders in for a venue still DOWN. A failed write keeps
        the record (its orders refused: fail closed) until a heartbeat's call succeeds."""
        stop = self._stops.get(child.id)
        if stop is None or stop.gave_up is None:
            return
        if self._write({a: s for a, s in self._stops.items() if a != child.id}) is None:
            self._log.info("connector_gave_up_cleared", child=child.id, why=stop.gave_up)

    def unknown(self, actor: str) -> str:
        """Why `actor` is no actor here (`restart_policy.unknown_actor`)."""
        return unknown_actor(actor, (c.spec for c in self._children.values()))

    def stop(
        self, actor: str, reason: str, *, by: str | None = None, force: bool = False
    ) -> tuple[bool, str]:
        """(ok, what to tell the operator); `by`: who; `force`: even with orders open at
        the connector's venue."""
        child = self._children.get(actor)
        if child is None:
            return False, self.unknown(actor)
        if (refused := stop_refusal(child, self._children, force)) is not None:
            return False, refused
        if (held := self.held(actor)) is not None:  # one given up on: now held by the operator
            return True, f"{actor} is already {held.describe()}"
        stop = OperatorStop(actor, reason, time.time(), _connector_venue(child), by)
        if (exc := self._write({**self._stops, actor: stop})) is not None:
            # the OMS and the heartbeat would not know: refuse
            return False, f"{actor} not stopped: cannot write {self._path}: {exc}"
        metrics.ACTOR_STOPPED_BY_OPERATOR.labels(actor=actor).set(1)
        self._log.warning(
            "actor_stop_requested", child=actor, reason=reason, venue=stop.venue, by=by, force=force
        )
        running = child.hold(reason)
        self._leave_start_queue(child)
        note = _orders_note(stop.venue)
        if running:
            self._stop(child, "operator_stop")
            return True, f"{actor} stopping (by operator: {reason or 'no reason given'}){note}"
        return True, f"{actor} {stop.describe()}{note}"

    def start(self, actor: str, why: str = "operator", by: str | None = None) -> tuple[bool, str]:
        """(ok, what to tell the operator); `why` other than "operator": the stop is
        overridden (risk's kill-switch mass cancel must reach the venue); `by`: who."""
        child = self._children.get(actor)
        if child is None:
            return False, self.unknown(actor)
        if actor not in self._stops:  # a gave-up record: `start` starts it, as `restart` does
            return False, f"{actor} was not stopped by an operator (state {child.state.value})"
        rest = {a: s for a, s in self._stops.items() if a != actor}
        if (exc := self._write(rest)) is not None:
            if why == "operator":  # the kill-switch's mass cancel goes on regardless
                return False, f"{actor} not started: cannot write {self._path}: {exc}"
            self._stops = rest
        metrics.ACTOR_STOPPED_BY_OPERATOR.labels(actor=actor).set(0)
        self._log.warning("actor_start_requested", child=actor, why=why, by=by)
        if child.release():
            self._spawn(child)
        return True, f"{actor} starting"

    def hold_elsewhere(
        self, actor: str, venue: str | None, reason: str, by: str | None
    ) -> str | None:
        """The core, before it has an edge's supervisor stop `actor` (`venue`: a connector's):
        recorded here too, so this host's OMS refuses orders for the venue saying so and its
        heartbeat counts no outage, as on one host. None, or why it cannot be recorded."""
        stop = OperatorStop(actor, reason, time.time(), venue, by)
        if (exc := self._write({**self._stops, actor: stop})) is not None:
            return f"{actor} not stopped: cannot write {self._path}: {exc}"
        self._log.warning("actor_stop_requested", child=actor, reason=reason, venue=venue, by=by)
        return None

    def follow_elsewhere(self, actor: str) -> None:
        """The edge's supervisor answered that `actor` is not stopped (a stop it refused, a
        `start`, risk's restart that lifted it): this host's record goes."""
        if actor not in self._stops or actor in self._children:
            return
        if self._write({a: s for a, s in self._stops.items() if a != actor}) is None:
            self._log.warning("actor_start_requested", child=actor, why="across", by=None)

    def restore_elsewhere(self, actor: str, before: OperatorStop | None) -> None:
        """The core: a `stop` of an edge's actor got no answer that it is stopped (not sent:
        the link down; not answered): this host's record goes back to what it was before
        that stop (`before`: none, or the stop the edge still holds)."""
        if before is None:
            self.follow_elsewhere(actor)
            return
        if actor in self._children or self._stops.get(actor) == before:
            return
        self._write({**self._stops, actor: before})

    def align_elsewhere(
        self,
        group: str,
        reported: Mapping[str, OperatorStop],
        placed_there: Callable[[str], bool],
        busy: Collection[str] = (),
    ) -> None:
        """The core: host group `group` reported the operator stops of its actors (its link,
        while up; `placed_there`: is an actor that group's); this host's records follow, as
        `hold_elsewhere` / `follow_elsewhere` do (an actor in `busy` has a command on its way
        there: its answer settles it)."""
        hold, drop = realign(self._stops, reported, placed_there, busy)
        if not hold and not drop:
            return
        rest = {a: s for a, s in self._stops.items() if a not in drop} | hold
        if self._write(rest) is not None:
            return
        self._log.warning(
            "operator_stops_aligned", host_group=group, held=sorted(hold), dropped=sorted(drop)
        )

    def venues(self, board: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The venue board as status shows it: a stopped connector's venue is "stopped"
        (not DOWN, not an outage), with the operator's reason."""
        out = dict(board)
        for stop in self._stops.values():
            if stop.gave_up is not None:  # the board's DOWN says why (`VenueBoard.down`)
                continue
            if stop.venue is not None and stop.venue in out:
                out[stop.venue] = {**out[stop.venue], "state": "stopped", "detail": stop.describe()}
        return out


def realign(
    held: Mapping[str, OperatorStop],
    reported: Mapping[str, OperatorStop],
    placed_there: Callable[[str], bool],
    busy: Collection[str],
) -> tuple[dict[str, OperatorStop], set[str]]:
    """(the stops to record here, the actors whose record goes): another host group's
    actors (`placed_there`, by this host's config) follow its report, except those in `busy`;
    an entry for any other actor is ignored, and what is recorded is bounded (a connector's
    venue its actor id's, never the venue reported: another host's report never stops a
    venue it does not run; the reason and who cut at `MAX_REASON_CHARS`). A record that
    changed kind there (given up on, then stopped by an operator, or back) is replaced."""
    hold = {
        a: bounded_stop(s)
        for a, s in reported.items()
        if placed_there(a) and a not in busy and (a not in held or held[a].gave_up != s.gave_up)
    }
    drop = {a for a in held if placed_there(a) and a not in reported and a not in busy}
    return hold, drop


def _gave_up_reason(why: str) -> str:
    """What the OMS's refusal says of a connector given up on for `why`."""
    if why == "state_corrupt":
        return STATE_CORRUPT_TEXT
    return f"over its restart budget ({why}; it is retried at the longest backoff)"


def _connector_venue(child: Child) -> str | None:
    return child.spec.venue if child.spec.kind == "connector" else None


def _orders_note(venue: str | None) -> str:
    """What a connector's stop does to the venue's orders (the reply says it)."""
    if venue is None:
        return ""
    return (
        f"; orders queued for {venue} and never sent are rejected; orders already at {venue}"
        " stay live there (their fills are seen after `start`)"
    )
