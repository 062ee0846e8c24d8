"""`tradepulse reload` and SIGHUP: re-read the config file, apply what can change live.

The file is loaded and validated as at start (with the same command-line overrides); a file
that does not load is refused with its config error and nothing changes. The new config is
compared field by field with the running one (`config_diff`). Policy: ALL OR NOTHING. If any
changed field is restart-only, the whole reload is refused naming those fields (the
operator restarts the system, or puts the file back); otherwise every changed live section
is sent to the actors that own it (`LIVE_SECTIONS`) as an `apply-config` control command
carrying the validated section, and the reply lists the diff (`field: old -> new`) with
each actor's answer. An actor that is not running gets nothing: it reads the file when it
starts. The change is logged `config_reloaded` (the diff, the operator) and audited.

The running config (what the next reload is compared with) advances section by section,
only once every actor of that section answered `ok` (or was not running). A section an
actor refused, or did not answer within `ACK_TIMEOUT_S` (shorter than the CLI's default
`--timeout-s`, so the operator sees who did not answer), stays as it was: the reload is
logged `config_reload_incomplete`, counted `result="partial"`, and the next reload of the
same file sends that section again. Secret values (`protocol.redact`) never leave here:
the diff shows them as `<redacted>`.

Live sections and the actors that apply them (`actors.runtime.live_config`):

    risk       risk        limits, checked from the next order on; `day_start` and
               oms         `day_timezone` to the OMS too (only a change of them: it marks
                           its positions' P&L at each trading day's start by them)
    heartbeat  heartbeat   every field: beat interval, tolerances, thresholds, log_every_n
    trading    oms         trading windows, read at each check (when the config has them)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
import zmq

from actors.runtime import metrics
from actors.runtime.timers import Timers
from actors.supervisor.restart_policy import ChildState
from actors.supervisor.running_config import set_running
from protocol.commands import ApplyConfig, OperatorId
from protocol.config import SystemConfig, load_config
from protocol.exceptions import ConfigError
from protocol.messages import ControlReply, ControlRequest
from protocol.redact import redact_leaf

# section -> the actors that apply it live (a section not in the config is skipped)
LIVE_SECTIONS: Mapping[str, tuple[str, ...]] = {
    "risk": ("risk", "oms"),
    "heartbeat": ("heartbeat",),
    "trading": ("oms",),
}
# an actor that reads only these fields of a section is sent it only when one of them changed
# (a reload of risk's limits does not wait on the OMS, which reads risk's trading days only)
_READS_ONLY: Mapping[tuple[str, str], frozenset[str]] = {
    ("risk", "oms"): frozenset({"risk.day_start", "risk.day_timezone"}),
}
ACK_TIMEOUT_S = 5.0  # the CLI's default --timeout-s is 10 s: the per-actor report gets there

Done = Callable[[ControlReply], None]


@dataclass(frozen=True)
class Change:
    field: str  # dotted, venues by name: `venues[simA].port`
    old: Any
    new: Any

    @property
    def section(self) -> str:
        return self.field.split(".", 1)[0].split("[", 1)[0]

    @property
    def live(self) -> bool:
        return self.section in LIVE_SECTIONS

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "old": self.old, "new": self.new, "live": self.live}


def config_diff(old: SystemConfig, new: SystemConfig) -> list[Change]:
    """Every field whose value differs, in a stable order: tables member by member, lists
    of tables (venues, blackouts) by name (else index) while both sides have members; a
    member on one side only, or a list that is empty on one side, as one field whose value
    is all of it (`trading.blackouts: [{...}] -> []`). Secret values (a changed password,
    FIX RawData) shown as `<redacted>`, in a table too."""
    changes: list[Change] = []
    _diff(old.model_dump(mode="json"), new.model_dump(mode="json"), "", changes)
    return changes


def _diff(a: Any, b: Any, path: str, out: list[Change]) -> None:
    if a == b:  # also a null field on one side and no field on the other: nothing to show
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            _diff(a.get(key), b.get(key), f"{path}.{key}" if path else str(key), out)
    elif _tables(a) and _tables(b):
        by_a, by_b = _by_name(a), _by_name(b)
        for key in sorted(by_a.keys() | by_b.keys()):
            _diff(by_a.get(key), by_b.get(key), f"{path}[{key}]", out)
    else:
        out.append(Change(path, redact_leaf(path, a), redact_leaf(path, b)))


def _tables(node: Any) -> bool:
    return isinstance(node, list) and bool(node) and all(isinstance(v, dict) for v in node)


def _by_name(tables: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(t.get("name", i)): t for i, t in enumerate(tables)}


def format_change(change: Mapping[str, Any]) -> str:
    """`risk.max_order_qty: 10000 -> 5`."""
    return f"{change['field']}: {change['old']} -> {change['new']}"


class ReloadHost(Protocol):
    """What the reload needs of the supervisor (`commands.ControlHost` has it)."""

    @property
    def cfg(self) -> SystemConfig: ...

    @property
    def config_path(self) -> str: ...

    @property
    def overrides(self) -> dict[str, Any]: ...

    def actor_ids(self) -> list[str]: ...

    def actor_state(self, actor: str) -> ChildState | None: ...

    def forward(self, actor: str, request: ControlRequest) -> str: ...


@dataclass
class _Batch:
    changes: list[Change]
    done: Done
    new: SystemConfig
    generation: int
    who: str
    reason: str
    answers: dict[str, str] = field(default_factory=dict)  # actor -> its answer
    waiting: set[str] = field(default_factory=set)  # forwarded ids
    not_applied: set[str] = field(default_factory=set)  # sections an actor did not confirm

    @property
    def failed(self) -> bool:
        return bool(self.not_applied)


class Reloader:
    """Owns the running config as far as reloads go (the daemon's own `cfg` keeps what it
    was started with: only restart-only fields of it are read, and those never change)."""

    def __init__(
        self, host: ReloadHost, timers: Timers, log: structlog.typing.FilteringBoundLogger
    ) -> None:
        self._host = host
        self._timers = timers
        self._log = log
        self._running: SystemConfig | None = None  # the host's until the first reload
        self._pending: dict[
            str, tuple[_Batch, str, str]
        ] = {}  # forwarded id -> batch, actor, section
        self._generation = 0  # of the reloads sent
        self._applied_gen: dict[str, int] = {}  # section -> the generation it holds

    def reload(self, operator: OperatorId, reason: str, done: Done) -> None:
        """Load, compare, apply (or refuse); `done` gets the reply once every actor that was
        sent a section answered (or `ACK_TIMEOUT_S` passed)."""
        who = operator.describe()
        try:
            new = load_config(self._host.config_path, **self._overrides())
        except ConfigError as exc:
            self._refused(who, f"config error: {exc}", [], done)
            return
        changes = config_diff(self.running, new)
        if not changes:
            metrics.CONFIG_RELOADS.labels(result="unchanged").inc()
            done(ControlReply(status="ok", reason="config unchanged", data={"changes": []}))
            return
        restart_only = [c.field for c in changes if not c.live]
        if restart_only:
            why = f"needs a restart: {', '.join(restart_only)} (nothing applied)"
            self._refused(who, why, changes, done)
            return
        self._generation += 1
        batch = _Batch(changes, done, new, self._generation, who, reason)
        for section in sorted({c.section for c in changes}):
            model = getattr(new, section)  # an optional section may be absent: None
            values = None if model is None else model.model_dump(mode="json")
            for actor in LIVE_SECTIONS[section]:
                reads = _READS_ONLY.get((section, actor))
                if reads is None or any(c.field in reads for c in changes):
                    self._send(batch, actor, section, values, operator)
        if batch.waiting:
            self._timers.call_later(ACK_TIMEOUT_S, lambda: self._expire(batch))
        else:
            self._finish(batch)

    @property
    def running(self) -> SystemConfig:
        """The config in force: the one started with, then the last one reloaded."""
        return self._running or self._host.cfg

    def on_reply(self, corr_id: str, reply: ControlReply) -> bool:
        """An actor answered an `apply-config`; False: not one of ours."""
        entry = self._pending.pop(corr_id, None)
        if entry is None:
            return False
        batch, actor, section = entry
        batch.waiting.discard(corr_id)
        batch.answers[actor] = reply.reason or reply.status
        if reply.status != "ok":
            batch.not_applied.add(section)
        if not batch.waiting:
            self._finish(batch)
        return True

    def _overrides(self) -> dict[str, Any]:
        keys = ("state_dir", "runtime_dir", "metrics_port")
        return {k: v for k, v in self._host.overrides.items() if k in keys}

    def _send(
        self,
        batch: _Batch,
        actor: str,
        section: str,
        values: dict[str, Any] | None,
        op: OperatorId,
    ) -> None:
        if actor not in self._host.actor_ids():
            return
        if self._host.actor_state(actor) is not ChildState.RUNNING:
            batch.answers[actor] = "not running: reads the file when it starts"
            return
        request = ControlRequest(command=ApplyConfig(section=section, values=values), operator=op)
        try:
            forwarded = self._host.forward(actor, request)
        except zmq.ZMQError as exc:
            batch.answers[actor] = f"unreachable ({exc}): reads the file when it restarts"
            batch.not_applied.add(section)
            return
        batch.waiting.add(forwarded)
        self._pending[forwarded] = (batch, actor, section)

    def _expire(self, batch: _Batch) -> None:
        if not batch.waiting:
            return
        for forwarded in list(batch.waiting):
            _, actor, section = self._pending.pop(forwarded, (batch, "?", "?"))
            batch.answers[actor] = f"no answer within {ACK_TIMEOUT_S:g} s"
            batch.not_applied.add(section)
        batch.waiting.clear()
        self._finish(batch)

    def _advance(self, batch: _Batch) -> list[str]:
        """The running config takes each section every actor confirmed (unless a later
        reload's answer got there first); returns the sections applied."""
        applied = sorted({c.section for c in batch.changes} - batch.not_applied)
        update = {}
        for section in applied:
            if self._applied_gen.get(section, 0) < batch.generation:
                self._applied_gen[section] = batch.generation
                update[section] = getattr(batch.new, section)
        if update:
            self._running = self.running.model_copy(update=update)
            set_running(self._running)  # what an automatic post-mortem bundle records
        return applied

    def _finish(self, batch: _Batch) -> None:
        applied = self._advance(batch)
        changes = [format_change(c.to_dict()) for c in batch.changes]
        if batch.failed:
            metrics.CONFIG_RELOADS.labels(result="partial").inc()
            self._log.warning(
                "config_reload_incomplete", operator=batch.who, reason=batch.reason,
                applied=applied, not_applied=sorted(batch.not_applied),
                actors=dict(sorted(batch.answers.items())), changes=changes,
            )  # fmt: skip
        else:
            metrics.CONFIG_RELOADS.labels(result="applied").inc()
            self._log.warning(
                "config_reloaded", operator=batch.who, reason=batch.reason, sections=applied,
                changes=changes,
            )  # fmt: skip
        data = {
            "changes": [c.to_dict() for c in batch.changes],
            "actors": dict(sorted(batch.answers.items())),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if batch.failed:
            reason = (
                f"config partly applied: {', '.join(sorted(batch.not_applied))} not applied"
                " (see actors); `tradepulse reload` again sends it again"
            )
            batch.done(ControlReply(status="error", reason=reason, data=data))
        else:
            batch.done(ControlReply(status="ok", reason="config reloaded", data=data))

    def _refused(self, who: str, why: str, changes: list[Change], done: Done) -> None:
        metrics.CONFIG_RELOADS.labels(result="refused").inc()
        self._log.warning("config_reload_refused", operator=who, error=why)
        data = {"changes": [c.to_dict() for c in changes]}
        done(ControlReply(status="error", reason=f"reload refused: {why}", data=data))
