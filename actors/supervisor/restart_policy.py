"""Pure supervision logic: child specs, backoff, restart intensity. No processes, no sockets."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from protocol.config import SystemConfig
from protocol.link_config import CORE, edge_groups
from protocol.sim_config import sim_guests, sim_process_of

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
    guests: tuple[str, ...] = ()  # a venue sim's: the venues whose sims it runs too (runs_in)


def child_specs(cfg: SystemConfig, host_group: str = CORE) -> list[ChildSpec]:
    """Simulated venues and exchanges (the outside world), risk, oms, connectors,
    heartbeat: the order of `status` and, reversed, of a stop; `start_plan` says how the
    start overlaps. Only what `host_group` runs: the core, risk, the OMS and the heartbeat
    with the venues placed on the core; an edge, its venues alone. Either end of a link
    between hosts (venues placed on edges) also runs the link actor (`actors.link`)."""
    sup = cfg.supervisor
    venues = [v for v in cfg.venues if v.host_group == host_group]

    def spec(
        child_id: str, kind: str, venue: str | None = None, critical: bool = False,
        guests: tuple[str, ...] = (),
    ) -> ChildSpec:  # fmt: skip
        return ChildSpec(
            id=child_id,
            kind=kind,
            venue=venue,
            critical=critical,
            # a sim process sets up (replays) each of its venues before its READY
            start_timeout_s=sup.start_timeout_s * (1 + len(guests)),
            shutdown_timeout_s=sup.shutdown_timeout_s,
            guests=guests,
        )

    specs = [
        spec(
            f"{sim_kind(v.kind)}.{v.name}",
            sim_kind(v.kind),
            v.name,
            guests=sim_guests(cfg.venues, v.name),
        )
        for v in venues
        if v.sim is not None and sim_process_of(v) == v.name
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


def unknown_actor(actor: str, specs: Iterable[ChildSpec]) -> str:
    """What to tell an operator who named an actor not among `specs`; for a guest venue's
    simulator (`venuesim.<guest>`), the process it runs in."""
    specs = list(specs)
    kind, _, venue = actor.partition(".")
    host = next((s.id for s in specs if s.kind == kind and venue in s.guests), None)
    if host is not None:
        return (f"unknown actor {actor!r}: venue {venue!r}'s simulator runs in {host} "
                f"(sim.runs_in; its venues stop and start together)")  # fmt: skip
    return f"unknown actor {actor!r}; actors: {', '.join(s.id for s in specs)}"


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


def start_plan(specs: list[ChildSpec]) -> tuple[list[str], StartQueue]:
    """(spawned at once, then the `StartQueue`). Simulated venues depend on nothing of
    ours: they start at once, loading their books while risk and the OMS start. On a host
    without a link, risk then the OMS are one chain and each venue's connector, behind its
    simulator's READY, one chain of its own beside it: a connector before the OMS is up
    sends the venue nothing but its Logon and session messages (every order message comes
    from the OMS, after its replay; what the venue sends is held in its exec outbox until
    the OMS acks it: the state of any OMS restart), so a warm start's FIX logon overlaps the
    OMS's journal replay and the OMS's first pass finds the venue logged on. The heartbeat
    starts once every chain is READY. With a link (venues on edges) one chain, as before:
    an edge's connectors reach the OMS through it."""
    sims = {v: s.id for s in specs if s.kind in SIM_KINDS for v in (s.venue, *s.guests)}

    def venue_chain(connector: ChildSpec) -> list[str]:
        sim = sims.get(connector.venue)
        return [connector.id] if sim is None else [sim, connector.id]

    if any(s.kind == LINK for s in specs):
        queue: list[str] = []
        for s in specs:
            if s.kind == "connector":
                queue += [c for c in venue_chain(s) if c not in queue]  # a shared sim once
            elif s.kind not in SIM_KINDS:
                queue.append(s.id)
        return list(dict.fromkeys(sims.values())), StartQueue([[queue]])
    later = ("connector", "heartbeat", *SIM_KINDS)
    core = [s.id for s in specs if s.kind not in later]
    venues = [venue_chain(s) for s in specs if s.kind == "connector"]
    last = [s.id for s in specs if s.kind == "heartbeat"]
    return list(dict.fromkeys(sims.values())), StartQueue([[core, *venues], [last]])


class StartQueue:
    """What starts after the at-once children: stages in order; the chains of a stage side
    by side, each one child at a time (the next once the one before is READY, DOWN or held
    by an operator); the next stage once every chain of this one is through."""

    def __init__(self, stages: list[list[list[str]]]) -> None:
        self._stages = [[list(chain) for chain in stage] for stage in stages]

    @property
    def stages(self) -> list[list[list[str]]]:
        """What is still queued (a copy)."""
        return [[list(chain) for chain in stage] for stage in self._stages]

    def heads(self) -> list[str]:
        """The children the chains of the current stage wait for, each once (none: all
        through); several chains wait for one simulator process that runs their venues."""
        while self._stages and not any(self._stages[0]):
            self._stages.pop(0)
        return list(dict.fromkeys(c[0] for c in self._stages[0] if c)) if self._stages else []

    def leave(self, child_id: str) -> bool:
        """`child_id` is through: True if it was a chain's head (those chains move on)."""
        moved = False
        for chain in self._stages[0] if self._stages else []:
            if chain and chain[0] == child_id:
                chain.pop(0)
                moved = True
        return moved


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
