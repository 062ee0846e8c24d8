"""The nemesis: a seeded schedule of faults and the thread that injects them.

`FaultPlanner(seed, ...)` yields the same sequence of faults (kind, target, parameters and
the gap before each) for the same seed and flags; that is what reproduces a run. Timing
follows the schedule loosely: a fault is injected `gap_s` after the previous one started,
but never before the system has recovered from the previous one (or the recovery deadline
passed), so each fault's recovery time is its own.

Fault kinds:
- `sigkill` / `sigterm` of an actor; `sigstop` of an actor, `SIGCONT` after `stop_s`
  (longer than the hang limit: the supervisor kills and restarts it);
- `supervisor_kill`: kill -9 of the supervisor, then a warm `supervisor.py run`;
- venue faults through the venue simulator's control interface (`venuectl`):
  `drop_session`, `refuse_logons` (for `duration_s`), `venue_hang` (for `duration_s`),
  `delay_execs` / `duplicate_execs` / `reorder_execs` (for `duration_s`), `reject_burst`
  (the next `count` orders); `venue_kill`: kill -9 of the FIX venue's simulator process
  (`venuesim.<venue>`, or for a venue simulated in another's process, `[venues.sim]
  runs_in`, that process, with every venue it runs), which the supervisor restarts on its
  state (orders, FIX session store, message log): the venue's crash and restart, after
  which each of its connectors' sessions logs on again and resynchronises;
- exchange faults at a ccxt venue's local exchange (`venuectl`, see
  `actors.exchangesim.faults`): `drop_ws` (close the user-data streams), `http_5xx` /
  `rate_limit` / `timeout_after_accept` (the next `count` REST requests / order POSTs),
  `duplicate_trade_events` / `delay_trade_events` (for `duration_s`, the latter by
  `delay_ms`); `exchange_kill`: kill -9 of `exchangesim.<venue>` (the supervisor restarts
  it on its log);
- `trade_bust`: the FIX venue's desk busts or corrects one of its recent trades
  (`tests.chaos.busts`); drawn from a stream of its own (`FaultPlanner`), so a mix with it
  draws every other fault as the mix without it did, the busts in between;
- `kill_switch` (only when asked for): the operator engages the kill-switch.
- link faults (topology core+edge only: the core and an edge supervisor in two network
  namespaces, the link through a `tests.netfault` FaultProxy in the edge's namespace):
  `link_delay` (every chunk held `delay_ms` + up to `jitter_ms`, for `duration_s`),
  `link_spike` (200 ms, for `duration_s`), `link_stall` (every byte held for
  `duration_s`, connections open), `link_cut` (every connection reset), `partition` (the
  veth pair down for `duration_s`: shorter than `link.edge.core_loss_cancel_s`, or with
  `long` past it, when the edge's dead-man switch cancels its venues' open orders), and
  `edge_supervisor_kill` (kill -9 of the edge's supervisor, then a warm start). Actor
  faults also target the core's `link` and the edge's actors (`<group>/<actor>`, signalled
  by the pid the edge's supervisor reports).

FIX venue faults target the FIX venues, exchange faults the ccxt venues; a kind with no
target in the run is left out of the schedule (a run without ccxt venues draws exactly the
schedule it drew before they existed).
"""

from __future__ import annotations

import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from protocol.config import VenueCfg
from protocol.sim_config import sim_process_of

