"""Pure supervision logic: child specs, backoff, restart intensity. No processes, no sockets."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from protocol.config import SystemConfig
from protocol.link_config import CORE, edge_groups

LINK = "link"  # the actor of the link between hosts (actors/link/)
RestartType = Literal["permanent", "transient", "temporary"]


class ChildState(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    DOWN = "down"  # over its restart budget, still retried at the max delay
    GAVE_UP = "gave_up"


@dataclass(frozen=True)
class ChildSpec:
    id: str
    kind: str
    restart: RestartType = "permanent"
    start_timeout_s: float = 15.0
    shutdown_timeout_s: float = 5.0
    venue: str | None = None
    critical: bool = False  # over budget stops the whole system (risk, oms)


def child_specs(cfg: SystemConfig, host_group: str = CORE) -> list[ChildSpec]:
    """Simulated venues and exchanges (the outside world), risk, oms, connectors,
    heartbeat: the order of `status` and, reversed, of a stop; `start_plan` says how the
    start overlaps. Only what `host_group` runs: the core, risk, the OMS and the heartbeat
    with the venues placed on the core; an edge, its venues alone. Either end of a link
    between hosts (venues placed on edges) also runs the link actor (`actors.link`)."""
    sup = cfg.supervisor
    venues = [v for v in cfg.venues if v.host_group == host_group]

    def spec(
        child_id: str, kind: str, venue: str | None = None, critical: bool = False
    ) -> ChildSpec:
        return ChildSpec(
            id=child_id,
            kind=kind,
            venue=venue,
            critical=critical,
            start_timeout_s=sup.start_timeout_s,
            shutdown_timeout_s=sup.shutdown_timeout_s,
        )

    specs = [
        spec(f"{sim_kind(v.kind)}.{v.name}", sim_kind(v.kind), v.name)
        for v in venues
        if v.sim is not None
    ]
    core = host_group == CORE
    if core:
        specs += [spec("risk", "risk", critical=True), spec("oms", "oms", critical=True)]
    if edge_groups(cfg.venues):  # before the connectors: an edge's reach the OMS through it
        specs.append(spec(LINK, LINK))
    specs += [spec(f"connector.{v.name}", "connector", v.name) for v in venues]
    if core:
        specs.append(spec("heartbeat", "heartbeat"))
    return specs


def placed_on(cfg: SystemConfig, host_group: str) -> SystemConfig:
    """`cfg` with only the venues `host_group` runs: what its supervisor checks at start
    (credentials, TLS files, reachability) and needs in its environment."""
    venues = [v for v in cfg.venues if v.host_group == host_group]
    return cfg.model_copy(update={"venues": venues})


def placed_elsewhere(cfg: SystemConfig, host_group: str, actor: str) -> str | None:
    """The host group whose supervisor runs `actor` (a venue's connector or sim) when it is
    not `host_group`; None: not a venue's actor, or placed here."""
    kind, _, venue = actor.partition(".")
    if kind not in ("connector", *SIM_KINDS):
        return None
    group = next((v.host_group for v in cfg.venues if v.name == venue), None)
    return group if group is not None and group != host_group else None


SIM_KINDS = frozenset({"venuesim", "exchangesim"})  # the outside world, simulated


def sim_kind(venue_kind: str) -> str:
    """The simulator of a venue of `venue_kind`: a FIX venue (`actors.venuesim`) or a
    crypto exchange reached through ccxt (`actors.exchangesim`)."""
    return "exchangesim" if venue_kind == "ccxt" else "venuesim"


def start_plan(specs: list[ChildSpec]) -> tuple[list[str], list[str]]:
    """(spawned at once, then started one at a time, each once the one before is READY).
    Simulated venues depend on nothing of ours: they start at once, loading their books
    while risk and the OMS start (a warm start with many open orders loads both sides at
    the same time); a venue's connector waits in the queue behind its simulator's READY."""
    sims = {s.venue: s.id for s in specs if s.kind in SIM_KINDS}
    queue: list[str] = []
    for s in specs:
        if s.kind == "connector" and s.venue in sims:
            queue.append(sims[s.venue])
        if s.kind not in SIM_KINDS:
            queue.append(s.id)
    return list(sims.values()), queue


@dataclass
class RestartTracker:
    """Counts restarts: consecutive ones (for the backoff) and those inside the intensity window."""

    max_restarts: int
    window_s: float
    reset_after_s: float
    consecutive: int = 0
    total: int = 0
    _times: deque[float] = field(default_factory=deque)

    def record_exit(self, now: float, ran_for_s: float) -> int:
        """Record a crash; returns the attempt number to use for the backoff delay."""
        if ran_for_s >= self.reset_after_s:
            self.consecutive = 0
        self.consecutive += 1
        self.total += 1
        self._times.append(now)
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()
        return self.consecutive

    def over_budget(self) -> bool:
        return len(self._times) > self.max_restarts
