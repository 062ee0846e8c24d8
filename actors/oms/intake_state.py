"""Operator intake pauses, global and per venue, persisted in the state dir.

`tradepulse intake pause [--venue V] --reason "..."` closes intake (for one venue, or for
all); `resume` reopens it. The OMS executes both (`IntakeGate.control`) and keeps them in
`protocol.paths.intake_state_path` (`<state>/intake.json`) with the durable-write helper
(`actors.runtime.durable.write_atomic`: a kill -9 mid-write leaves the old or the new file,
never a torn one), so an OMS restart keeps them; `tradepulse run --intake paused` writes a
global pause before the OMS starts (`pause_at_start`). The file lives outside `oms/`: a
cold start does not reopen intake an operator closed.

An unreadable file (bad JSON, a wrong shape: a disk fault or a hand edit) is a global
pause (fail closed), logged `intake_state_unreadable` and counted
(`tradepulse_intake_state_unreadable_total`); `intake resume` replaces it (the next save
keeps the unreadable file as `intake.json.corrupt.<ts_ns>` first, logged).

A venue whose connector an operator stopped (`tradepulse stop connector.V`,
`actors.runtime.operator_stops`) refuses orders too, with a reason saying so; one whose
connector the supervisor gave up on (same file, `gave_up`) refuses them VENUE_DOWN, naming
the connector and why, and its never-sent orders are rejected as for a stop. Cancels are
never refused here; under a pause a replace that adds risk (a higher quantity, another
price) is refused as a new order is, one that only lowers the quantity goes through.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from actors.oms.order_book import OrderBook
from actors.oms.orders import (
    DROPPED_GAVE_UP,
    DROPPED_OUT_OF_SESSION,
    DROPPED_OUTSIDE_TRADING_WINDOW,
    DROPPED_STOPPED,
    DROPPED_UNSENT,
)
from actors.runtime import metrics
from actors.runtime.durable import remove_stale_temps, write_atomic
from actors.runtime.operator_stops import OperatorStop, StopsWatcher
from actors.runtime.ratelog import LogBudget
from protocol.commands import Intake as IntakeCommand
from protocol.messages import ErrorCode, OrderStatus
from protocol.paths import intake_state_path, read_regular

STARTED_PAUSED = "started with --intake paused"
_NOT_AT_VENUE = frozenset({OrderStatus.PENDING_RISK, OrderStatus.PENDING_SUBMIT})


class Pause(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: str
    since: float  # time.time() of the pause
    by: str | None = None  # the operator (`OperatorId.describe()`: user, uid, pid)


class IntakePauses(BaseModel):
    """The file's content: the global pause (None: none) and the venues paused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    global_pause: Pause | None = None
    venues: dict[str, Pause] = {}

    def paused(self) -> bool:
        return self.global_pause is not None or bool(self.venues)


def load_pauses(path: Path) -> tuple[IntakePauses, str | None]:
    """The persisted pauses and, for an unreadable file, what is wrong with it (then a
    global pause saying so: fail closed). A missing file: no pauses."""
    try:
        raw = read_regular(path)  # a FIFO in its place: unreadable, not waited on
    except FileNotFoundError:
        return IntakePauses(), None
    except OSError as exc:
        problem = f"{type(exc).__name__}: {exc}"
    else:
        try:
            return IntakePauses.model_validate_json(raw), None
        except ValidationError as exc:
            problem = f"{exc.error_count()} error(s): {exc.errors()[0]['msg']}"
    reason = f"intake state file {path.name} unreadable ({problem}): fail closed"
    return IntakePauses(global_pause=Pause(reason=reason[:256], since=time.time())), problem


def save_pauses(path: Path, pauses: IntakePauses) -> None:
    """Durably replace the file (raises OSError, e.g. a full disk)."""
    write_atomic(path, pauses.model_dump_json(indent=1).encode())
    remove_stale_temps(path)


def keep_unreadable(path: Path, log: Any) -> None:
    """Before an unreadable file is replaced, keep a copy as `<name>.corrupt.<ts_ns>` for
    the post-mortem (as the kill-switch does); on a full disk it is skipped (logged)."""
    aside = path.with_name(f"{path.name}.corrupt.{time.time_ns()}")
    try:
        aside.write_bytes(read_regular(path))
    except OSError as exc:
        log.error("intake_state_corrupt_not_kept", path=str(path), error=str(exc))
    else:
        log.warning("intake_state_corrupt_kept", path=str(aside))