ACTOR_FAULTS = ("sigkill", "sigstop", "sigterm")
VENUE_FAULTS = (
    "drop_session",
    "refuse_logons",
    "delay_execs",
    "duplicate_execs",
    "reorder_execs",
    "reject_burst",
    "venue_hang",
    "venue_kill",
)
EXCHANGE_FAULTS = (
    "drop_ws",
    "http_5xx",
    "rate_limit",
    "timeout_after_accept",
    "duplicate_trade_events",
    "delay_trade_events",
    "exchange_kill",
)
LINK_FAULTS = (
    "link_delay",
    "link_spike",
    "link_stall",
    "link_cut",
    "partition",
    "edge_supervisor_kill",
)
BUST_FAULT = "trade_bust"
ALL_FAULTS = (
    *ACTOR_FAULTS,
    "supervisor_kill",
    *VENUE_FAULTS,
    BUST_FAULT,
    *EXCHANGE_FAULTS,
    *LINK_FAULTS,
    "kill_switch",
)
DEFAULT_MIX: Mapping[str, float] = {
    "sigkill": 3.0,
    "sigstop": 1.5,
    "sigterm": 1.0,
    "supervisor_kill": 0.5,
    "drop_session": 1.5,
    "refuse_logons": 1.0,
    "delay_execs": 1.0,
    "duplicate_execs": 1.0,
    "reorder_execs": 1.0,
    "reject_burst": 1.0,
    "venue_hang": 0.5,
    "venue_kill": 1.0,
    "trade_bust": 1.0,
    "drop_ws": 1.0,
    "http_5xx": 1.0,
    "rate_limit": 1.0,
    "timeout_after_accept": 1.0,
    "duplicate_trade_events": 1.0,
    "delay_trade_events": 1.0,
    "exchange_kill": 1.0,
    "link_delay": 1.0,
    "link_spike": 0.5,
    "link_stall": 1.0,
    "link_cut": 1.0,
    "partition": 1.5,
    "edge_supervisor_kill": 0.5,
}
# actors whose processes the nemesis signals (the venue simulators are the outside world)
ACTOR_TARGETS = ("risk", "oms", "heartbeat")


def parse_mix(text: str) -> dict[str, float]:
    """`"sigkill=3,sigstop=1"` -> weights; `"default"` or "" -> DEFAULT_MIX; unknown kinds
    raise ValueError."""
    if text.strip() in ("", "default"):
        return dict(DEFAULT_MIX)
    mix: dict[str, float] = {}
    for part in text.split(","):
        kind, _, weight = part.strip().partition("=")
        if kind not in ALL_FAULTS:
            raise ValueError(f"unknown fault kind {kind!r}; kinds: {', '.join(ALL_FAULTS)}")
        try:
            mix[kind] = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"weight of {kind} is not a number: {weight!r}") from None
        if not 0 <= mix[kind] < math.inf:  # NaN or inf: a run whose faults are all one kind
            raise ValueError(f"weight of {kind} is not a finite number >= 0: {weight!r}")
    if not any(mix.values()):
        raise ValueError("every weight is zero")
    return mix


@dataclass(frozen=True, slots=True)
class PlannedFault:
    index: int
    kind: str
    target: str  # actor id, venue name, or "supervisor" / "system"
    gap_s: float  # after the previous fault's start
    params: dict[str, Any] = field(default_factory=dict)


