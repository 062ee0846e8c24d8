"""What an operator command is, and what it may ask of the supervisor.

`OperatorCommand` is one unit (after circus's `circus/commands/*`): its help text, its CLI
arguments and what the CLI does with them. `ControlCommand`, the ones sent to the running
supervisor, adds the wire model it sends (`protocol.commands`), where it is routed (the
supervisor itself, or the actor that executes it), what the supervisor does with it, and
how its reply is printed. `ControlHost` is the narrow view of the supervisor that the
control plane and the commands get.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, get_args

from pydantic import ValidationError

from actors.supervisor.ctl import EXIT_CONFIG, control_command
from actors.supervisor.restart_policy import ChildState
from protocol.commands import Command, OperatorId
from protocol.config import SystemConfig
from protocol.domain import Msg
from protocol.messages import ControlReply, ControlRequest

if TYPE_CHECKING:  # the CLI loads the table before prometheus_client may be imported
    from actors.supervisor.operator_stop import OperatorStops

C = TypeVar("C", bound=Command)


class ControlHost(Protocol):
    """The supervisor as the control plane sees it."""

    @property
    def cfg(self) -> SystemConfig:
        """The config it was started with (`reload` compares the file with it)."""
        ...

    @property
    def config_path(self) -> str: ...

    @property
    def overrides(self) -> dict[str, Any]:
        """The command-line overrides of the config (state_dir, runtime_dir, metrics_port)."""
        ...

    @property
    def kill_switch_path(self) -> Path: ...

    @property
    def state_path(self) -> Path:
        """The state dir (`protocol.paths`)."""
        ...

    def actor_ids(self) -> list[str]:
        """Every supervised actor, in start order."""
        ...

    def actor_state(self, actor: str) -> ChildState | None:
        """None: no such actor."""
        ...

    def status(self) -> dict[str, Any]:
        """The `status` reply's data: actors, venues, kill-switch, intake, metrics URL."""
        ...

    def request_restart(self, actor: str, *, force: bool, reason: str = "operator") -> bool:
        """Restart a known actor (`reason`: the restart counter's label); True if it was not
        running and starts now."""
        ...

    def actor_info(self, actor: str) -> dict[str, Any]:
        """What `actor` said in its last heartbeat (`Actor.heartbeat_info`); {} if nothing."""
        ...

    def actor_of_pid(self, pid: int) -> str | None:
        """The supervised actor whose current process is `pid`; None: not one of them."""
        ...

    def request_shutdown(self) -> None: ...

    @property
    def shutting_down(self) -> bool:
        """A shutdown is under way: only `ANSWERED_WHILE_SHUTTING_DOWN` is (control_plane)."""
        ...

    @property
    def operator_stops(self) -> OperatorStops:
        """The actors an operator stopped (`tradepulse stop` / `start`)."""
        ...

    def forward(self, actor: str, request: ControlRequest) -> str:
        """Send `request` to `actor`; returns the message id its reply will answer (raises
        zmq.ZMQError if it cannot be sent)."""
        ...


class OperatorCommand:
    """One `tradepulse` subcommand. The first docstring line of a subclass is its help."""

    name: ClassVar[str]
    needs_config: ClassVar[bool] = True  # False: `run_offline`, no config loaded

    @property
    def help(self) -> str:
        return (type(self).__doc__ or "").strip().splitlines()[0]

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Its own arguments (every command also takes the config flags)."""

    def run(self, cfg: SystemConfig, ns: argparse.Namespace) -> int:
        """The CLI side; returns the exit code."""
        raise NotImplementedError

    def run_offline(self, ns: argparse.Namespace) -> int:
        """The CLI side of a command that needs no config (`needs_config` False)."""
        raise NotImplementedError


class ControlCommand(OperatorCommand, Generic[C]):
    """A command sent to the running supervisor over its control socket."""

    model: type[C]
    route: ClassVar[str | None] = None  # the actor that executes it; None: the supervisor
    venue_filter: ClassVar[bool] = False  # True: its `venue` only narrows what it shows

    def refusal(self, command: C, host: ControlHost) -> str | None:
        """Why the supervisor answers `command` with an error before routing it; None: it
        goes on. A view's venue filter must name a configured venue: one that names none
        matched nothing, so `positions --venue SimA --compare desk.csv` said "desk records
        match" and `orders --open --venue SIMA` "0 orders" (exit 0) for a venue with both."""
        venue = getattr(command, "venue", None) if self.venue_filter else None
        known = [v.name for v in host.cfg.venues]
        if venue is None or venue in known:
            return None
        return f"unknown venue {venue!r}; venues: {', '.join(known)}"

    def target(self, command: C) -> str | None:
        """The actor that executes `command` (`route`, or one chosen by its arguments)."""
        return self.route

    def to_wire(self, ns: argparse.Namespace) -> C:
        """The wire model from the parsed CLI arguments (the model validates them)."""
        raise NotImplementedError

    def run(self, cfg: SystemConfig, ns: argparse.Namespace) -> int:
        try:
            command = self.to_wire(ns)
        except ValidationError as exc:  # an argument the wire model refuses: usage error
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])  # none: a check of the whole command
            msg = err["msg"].removeprefix("Value error, ")  # pydantic's, of a model validator
            print(f"tradepulse {self.name}: {f'{where}: ' if where else ''}{msg}", file=sys.stderr)
            return EXIT_CONFIG
        return control_command(cfg, command, self.format, as_json=ns.json, timeout_s=ns.timeout_s)

    def execute_by(
        self, command: C, host: ControlHost, operator: OperatorId | None
    ) -> ControlReply:
        """`execute` on behalf of `operator` (the kernel's identity of the process that sent
        it): a command that records who acted overrides this instead."""
        return self.execute(command, host)

    def execute(self, command: C, host: ControlHost) -> ControlReply:
        """The supervisor's own answer. A routed command gets here only while its actor is
        not running; one the supervisor executes overrides this."""
        route = self.target(command)
        if route is None:
            raise NotImplementedError(f"{self.name}: the supervisor's execute is missing")
        state = host.actor_state(route)
        why = state.value if state else "missing"
        return ControlReply(status="error", reason=f"{route} is not running ({why})")

    def before_across(
        self, command: C, host: ControlHost, operator: OperatorId | None
    ) -> C | ControlReply:
        """`command` acts on an actor another host group's supervisor runs (a venue placed
        on an edge, given to the core: `actors.link.remote_control`): what this supervisor
        does first, and the command to send there, or a refusal (a reply)."""
        return command

    def after_across(self, command: C, host: ControlHost, reply: ControlReply) -> None:
        """The answer from across (or the link's: down, no answer), before the operator's."""

    def format(self, reply: ControlReply) -> str:
        """The reply for people (`--json` prints the envelope as is)."""
        text = f"{reply.status}: {reply.reason}" if reply.reason else reply.status
        if reply.data:
            text += "\n" + json.dumps(reply.data, indent=2, default=str)
        return text


def choices(model: type[Msg], field: str) -> list[str]:
    """The values of a Literal field: the CLI offers what the wire model accepts."""
    return [str(v) for v in get_args(model.model_fields[field].annotation)]