def transition(
    pauses: IntakePauses, cmd: IntakeCommand, now: float, by: str | None = None
) -> IntakePauses:
    """The pauses after `cmd` (pause or resume; its venue is known), paused `by` whom."""
    if cmd.action == "pause":
        pause = Pause(reason=cmd.reason.strip(), since=now, by=by)
        if cmd.venue is None:
            return pauses.model_copy(update={"global_pause": pause})
        return pauses.model_copy(update={"venues": {**pauses.venues, cmd.venue: pause}})
    if cmd.action == "resume" and cmd.venue is None:
        return pauses.model_copy(update={"global_pause": None})
    rest = {v: p for v, p in pauses.venues.items() if v != cmd.venue}
    return pauses.model_copy(update={"venues": rest})


def describe(pauses: IntakePauses, stopped: Mapping[str, OperatorStop]) -> str:
    """One line: what is paused, and why."""
    parts = []
    if pauses.global_pause is not None:
        parts.append(f"paused globally ({pauses.global_pause.reason})")
    for venue, p in sorted(pauses.venues.items()):
        parts.append(f"{venue} paused ({p.reason})")
    for venue, stop in sorted(stopped.items()):
        parts.append(f"{venue} {stop.describe()}")
    return "; ".join(parts) if parts else "no operator pause"


def control_offline(
    state_dir: Path, cmd: IntakeCommand, venues: list[str], log: Any, by: str | None = None
) -> tuple[bool, str]:
    """`intake pause|resume|status` while the OMS has no process (between restarts): the
    supervisor changes the file itself, which the OMS's next incarnation loads (the
    supervisor spawns it from the same loop, so not while this runs). An unreadable file's
    fail-closed global pause is kept unless this resumes it."""
    if cmd.venue is not None and cmd.venue not in venues:
        return False, f"unknown venue {cmd.venue!r}; venues: {', '.join(venues)}"
    path = intake_state_path(state_dir)
    pauses, problem = load_pauses(path)
    if cmd.action == "status":
        return True, describe(pauses, {}) + " (the OMS is not running)"
    new = transition(pauses, cmd, time.time(), by)
    try:
        if problem is not None:
            keep_unreadable(path, log)
        save_pauses(path, new)
    except OSError as exc:
        log.error("intake_state_write_failed", path=str(path), error=str(exc))
        return False, f"intake not changed: cannot write {path}: {exc}"
    _log_change(log, cmd, via="supervisor", by=by)
    return True, describe(new, {}) + " (written for the OMS's next start)"


def _log_change(log: Any, cmd: IntakeCommand, via: str = "oms", by: str | None = None) -> None:
    event = "intake_paused" if cmd.action == "pause" else "intake_resumed"
    log.warning(event, scope=cmd.venue or "global", reason=cmd.reason, via=via, by=by)


def pause_at_start(state_dir: Path) -> None:
    """`tradepulse run --intake paused`: a global pause written before the OMS starts (the
    venue pauses kept). An existing global pause is kept (its reason and who paused), and
    an unreadable file is left alone: either pauses intake already."""
    path = intake_state_path(state_dir)
    pauses, problem = load_pauses(path)
    if problem is None and pauses.global_pause is None:
        pause = Pause(reason=STARTED_PAUSED, since=time.time())
        save_pauses(path, pauses.model_copy(update={"global_pause": pause}))


def unsent_reason(
    kill_switch: bool,
    out_of_session: bool,
    gate: IntakeGate,
    venue: str,
    window_closed: bool = False,
) -> str | None:
    """Why a queued order that never reached `venue` is rejected instead of sent now, or
    None: the kill-switch engaged, its session closed, the `[trading]` windows closed
    trading, or its connector stopped by an operator (as last seen by
    `IntakeGate.poll_stops`, and still), or given up on by the supervisor."""
    if kill_switch:
        return DROPPED_UNSENT
    if out_of_session:
        return DROPPED_OUT_OF_SESSION
    if window_closed:
        return DROPPED_OUTSIDE_TRADING_WINDOW
    # a venue started since that poll: intake (which reads the file) took the order, send it
    if venue not in gate.stopped_venues or venue not in (stopped := gate.stopped()):
        return None
    return DROPPED_STOPPED if stopped[venue].gave_up is None else DROPPED_GAVE_UP