class FaultPlanner:
    """The seeded fault sequence (pure: no clock, no processes)."""

    def __init__(
        self,
        seed: int,
        interval_s: float,
        mix: Mapping[str, float],
        venues: Sequence[str],
        *,
        hang_limit_s: float = 0.6,
        exchanges: Sequence[str] = (),
        edge: EdgePlan | None = None,
        sim_hosts: Mapping[str, str] | None = None,
    ) -> None:
        """`sim_hosts`: venue -> the venue whose simulator process runs it (`sim_hosts_of`;
        a venue not in it runs its own)."""
        self._rng = random.Random(f"nemesis:{seed}")
        # the busts' own stream: adding them to a mix leaves the other faults' draws alone
        self._bust_rng = random.Random(f"busts:{seed}")
        self._bust_weight = float(mix.get(BUST_FAULT, 0.0)) if venues else 0.0
        self.interval_s = interval_s
        untargeted = {
            "kill_switch",
            BUST_FAULT,
            *(() if venues else VENUE_FAULTS),
            *(() if exchanges else EXCHANGE_FAULTS),
            *(() if edge else LINK_FAULTS),
        }
        self._kinds = [k for k, w in sorted(mix.items()) if w > 0 and k not in untargeted]
        self._weights = [mix[k] for k in self._kinds]
        self.venues = list(venues)
        hosts = dict(sim_hosts or {})
        self.sim_guests: dict[str, list[str]] = {}  # a sim process (by venue) -> its venues
        for v in venues:
            self.sim_guests.setdefault(hosts.get(v, v), []).append(v)
        self.exchanges = list(exchanges)
        self.edge = edge
        if edge is None:
            self.actors = [*ACTOR_TARGETS, *(f"connector.{v}" for v in (*venues, *exchanges))]
        else:  # the core's actors and its link, then the edge's (`<group>/<actor>`)
            core = [v for v in (*venues, *exchanges) if v not in edge.venues]
            self.actors = [*ACTOR_TARGETS, "link", *(f"connector.{v}" for v in core)]
            self.actors += [f"{edge.group}/{a}" for a in ("link", *edge.connectors)]
        self.hang_limit_s = hang_limit_s
        self._n = 0

    def next(self) -> PlannedFault:
        if self._bust_weight:
            odds = self._bust_weight / (self._bust_weight + sum(self._weights))
            if self._bust_rng.random() < odds:
                return self._bust()
        rng = self._rng
        self._n += 1
        gap = self.interval_s * rng.uniform(0.5, 1.5)
        if not self._kinds:
            return PlannedFault(self._n, "none", "system", gap)
        kind = rng.choices(self._kinds, self._weights)[0]
        params: dict[str, Any] = {}
        if kind in ACTOR_FAULTS:
            target = rng.choice(self.actors)
            if kind == "sigstop":  # half short (a pause), half past the hang limit
                short = rng.random() < 0.5
                params["stop_s"] = round(
                    rng.uniform(0.05, self.hang_limit_s * 0.5)
                    if short
                    else rng.uniform(self.hang_limit_s * 1.5, self.hang_limit_s * 3),
                    3,
                )
        elif kind == "supervisor_kill":
            target = "supervisor"
        elif kind in LINK_FAULTS:
            assert self.edge is not None
            target = self.edge.group
            params = self.edge.params(kind, rng)
        elif kind == "venue_kill":  # a simulator process, with every venue it runs
            target = rng.choice(sorted(self.sim_guests))
            params = {"actor": self.sim_actor(target), "venues": list(self.sim_guests[target])}
        elif kind in EXCHANGE_FAULTS:
            target = rng.choice(self.exchanges)
            if kind in ("http_5xx", "rate_limit", "timeout_after_accept"):
                params["count"] = rng.randint(1, 5)
            elif kind == "duplicate_trade_events":
                params["duration_s"] = round(rng.uniform(1.0, 4.0), 2)
            elif kind == "delay_trade_events":
                params["delay_ms"] = rng.choice((20, 50, 100, 250, 500))
                params["duration_s"] = round(rng.uniform(1.0, 4.0), 2)
        else:
            target = rng.choice(self.venues)
            if kind in ("refuse_logons", "venue_hang"):
                params["duration_s"] = round(rng.uniform(0.5, 3.0), 2)
            elif kind == "delay_execs":
                params["delay_ms"] = rng.choice((20, 50, 100, 250, 500))
                params["duration_s"] = round(rng.uniform(1.0, 4.0), 2)
            elif kind in ("duplicate_execs", "reorder_execs"):
                params["duration_s"] = round(rng.uniform(1.0, 4.0), 2)
            elif kind == "reject_burst":
                params["count"] = rng.randint(1, 10)
        return PlannedFault(self._n, kind, target, round(gap, 3), params)

    def _bust(self) -> PlannedFault:
        """A bust (half the time) or correction of one of a FIX venue's recent trades
        (`tests.chaos.busts`), after a shorter gap: it is one command, nothing to heal."""
        rng = self._bust_rng
        self._n += 1
        gap = round(self.interval_s * rng.uniform(0.25, 0.75), 3)
        params = {
            "correct": rng.random() < 0.5,
            "pick": round(rng.random(), 4),
            "qty_frac": rng.choice((0.5, 1.0)),
            "px_bp": rng.choice((-50, -10, 10, 50)),
        }
        return PlannedFault(self._n, BUST_FAULT, rng.choice(self.venues), gap, params)

    def take(self, n: int) -> list[PlannedFault]:
        return [self.next() for _ in range(n)]

    def sim_actor(self, host: str) -> str:
        """The actor id of the simulator process of venue `host` as the status shows it:
        `venuesim.<host>`, `<group>/venuesim.<host>` when the edge runs it."""
        if self.edge is not None and host in self.edge.venues:
            return f"{self.edge.group}/venuesim.{host}"
        return f"venuesim.{host}"


