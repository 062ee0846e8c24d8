"""The heartbeat actor: position heartbeats across venues (runbook step `heartbeat`).

Two clocks. Every `heartbeat.interval_s` (the beat): `GetPositions` to the OMS, and the
comparison. Every `heartbeat.venue_positions_interval_s` (default 30 s): `GetPositions`
to each venue's connector too (the venue's own positions, FIX AN -> AP), so a venue gets
one request per interval, not one per beat. When a beat's answers are in (or timed out),
per venue: log `heartbeat` with both views, the round-trip latency, `venue_age_s` (how
old the venue answer is: 0 when asked this beat) and the difference (at info when a view,
the difference or the divergence count changed, or every `heartbeat.log_every_n` beats;
at debug otherwise: `beatlog`); set
`tradepulse_open_positions{venue,symbol}` (the venue's view),
`tradepulse_last_heartbeat_timestamp_seconds{venue}`,
`tradepulse_position_compared_timestamp_seconds{venue}` (kept across restarts of the
heartbeat: `compared_file`) and `tradepulse_position_divergence{venue}` (`gauges`); stream a
`position_snapshot` event through the OMS.

Between requests a beat compares the last venue answer with the OMS's current view
(logged, streamed, the gauge moves), but only a FRESH answer (asked this beat) counts
towards a divergence, resets it, or sets the divergence gauge: an older answer differs by
every fill since. A fresh answer naming its execution cut is compared with the OMS's
positions as of that cut (`actors.position_heartbeat.cut`). A fresh answer that diverges
makes the next beats ask the venue again until it clears or reaches `divergence_beats`.

Escalation (`actors.position_heartbeat.track`):
- a difference beyond `position_tolerance` for `divergence_beats` consecutive fresh beats
  engages the kill-switch (`position_divergence`), once per episode;
- a venue request unanswered is logged `heartbeat_missed`; `missing_intervals` unanswered
  requests in a row log `heartbeat_missing` (the alert); a venue without an answer for
  longer than `oms.outage_tolerance_s` (checked at each unanswered request: the config
  keeps the venue interval at most half the tolerance, so one lost request never reaches
  it) engages the kill-switch (`connector_outage`) if `engage_on_missing` - a short gap
  during a normal reconnect does not halt trading. An unanswered venue is asked again
  at its interval, not every beat.
A venue outside its trading session (the connector answers OUT_OF_SESSION: planned
downtime, `[venues.schedule]`) is no outage: logged `heartbeat_out_of_session`, never
missed, its outage clock starts again from that answer, and the last-heartbeat gauge moves
(the NoPositionHeartbeat alert stays quiet through the night). A venue whose connector an
operator stopped (`tradepulse stop connector.V`, `actors.runtime.operator_stops`) is no
outage either: not asked, never missed, its outage clock held at zero until `start` (not
one the supervisor gave up on, `gave_up` in that file: its silence is an outage, as ever).
The engage request (`KillSwitchCommand` to risk) is re-sent every beat until risk confirms.

A venue without RequestForPositions: its connector answers from its fill ledger
(`Positions.source = "ledger"`), compared like venue positions (never "missing" while its
session is up); a ledger that missed earlier fills (`"ledger_unseeded"`) is never
compared: each such beat logs `heartbeat_ledger_unseeded` (warning), no kill-switch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.position_heartbeat import cut
from actors.position_heartbeat.beatlog import BeatLogGate, frozen, strs
from actors.position_heartbeat.gauges import VenueGauges
from actors.position_heartbeat.track import DivergenceTracker, OutageTracker, position_diff
from actors.runtime import metrics
from actors.runtime.actor import Actor
from actors.runtime.operator_stops import StopsWatcher
from actors.runtime.ratelog import LogBudget
from protocol.codec import Envelope
from protocol.messages import (
    ErrorCode,
    GetPositions,
    KillSwitchCommand,
    KillSwitchState,
    Positions,
    RequestRejected,
    StreamEvent,
)
from protocol.paths import operator_stops_path

_TIMEOUT_FRACTION = 0.8  # of the interval: a beat's answers are in before the next beat
_REASON_SYMBOLS = 3  # diverging symbols named in the kill-switch reason (the log has all)
# What makes a beat a change worth an info line (not the latency, the age or the beat number).
_STATE_KEYS = ("venue_positions", "oms_positions", "diff", "divergent_beats", "source")


@dataclass
class _Answer:
    positions: dict[str, Decimal] | None = None  # None: missing
    latency_s: float = 0.0
    detail: str = ""
    source: str = "venue"  # Positions.source: "venue", "ledger" or "ledger_unseeded"
    planned: bool = False  # the venue is outside its trading session
    cut: str = ""  # the answer named its execution cut: "ok", or why the OMS has no view at it
    oms_at_cut: dict[str, Decimal] | None = None  # the OMS's positions as of that cut


@dataclass
class _VenueView:
    answer: _Answer | None = None  # the last good answer of the venue
    answered_at: float = 0.0  # monotonic, when it came in
    asked_at: float | None = None  # monotonic, the last request
    failing: bool = False  # the last request went unanswered
    confirming: bool = False  # the last answer diverged: ask again next beat


@dataclass
class _Beat:
    n: int
    venues: dict[str, _Answer | None]  # the venues asked this beat; None: still waiting
    oms: dict[str, dict[str, Decimal]] | None = None  # venue -> symbol -> qty
    oms_latency_s: float = 0.0
    oms_done: bool = False
    closed: bool = False

    @property
    def complete(self) -> bool:
        return self.oms_done and all(a is not None for a in self.venues.values())


class HeartbeatActor(Actor):
    kind = "heartbeat"

    def setup(self) -> None:
        hb = self.cfg.heartbeat
        self.interval_s = hb.interval_s
        self.venue_interval_s = hb.venue_positions_interval_s
        self.venue_names = [v.name for v in self.cfg.venues]
        self.connectors = {v: self.peer(f"connector.{v}") for v in self.venue_names}
        self.oms = self.peer("oms")
        self.risk = self.peer("risk")
        self.divergence = DivergenceTracker(hb.position_tolerance, hb.divergence_beats)
        self.outage = OutageTracker(
            self.venue_names,
            missing_intervals=hb.missing_intervals,
            tolerance_s=self.cfg.oms.outage_tolerance_s,
            engage_on_missing=hb.engage_on_missing,
            now_s=time.monotonic(),
        )
        self.beatlog = BeatLogGate(hb.log_every_n)  # info on a change or every Nth beat
        self.beats = 0
        self.stops = StopsWatcher(operator_stops_path(self.cfg.runtime_path))
        self._stops_log = LogBudget()
        self._beat: _Beat | None = None
        self._engage_pending: dict[str, str] = {}  # key -> reason, until risk confirms
        self._symbols: dict[str, set[str]] = {v: set() for v in self.venue_names}
        self.views = {v: _VenueView() for v in self.venue_names}
        self.venue_requests = 0  # GetPositions sent to connectors (each one FIX AN)
        self.gauges = VenueGauges(self.venue_names, self.cfg.runtime_path, self.log)
        self._beat_timer = 0  # a reload of the interval starts a new timer chain
        self._every_beat(self._beat_timer)

    def on_config(self, section: str) -> None:
        """A reload of `[heartbeat]`: thresholds at once, a new interval from the next beat."""
        if section != "heartbeat":
            return
        hb = self.cfg.heartbeat
        self.venue_interval_s = hb.venue_positions_interval_s
        self.divergence.tolerance = hb.position_tolerance
        self.divergence.beats = hb.divergence_beats
        self.outage.missing_intervals = hb.missing_intervals
        self.outage.engage_on_missing = hb.engage_on_missing
        self.beatlog.every_n = hb.log_every_n
        if hb.interval_s != self.interval_s:
            self.interval_s = hb.interval_s
            self._beat_timer += 1
            self._every_beat(self._beat_timer)

    def on_stop(self) -> None:
        self.gauges.flush()  # an operator's restart keeps the compared times exactly

    def _every_beat(self, chain: int) -> None:
        def beat() -> None:
            if chain == self._beat_timer:  # an older chain ends here
                try:
                    self._tick()
                finally:
                    self.call_later(self.interval_s, beat)

        self.call_later(self.interval_s, beat)

    # ------------------------------------------------------------------ one beat

    def _tick(self) -> None:
        if self._beat is not None and not self._beat.closed:
            self._close(self._beat)  # answers overdue: what is missing counts as missed
        self.beats += 1
        now = time.monotonic()
        asked = [v for v in self.venue_names if self._venue_due(v, now)]
        beat = self._beat = _Beat(self.beats, {v: None for v in asked})
        timeout = self.interval_s * _TIMEOUT_FRACTION
        start = time.perf_counter()
        for venue in asked:
            peer = self.connectors[venue]
            self.views[venue].asked_at = now
            self.venue_requests += 1

            def on_venue(reply: Envelope | None, venue: str = venue) -> None:
                self._on_venue(beat, venue, reply, time.perf_counter() - start)

            peer.request(
                GetPositions(venue=venue),
                on_venue,
                min(timeout, self.cfg.venue(venue).request_timeout_s),
            )
        self.oms.request(
            GetPositions(), lambda r: self._on_oms(beat, r, time.perf_counter() - start), timeout
        )
        for key, reason in list(self._engage_pending.items()):
            self._send_engage(key, reason)

    def _venue_due(self, venue: str, now: float) -> bool:
        """Ask the venue this beat? At its interval (half a beat early is on time), and
        every beat while a fresh divergence waits for confirmation."""
        view = self.views[venue]
        if venue in self.stops.operator_venues():  # its connector is deliberately offline
            return False
        if view.asked_at is None:
            return True
        if view.confirming and not view.failing:
            return True
        return now - view.asked_at >= self.venue_interval_s - self.interval_s / 2

    def _on_venue(self, beat: _Beat, venue: str, reply: Envelope | None, latency_s: float) -> None:
        if beat.closed:
            return
        body = reply.body if reply is not None else None
        if isinstance(body, Positions) and body.cut is not None:
            qty = {p.symbol: p.qty for p in body.positions}
            answer = _Answer(qty, latency_s, source=body.source, cut="no consistent cut")
            if body.cut.oms_epoch is None:  # the OMS had not acked what the venue reflects
                beat.venues[venue] = answer
            else:  # ours as of the same execution (actors/position_heartbeat/cut.py)
                at_cut = self._at_cut(beat, venue, answer)
                cut.ask_oms(self.oms, venue, body.cut, self.interval_s * _TIMEOUT_FRACTION, at_cut)
                return
        elif isinstance(body, Positions):
            qty = {p.symbol: p.qty for p in body.positions}
            beat.venues[venue] = _Answer(qty, latency_s, source=body.source)
        else:
            detail = "no answer" if body is None else _describe(body)
            planned = isinstance(body, RequestRejected) and body.code is ErrorCode.OUT_OF_SESSION
            beat.venues[venue] = _Answer(None, latency_s, detail, planned=planned)
        if beat.complete:
            self._close(beat)

    def _at_cut(self, beat: _Beat, venue: str, answer: _Answer) -> cut.AtCut:
        def done(oms: dict[str, Decimal] | None, detail: str) -> None:
            answer.oms_at_cut, answer.cut = oms, detail
            if not beat.closed:
                beat.venues[venue] = answer
                if beat.complete:
                    self._close(beat)

        return done

    def _on_oms(self, beat: _Beat, reply: Envelope | None, latency_s: float) -> None:
        if beat.closed:
            return
        beat.oms_done = True
        beat.oms_latency_s = latency_s
        body = reply.body if reply is not None else None
        if isinstance(body, Positions):
            views: dict[str, dict[str, Decimal]] = {v: {} for v in self.venue_names}
            for p in body.positions:
                views.setdefault(p.venue, {})[p.symbol] = p.qty
            beat.oms = views
        if beat.complete:
            self._close(beat)

    def _close(self, beat: _Beat) -> None:
        beat.closed = True
        now = time.monotonic()
        stopped = self.stops.operator_venues()
        if self.stops.error is not None and (skipped := self._stops_log.take()) is not None:
            # read as nothing stopped: a stopped connector's silence counts (fail closed)
            self.log.warning(
                "operator_stops_unreadable", error=self.stops.error, suppressed=skipped
            )
        for venue in self.venue_names:
            view = self.views[venue]
            if venue in stopped:  # stopped by an operator: no outage (module docstring)
                view.failing = True  # nothing fresh to compare
                self.outage.ok(venue, now)
                self.gauges.excused(venue)
                continue
            if venue in beat.venues:  # asked this beat
                answer = beat.venues[venue]
                if answer is not None and answer.planned:  # planned downtime, no outage
                    view.failing = True  # nothing fresh to compare
                    self.outage.ok(venue, now)
                    self.gauges.excused(venue)
                    self._log_out_of_session(venue, answer.detail)
                    continue
                if answer is None or answer.positions is None:
                    view.failing = True
                    detail = answer.detail if answer else "no answer in time"
                    self._missed(beat, venue, detail, now)
                    continue
                view.answer, view.answered_at, view.failing = answer, now, False
                self._good(beat, venue, answer, now, fresh=True)
            elif view.answer is not None and not view.failing:
                self._good(beat, venue, view.answer, now, fresh=False)

    # ------------------------------------------------------------------ per venue

    def _good(self, beat: _Beat, venue: str, answer: _Answer, now: float, *, fresh: bool) -> None:
        """A beat with a venue answer: asked this beat (`fresh`), or the last one while the
        venue's last request was answered (compared, never counted: module docstring)."""
        assert answer.positions is not None
        view = self.views[venue]
        if fresh:
            view.confirming = False
            was_missed = self.outage.ok(venue, now)
            if was_missed:
                self.log.info("heartbeat_recovered", venue=venue, missed=was_missed)
            for symbol in self._symbols[venue] | set(answer.positions):
                qty = answer.positions.get(symbol, Decimal(0))
                metrics.OPEN_POSITIONS.labels(venue=venue, symbol=symbol).set(float(qty))
            self._symbols[venue] |= set(answer.positions)
        self.gauges.answered(venue)
        oms = beat.oms.get(venue, {}) if beat.oms is not None else None
        if fresh and answer.cut:  # compared at the venue's cut, or shown and not counted
            oms, fresh = (answer.oms_at_cut, True) if answer.cut == "ok" else (oms, False)
        fields: dict[str, Any] = {
            "venue": venue,
            "beat": beat.n,
            "venue_positions": strs(answer.positions),
            "oms_positions": strs(oms) if oms is not None else None,
            "latency_s": round(answer.latency_s, 6),
            "oms_latency_s": round(beat.oms_latency_s, 6),
            "venue_age_s": 0.0 if fresh else round(now - view.answered_at, 3),
        }
        if oms is None:  # the OMS did not answer: nothing to compare this beat
            self.beatlog.observe(venue, "oms_missing")  # the next good beat is a change
            self.log.warning("heartbeat", **fields, diff=None, oms_missing=True)
            self._snapshot(fields | {"diff": None})
            return
        diff = position_diff(answer.positions, oms)
        fields["source"] = answer.source
        if answer.source == "ledger_unseeded":  # it missed earlier fills: never compared
            self.beatlog.observe(venue, "ledger_unseeded")
            self.log.warning("heartbeat_ledger_unseeded", **fields, diff=strs(diff))
            self._snapshot(fields | {"diff": None})
            return
        if not fresh:
            fields |= {"diff": strs(diff), "divergent_beats": self.divergence.consecutive(venue)}
            self._log_beat(fields)
            self._snapshot(fields)
            return
        self.gauges.compared(venue, diff)
        step = self.divergence.observe(venue, diff)
        view.confirming = 0 < step.consecutive < self.divergence.beats
        fields |= {"diff": strs(diff), "divergent_beats": step.consecutive}
        self._log_beat(fields)
        self._snapshot(fields)
        if step.divergent:
            self.log.warning(
                "position_divergence", venue=venue, excess=strs(step.excess),
                consecutive=step.consecutive, threshold=self.divergence.beats,
            )  # fmt: skip
        if step.engage:
            shown = sorted(step.excess)[:_REASON_SYMBOLS]
            detail = ", ".join(
                f"{s} venue {answer.positions.get(s, 0)} oms {oms.get(s, 0)}" for s in shown
            )
            more = len(step.excess) - len(shown)
            detail += f", +{more} more symbols" if more > 0 else ""
            self._engage(f"divergence:{venue}", f"position_divergence: {venue} {detail}")

    def _log_beat(self, fields: Mapping[str, Any]) -> None:
        """`heartbeat` at info when the venue's views changed or every Nth beat, else at
        debug (`beatlog`); `quiet_beats`: the beats at debug since the last info line."""
        state = tuple(frozen(fields.get(key)) for key in _STATE_KEYS)
        quiet = self.beatlog.observe(fields["venue"], state)
        if quiet is None:
            self.log.debug("heartbeat", **fields)
        else:
            self.log.info("heartbeat", **fields, quiet_beats=quiet)

    def _log_out_of_session(self, venue: str, detail: str) -> None:
        """Through the beat log gate: info when it starts, every Nth beat, else debug."""
        quiet = self.beatlog.observe(venue, ("out_of_session", detail))
        if quiet is None:
            self.log.debug("heartbeat_out_of_session", venue=venue, detail=detail)
        else:
            self.log.info("heartbeat_out_of_session", venue=venue, detail=detail, quiet_beats=quiet)

    def _missed(self, beat: _Beat, venue: str, detail: str, now: float) -> None:
        step = self.outage.missed(venue, now)
        self.log.warning(
            "heartbeat_missed", venue=venue, beat=beat.n, missed=step.missed,
            outage_s=round(step.outage_s, 3), detail=detail,
        )  # fmt: skip
        if step.alert:
            self.log.error(
                "heartbeat_missing", venue=venue, missed=step.missed,
                outage_s=round(step.outage_s, 3),
            )  # fmt: skip
        if step.engage:
            tolerance = self.cfg.oms.outage_tolerance_s
            reason = (
                f"connector_outage: {venue} without a position heartbeat for "
                f"{step.outage_s:.1f}s (tolerance {tolerance:g}s)"
            )
            self._engage(f"outage:{venue}", reason)

    # ------------------------------------------------------------------ out

    def _engage(self, key: str, reason: str) -> None:
        self.log.error("kill_switch_requested", reason=reason)
        self._engage_pending[key] = reason
        self._send_engage(key, reason)

    def _send_engage(self, key: str, reason: str) -> None:
        def done(reply: Envelope | None) -> None:
            body = reply.body if reply is not None else None
            if isinstance(body, KillSwitchState) and body.engaged:
                if self._engage_pending.pop(key, None) is not None:
                    self.log.warning("kill_switch_confirmed", reason=reason, in_force=body.reason)

        cmd = KillSwitchCommand(action="engage", reason=reason, source="heartbeat")
        self.risk.request(cmd, done, self.interval_s * _TIMEOUT_FRACTION)

    def _snapshot(self, fields: Mapping[str, Any]) -> None:
        data = {**fields, "ts_ns": time.time_ns()}
        self.oms.request(
            StreamEvent(event_seq=0, event="position_snapshot", data=data), lambda r: None, 2.0
        )

    def heartbeat_info(self) -> dict[str, Any]:
        if not hasattr(self, "outage"):
            return {}
        now = time.monotonic()
        return {
            "beats": self.beats,
            "venue_requests": self.venue_requests,
            "venues": {
                v: {
                    "age_s": round(self.outage.age_s(v, now), 3),
                    "missed": self.outage.missed_count(v),
                    "divergent_beats": self.divergence.consecutive(v),
                }
                for v in self.venue_names
            },
            "engage_pending": sorted(self._engage_pending.values()),
            "stopped_venues": sorted(self.stops.operator_venues()),
        }


def _describe(body: Any) -> str:
    if isinstance(body, RequestRejected):
        return f"{body.code.value}: {body.reason}"
    return str(getattr(body, "type", type(body).__name__))