def gave_up_text(venue: str, stop: OperatorStop) -> str:
    """Why `venue`'s new orders are refused: the supervisor gave up on its connector."""
    return (
        f"{venue} is down: {stop.actor} gave up: {stop.gave_up}, {stop.reason}; orders are"
        f" refused until it runs again (`tradepulse restart {stop.actor}`)"
    )


def open_at_venue(book: OrderBook) -> dict[str, int]:
    """venue -> its orders that reached (or may have reached) the venue and are not done:
    stopping its connector would leave their fills unseen (`tradepulse stop` refuses)."""
    out: dict[str, int] = {}
    for order in book.orders(open_only=True):
        if reached_venue(order.status):
            out[order.venue] = out.get(order.venue, 0) + 1
    return out


def reached_venue(status: OrderStatus) -> bool:
    """An order in `status` was (or may have been) sent to its venue."""
    return status not in _NOT_AT_VENUE


class IntakeGate:
    """What closes the OMS's intake besides readiness: operator pauses, stopped venues and
    the OMS's own stop (`draining`)."""

    def __init__(self, state_dir: Path, stops_path: Path, venues: list[str], log: Any) -> None:
        self.path = intake_state_path(state_dir)
        self.venues = venues
        self.log: structlog.typing.FilteringBoundLogger = log
        self.draining = False
        self.stops = StopsWatcher(stops_path)
        self.stopped_venues: frozenset[str] = frozenset()  # as of the last `poll_stops`
        self._seen_stops: dict[str, OperatorStop] = {}  # the stops `poll_stops` returned
        self._stops_log = LogBudget()
        self._turn_stops: dict[str, OperatorStop] | None = None  # read this loop turn
        self._per_turn = False  # `next_turn` called: the loop's turns bound each read
        self.pauses, problem = load_pauses(self.path)
        self._unreadable = problem is not None  # kept aside before the next save
        if problem is not None:
            metrics.INTAKE_STATE_UNREADABLE.inc()
            self.log.error("intake_state_unreadable", path=str(self.path), error=problem)
        elif self.pauses.paused():
            self.log.warning("intake_pauses_loaded", **self.view())
        self._gauges()

    # ------------------------------------------------------------------ intake

    def refusal(self, venue: str) -> tuple[ErrorCode, str] | None:
        """Why a new order for `venue` is refused now, or None."""
        if self.draining:
            return ErrorCode.NOT_READY, "the OMS is stopping"
        if (paused := self.pause_refusal(venue)) is not None:
            return paused
        stop = self.stopped().get(venue)
        if stop is not None and stop.gave_up is not None:
            return ErrorCode.VENUE_DOWN, gave_up_text(venue, stop)
        if stop is not None:
            return ErrorCode.INTAKE_PAUSED, (
                f"{venue} is stopped by an operator ({stop.reason or 'no reason given'}): its "
                f"connector is offline until `tradepulse start {stop.actor}`"
            )
        return None

    def pause_refusal(self, venue: str) -> tuple[ErrorCode, str] | None:
        """The operator pause (global, or of `venue`) that refuses a new order, or a replace
        that adds risk (more quantity, another price: as the trading-window gate does)."""
        g = self.pauses.global_pause
        if g is not None:
            return ErrorCode.INTAKE_PAUSED, f"order intake is paused by an operator: {g.reason}"
        p = self.pauses.venues.get(venue)
        if p is not None:
            return (
                ErrorCode.INTAKE_PAUSED,
                f"intake for {venue} is paused by an operator: {p.reason}",
            )
        return None

    def next_turn(self) -> None:
        """The OMS's loop turn is over: the next question reads the stops file again (once
        a turn, not for every submit: its stat was 2.5 % of the OMS's CPU under load)."""
        self._per_turn, self._turn_stops = True, None

    def stopped(self) -> dict[str, OperatorStop]:
        """venue -> its connector's `OperatorStop` (as read this loop turn)."""
        if self._turn_stops is not None:
            return self._turn_stops
        venues = self.stops.venues()
        if self._per_turn:
            self._turn_stops = venues
        if self.stops.error is not None and (skipped := self._stops_log.take()) is not None:
            self.log.warning(
                "operator_stops_unreadable", error=self.stops.error, suppressed=skipped
            )
        return venues

    def stopped_now(self) -> dict[str, OperatorStop]:
        """`stopped` read from the file now, the turn's reading replaced: for the moment a
        request is handed to a connector (a turn that read the file before a stop was
        written may last long enough for the stop, the connector's exit and a client's
        cancel to come in it)."""
        self._turn_stops = None
        return self.stopped()

    def poll_stops(self) -> dict[str, OperatorStop]:
        """The venues whose connector was stopped (or given up on) since the last poll, with
        their stops, logged (the OMS calls it every 0.1 s and drops their queued never-sent
        orders once, `unsent_reason`; an order pushed later for a stopped venue is judged at
        the push by `stopped_venues`)."""
        stops = self.stopped()  # a stop not seen yet: also a venue stopped again after a
        # `start` this poll missed (start and stop within 0.1 s: found by make test)
        new = {v: stops[v] for v in sorted(stops) if self._seen_stops.get(v) != stops[v]}
        for venue, stop in new.items():
            self.log.warning("venue_stop_seen", venue=venue, gave_up=stop.gave_up)
        self.stopped_venues, self._seen_stops = frozenset(stops), dict(stops)
        return new

    @property
    def globally_paused(self) -> bool:
        return self.draining or self.pauses.global_pause is not None

    # ------------------------------------------------------------------ operator command

    def control(self, cmd: IntakeCommand, by: str | None = None) -> tuple[bool, str]:
        """Carry out `intake pause|resume|status` for operator `by`; (ok, what to tell)."""
        if cmd.venue is not None and cmd.venue not in self.venues:
            return False, f"unknown venue {cmd.venue!r}; venues: {', '.join(self.venues)}"
        if cmd.action == "status":
            return True, self.describe()
        new = transition(self.pauses, cmd, time.time(), by)
        try:
            if self._unreadable:
                keep_unreadable(self.path, self.log)
            save_pauses(self.path, new)
            self._unreadable = False
        except OSError as exc:
            self.log.error("intake_state_write_failed", path=str(self.path), error=str(exc))
            if cmd.action == "resume":  # not persisted: an OMS restart would close it again
                return False, f"intake not resumed: cannot write {self.path}: {exc}"
            self.pauses = new  # a pause holds in memory at least (fail closed)
            self._gauges()
            return False, f"paused, but not persisted (an OMS restart forgets it): {exc}"
        self.pauses = new
        self._gauges()
        _log_change(self.log, cmd, by=by)
        return True, self.describe()

    # ------------------------------------------------------------------ observation

    def describe(self) -> str:
        """One line: what is paused, and why."""
        return describe(self.pauses, self.stopped())

    def view(self) -> dict[str, Any]:
        """For the OMS's heartbeat info (`tradepulse status`)."""
        g, stops = self.pauses.global_pause, self.stopped()
        return {
            "global": None if g is None else g.model_dump(),
            "venues": {v: p.model_dump() for v, p in sorted(self.pauses.venues.items())},
            "stopped": {v: s.reason for v, s in sorted(stops.items()) if s.gave_up is None},
            "gave_up": {
                v: f"{s.gave_up}: {s.reason}" for v, s in sorted(stops.items()) if s.gave_up
            },
        }

    def venue_text(self, venue: str, text: str) -> str:
        """The OMS's view of a venue for status, with a stop or a pause in front."""
        stop = self.stopped().get(venue)
        if stop is not None:
            return stop.describe()
        if venue in self.pauses.venues:
            return f"paused, {text}"
        return text

    def _gauges(self) -> None:
        metrics.INTAKE_PAUSED.labels(scope="global").set(self.pauses.global_pause is not None)
        for venue in self.venues:
            metrics.INTAKE_PAUSED.labels(scope=venue).set(venue in self.pauses.venues)