def sim_hosts_of(venues: Iterable[VenueCfg]) -> dict[str, str]:
    """FIX venue -> the venue whose simulator process runs its simulator (`sim_process_of`:
    itself, or `[venues.sim] runs_in`), for the venues that have one."""
    return {v.name: sim_process_of(v) for v in venues if v.kind == "fix" and v.sim is not None}


@dataclass(frozen=True)
class EdgePlan:
    """The edge of a core+edge run as the planner sees it: its group, the venues placed on
    it, and the dead-man limit the partitions are drawn around."""

    group: str
    venues: tuple[str, ...]
    core_loss_cancel_s: float

    @property
    def connectors(self) -> tuple[str, ...]:
        return tuple(f"connector.{v}" for v in self.venues)

    def params(self, kind: str, rng: random.Random) -> dict[str, Any]:
        limit = self.core_loss_cancel_s
        if kind == "link_delay":  # 20 ms +/- 10 ms, or 50 +/- 25
            delay_ms, jitter_ms = rng.choice(((20, 20), (50, 50)))
            return {
                "delay_ms": delay_ms - jitter_ms // 2,
                "jitter_ms": jitter_ms,
                "duration_s": round(rng.uniform(2.0, 5.0), 2),
            }
        if kind == "link_spike":
            return {"delay_ms": 200, "jitter_ms": 0, "duration_s": round(rng.uniform(1.0, 3.0), 2)}
        if kind == "link_stall":  # a few seconds, short of the dead-man
            return {"duration_s": round(rng.uniform(1.0, limit * 0.75), 2)}
        if kind == "partition":  # half short of the dead-man, half past it
            if rng.random() < 0.5:
                return {"duration_s": round(rng.uniform(0.5, limit * 0.6), 2), "long": False}
            return {"duration_s": round(rng.uniform(limit + 1.0, limit + 3.0), 2), "long": True}
        return {}


# --------------------------------------------------------------------------- injection


@dataclass
class FaultRecord:
    """What happened to one planned fault."""

    index: int
    kind: str
    target: str
    params: dict[str, Any]
    start_ns: int = 0  # injection began
    healed_ns: int = 0  # the nemesis stopped interfering (SIGCONT sent, window over)
    recovered_ns: int | None = None  # first healthy status after healing
    error: str = ""  # the injection itself failed (e.g. no such process)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def recovery_s(self) -> float | None:
        if self.recovered_ns is None:
            return None
        return max(0.0, (self.recovered_ns - self.healed_ns) / 1e9)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "recovery_s": self.recovery_s}


class Target(Protocol):
    """What the nemesis needs from the system (ChaosSystem provides it)."""

    def try_status(self, timeout_s: float = 2.0) -> dict[str, Any] | None: ...
    def healthy(self, st: dict[str, Any]) -> bool: ...
    def kill_supervisor(self) -> set[int]: ...
    def warm_restart(self, old_children: set[int], timeout_s: float = 60.0) -> None: ...
    def mark(self) -> int: ...
    def events(
        self, name: str | None = None, *, since: int = 0, **match: Any
    ) -> list[dict[str, Any]]: ...


# (venue, fault kind, params) -> what it did, for the fault's record (or None)
VenueControl = Callable[[str, str, dict[str, Any]], dict[str, Any] | None]


class LinkControl(Protocol):
    """The link's faults (tests.chaos.topology.EdgeTopology provides them)."""

    def set_delay(self, delay_s: float, jitter_s: float = 0.0) -> None: ...
    def stall(self, on: bool) -> None: ...
    def cut(self) -> int: ...
    def partition(self, on: bool) -> None: ...


class Nemesis(threading.Thread):
    """Injects the planner's faults until `stop()`; every fault becomes a FaultRecord."""

    def __init__(
        self,
        system: Target,
        planner: FaultPlanner,
        venue_control: VenueControl,
        *,
        recovery_timeout_s: float = 60.0,
        kill_switch_at_s: float | None = None,
        engage_kill_switch: Callable[[], None] | None = None,
        edge: Target | None = None,
        link: LinkControl | None = None,
    ) -> None:
        super().__init__(name="nemesis", daemon=True)
        self.edge = edge  # the edge supervisor (core+edge): its kill -9, its log
        self.link = link
        self.system = system
        self.planner = planner
        self.venue_control = venue_control
        self.recovery_timeout_s = recovery_timeout_s
        self.kill_switch_at_s = kill_switch_at_s
        self.engage_kill_switch = engage_kill_switch
        self.records: list[FaultRecord] = []
        self.crashed: str = ""
        self._stop_evt = threading.Event()

    def stop(self) -> None:
        self._stop_evt.set()

    def run(self) -> None:
        t0 = time.monotonic()
        last_start = t0
        try:
            while not self._stop_evt.is_set():
                fault = self.planner.next()
                due = last_start + fault.gap_s
                if self.kill_switch_at_s is not None and t0 + self.kill_switch_at_s <= due:
                    if self._stop_evt.wait(max(0.0, t0 + self.kill_switch_at_s - time.monotonic())):
                        return
                    self.records.append(self._inject(PlannedFault(0, "kill_switch", "system", 0.0)))
                    self.kill_switch_at_s = None
                if self._stop_evt.wait(max(0.0, due - time.monotonic())):
                    return
                last_start = time.monotonic()
                self.records.append(self._inject(fault))
        except Exception as exc:  # noqa: BLE001 - reported in the run's report, not lost
            self.crashed = f"{type(exc).__name__}: {exc}"

    # ------------------------------------------------------------------ one fault

    def _inject(self, fault: PlannedFault) -> FaultRecord:
        rec = FaultRecord(fault.index, fault.kind, fault.target, dict(fault.params))
        before = self.system.try_status() or {}
        mark = self.system.mark()
        edge_mark = self.edge.mark() if self.edge is not None else 0
        rec.start_ns = time.time_ns()
        try:
            self._do(fault, rec, before)
        except Exception as exc:  # noqa: BLE001 - a failed injection is recorded, not fatal
            rec.error = f"{type(exc).__name__}: {exc}"
        rec.healed_ns = rec.healed_ns or time.time_ns()
        self._await_recovery(fault, rec, before, mark)
        if self.edge is not None:  # the edge's dead-man switch fired during this fault
            # (its link's `core_lost`; a restarted edge's log lines count from its start)
            fired = self.edge.events("core_lost", since=edge_mark)
            if fired:
                rec.detail["dead_man_fired"] = len(fired)
        return rec

    def _do(self, fault: PlannedFault, rec: FaultRecord, before: dict[str, Any]) -> None:
        kind, target = fault.kind, fault.target
        if kind in LINK_FAULTS:
            self._link_fault(fault, rec)
        elif kind in ACTOR_FAULTS:
            pid = _pid_of(before, target)
            if pid is None:
                raise RuntimeError(f"{target} has no pid")
            rec.detail["pid"] = pid
            if kind == "sigkill":
                os.kill(pid, signal.SIGKILL)
            elif kind == "sigterm":
                os.kill(pid, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGSTOP)
                time.sleep(fault.params["stop_s"])
                try:
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    rec.detail["killed_while_stopped"] = True
        elif kind == "supervisor_kill":
            old = self.system.kill_supervisor()
            rec.healed_ns = time.time_ns()  # recovery includes the warm restart
            rec.detail["children"] = len(old)
            restart_at = time.monotonic()
            self.system.warm_restart(old, timeout_s=self.recovery_timeout_s)
            rec.detail["warm_restart_s"] = round(time.monotonic() - restart_at, 3)
        elif kind in ("exchange_kill", "venue_kill"):
            actor = _killed_actor(fault)
            pid = _pid_of(before, actor)
            if pid is None:
                raise RuntimeError(f"{actor} has no pid")
            rec.detail["pid"] = pid
            os.kill(pid, signal.SIGKILL)
        elif kind == "none":
            return
        elif kind == "kill_switch":
            assert self.engage_kill_switch is not None
            self.engage_kill_switch()
        else:
            rec.detail.update(self.venue_control(target, kind, dict(fault.params)) or {})

    def _link_fault(self, fault: PlannedFault, rec: FaultRecord) -> None:
        """One link fault (`detail`: connections cut, the edge's warm restart time)."""
        assert self.link is not None and self.edge is not None
        kind, params = fault.kind, fault.params
        duration = float(params.get("duration_s", 0.0))
        if kind == "edge_supervisor_kill":
            old = self.edge.kill_supervisor()
            rec.healed_ns = time.time_ns()
            rec.detail["children"] = len(old)
            restart_at = time.monotonic()
            self.edge.warm_restart(old, timeout_s=self.recovery_timeout_s)
            rec.detail["warm_restart_s"] = round(time.monotonic() - restart_at, 3)
        elif kind == "link_cut":
            rec.detail["connections_cut"] = self.link.cut()
        elif kind in ("link_delay", "link_spike"):
            self.link.set_delay(params["delay_ms"] / 1000, params["jitter_ms"] / 1000)
            try:
                time.sleep(duration)
            finally:
                self.link.set_delay(0.0)
        else:
            on_off = self.link.stall if kind == "link_stall" else self.link.partition
            on_off(True)
            try:
                time.sleep(duration)
            finally:
                on_off(False)

    def _await_recovery(
        self, fault: PlannedFault, rec: FaultRecord, before: dict[str, Any], mark: int
    ) -> None:
        """Recovered: a healthy status, plus the fault's own evidence (a new pid for a
        killed actor, a fresh heartbeat after SIGCONT, a venue CONNECTED again after a
        session fault)."""
        deadline = time.monotonic() + self.recovery_timeout_s
        while time.monotonic() < deadline:
            st = self.system.try_status()
            if st is not None and self.system.healthy(st) and self._specific(fault, rec, st, mark):
                rec.recovered_ns = time.time_ns()
                return
            if self._stop_evt.is_set() and fault.kind == "kill_switch":
                return
            time.sleep(0.05)

    def _specific(
        self, fault: PlannedFault, rec: FaultRecord, st: dict[str, Any], mark: int
    ) -> bool:
        kind = fault.kind
        if rec.error:
            return True
        if kind in ("sigkill", "sigterm"):
            return _pid_of(st, fault.target) not in (None, rec.detail.get("pid"))
        if kind in ("exchange_kill", "venue_kill"):
            if _pid_of(st, _killed_actor(fault)) in (None, rec.detail.get("pid")):
                return False
            return all(  # each of its venues' sessions logged on again
                self.system.events(
                    "venue_state", since=mark, actor="oms", venue=v, state="CONNECTED"
                )
                for v in fault.params.get("venues", ())
            )
        if kind == "sigstop":
            row = next((a for a in st["actors"] if a["id"] == fault.target), None)
            return row is not None and (row["heartbeat_age_s"] or 0.0) < 0.5
        if kind in ("drop_session", "refuse_logons"):
            return bool(
                self.system.events(
                    "venue_state", since=mark, actor="oms", venue=fault.target, state="CONNECTED"
                )
            )
        return True


def _killed_actor(fault: PlannedFault) -> str:
    """The process `exchange_kill` / `venue_kill` kills (a venue sim's: by the planner)."""
    if fault.kind == "venue_kill":
        return str(fault.params["actor"])
    return f"exchangesim.{fault.target}"


def _pid_of(st: dict[str, Any], actor: str) -> int | None:
    for a in st.get("actors", []):
        if a["id"] == actor:
            return int(a["pid"]) if a["pid"] else None
    return None
