"""Operator commands as they cross a process boundary: one frozen model per command.

A `ControlRequest` carries one of them, discriminated by its `command` name: from the
operator CLI to the supervisor's control socket, from the supervisor to the actor that
executes it (kill-switch -> risk; intake, reconcile, cancel -> oms; fix-seq -> the venue's
connector), or straight to an actor's ROUTER (the simulated venue's `status` and faults).
An unknown command or a bad argument is a `ProtocolError` naming what was wrong, at the
sender (`parse_command`) or at decode.

What each command does, its CLI syntax and how its reply is printed:
`actors.supervisor.commands`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from protocol.domain import MAX_REASON_CHARS, ClientId, Msg
from protocol.exceptions import ProtocolError


class _Cmd(Msg):
    """Base of every command: arguments are taken by their type, never coerced (strict), so
    `force: "false"` is an error, not a truthy string."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


_CONTROL_CHARS = dict.fromkeys([*range(0x20), *range(0x7F, 0xA0)], "\ufffd") | {
    ord(c): " "
    for c in "\t\n\v\f\r"  # a space: a reason of newlines is still blank
}


def _printable(text: str) -> str:
    """An operator's reason with a line break as a space, any other control character (an
    escape sequence) as U+FFFD: the reason is kept, never refused (an engage is not refused
    for its text), but it no longer breaks the lines of `status` or drives the terminal of
    whoever reads it (`\x1b[2J` cleared it). One for one: the length bound holds."""
    return text.translate(_CONTROL_CHARS)


Reason = Annotated[str, Field(max_length=MAX_REASON_CHARS), AfterValidator(_printable)]


class Status(_Cmd):
    """The status of whoever is asked: the supervisor (actors, venues, kill-switch) or a
    simulated venue (its session, faults, book)."""

    command: Literal["status"] = "status"


class Shutdown(_Cmd):
    command: Literal["shutdown"] = "shutdown"


class Restart(_Cmd):
    command: Literal["restart"] = "restart"
    actor: str = Field(min_length=1)
    force: bool = False  # SIGKILL now, no polite stop (an unresponsive actor)
    reason: Reason = ""  # logged with the request
    # start it even if an operator stopped it (`tradepulse stop`): risk's kill-switch mass
    # cancel must reach every venue; an operator's `restart` of a stopped actor is refused
    override_stop: bool = False


class KillSwitch(_Cmd):
    command: Literal["kill-switch"] = "kill-switch"
    action: Literal["engage", "reset", "status"]
    reason: Reason = ""  # bounded: the switch file keeps it (and its history)

    @model_validator(mode="after")
    def _reset_has_reason(self) -> KillSwitch:
        """A usage error at the CLI (exit 2, nothing sent), as an intake pause without one
        is; risk's own refusal (`killswitch.reset`) stays for any other sender."""
        if self.action == "reset" and not self.reason.strip():
            raise ValueError("a reset needs a reason (--reason)")
        return self


class Exposure(_Cmd):
    """Risk's own position view (what its limits read), for operators and the chaos checker."""

    command: Literal["exposure"] = "exposure"
    venue: str | None = None


class Intake(_Cmd):
    """Pause / resume order intake, globally (`venue` None) or for one venue; executed by
    the OMS, which persists the pauses (`actors.oms.intake_state`)."""

    command: Literal["intake"] = "intake"
    action: Literal["pause", "resume", "status"]
    venue: str | None = Field(default=None, min_length=1)
    reason: Reason = ""  # required to pause: kept with the pause, shown by status

    @model_validator(mode="after")
    def _pause_has_reason(self) -> Intake:
        if self.action == "pause" and not self.reason.strip():
            raise ValueError("a pause needs a reason (--reason)")
        return self


class Reconcile(_Cmd):
    command: Literal["reconcile"] = "reconcile"
    venue: str
    dry_run: bool = True


class Cancel(_Cmd):
    """Cancel one order, as a client's CancelOrder would (the runbook's "cancel it first");
    executed by the OMS, which logs who asked (`operator_cancel`)."""

    command: Literal["cancel"] = "cancel"
    client_order_id: ClientId
    reason: Reason = ""


SeqNum = Annotated[int, Field(ge=1, le=2**31 - 1)]


class FixSeq(_Cmd):
    """Set a venue's next FIX sequence numbers (`tradepulse fix seq`), executed by its
    connector (its FIX store; the supervisor writes the store while the connector is down)."""

    command: Literal["fix-seq"] = "fix-seq"
    venue: str = Field(min_length=1)
    next_in: SeqNum | None = None  # the MsgSeqNum we expect next from the venue
    next_out: SeqNum | None = None  # the MsgSeqNum of our next message
    reason: Reason = Field(min_length=1)  # required: logged with the old and new numbers

    @model_validator(mode="after")
    def _something_to_set(self) -> FixSeq:
        if self.next_in is None and self.next_out is None:
            raise ValueError("next_in or next_out (or both) must be given")
        if not self.reason.strip():
            raise ValueError("reason must not be blank")
        return self


class Stop(_Cmd):
    """Stop one supervised actor and keep it stopped (no restart, not a crash) until
    `Start` (`tradepulse stop ACTOR`); the supervisor executes it."""

    command: Literal["stop"] = "stop"
    actor: str = Field(min_length=1)
    reason: Reason = ""  # shown by status: "stopped (by operator: <reason>)"
    force: bool = False  # a connector even with orders open at its venue


class Start(_Cmd):
    """Start an actor an operator stopped (`tradepulse start ACTOR`)."""

    command: Literal["start"] = "start"
    actor: str = Field(min_length=1)
    reason: Reason = ""  # logged and audited (an edge's audit: the core operator's name)


# The simulated venue's fault kinds (the one list; `actors.venuesim.faults.FAULT_KINDS` is
# read from it): the fault's name is the command, validated and normalised by the venue.
FaultKind = Literal[
    "drop_session",
    "hang",
    "delay_exec_ms",
    "duplicate_exec",
    "reorder_exec",
    "reject_next",
    "disconnect_after",
    "refuse_logons_s",
    "swallow_fills",
    "swallow_cancels",
    "clear",
    "bust_trade",  # not faults: a trade's bust / correction (`actors.venuesim.busts`)
    "correct_trade",
]


class VenueFault(_Cmd):
    """Inject a fault at a simulated venue (see `actors.venuesim.faults` for the values)."""

    command: FaultKind
    value: str | int | float | bool | None = None
    # which venue, when its simulator process runs several (`sim.runs_in`); "": the one
    venue: str = Field(default="", max_length=64)


# The simulated exchange's own fault kinds (`actors.exchangesim.faults`; it also takes
# `VenueFault` "clear"): the fault's name is the command, validated by the exchange.
ExchangeFaultKind = Literal[
    "timeout_after_accept",
    "http_5xx",
    "rate_limit",
    "drop_ws",
    "delay_trade_events_ms",
    "delay_create_ms",
    "duplicate_trade_events",
    "clock_skew_ms",
    "timestamps_us",
    "garble_events",
    "html_answer",
]


class ExchangeFault(_Cmd):
    """Inject a fault at a simulated exchange (see `actors.exchangesim.faults`)."""

    command: ExchangeFaultKind
    value: str | int | float | bool | None = None


# The operator views (`tradepulse orders|fills|positions`), answered by the OMS from its book.
# A reply lists at most `limit` rows, newest first, with the total that matched: bounded
# well below the control message size limit (2000 orders of ~500 bytes: 1 MB of 4 MB).
MAX_VIEW_ROWS = 2000
ViewLimit = Annotated[int, Field(ge=1, le=MAX_VIEW_ROWS)]
TsNs = Annotated[int, Field(ge=0)]


class Orders(_Cmd):
    command: Literal["orders"] = "orders"
    open_only: bool = False
    venue: str | None = None
    symbol: str | None = None
    since_ns: TsNs | None = None  # orders last changed at or after (epoch ns)
    limit: ViewLimit = 200


class Fills(_Cmd):
    command: Literal["fills"] = "fills"
    venue: str | None = None
    symbol: str | None = None
    since_ns: TsNs | None = None  # fills the OMS applied at or after (epoch ns)
    limit: ViewLimit = 200


class Positions(_Cmd):
    """The OMS's positions with P&L and the venue's last reported position."""

    command: Literal["positions"] = "positions"
    venue: str | None = None
    limit: ViewLimit = MAX_VIEW_ROWS


class Reload(_Cmd):
    """Re-read the config file and apply what can change live (`tradepulse reload`)."""

    command: Literal["reload"] = "reload"
    reason: Reason = ""


class ApplyConfig(_Cmd):
    """Supervisor -> the actor that owns a live config section (`actors.supervisor.reload`):
    the section's new values, validated by the supervisor; the actor validates them again."""

    command: Literal["apply-config"] = "apply-config"
    section: str = Field(pattern=r"^[a-z_]{1,32}$")
    values: dict[str, Any] | None  # None: an optional section that is now absent


class OperatorId(Msg):
    """Who sent an operator command: the kernel's credentials of the process connected to
    the control socket (SO_PEERCRED) and the uid's user name. Only the supervisor fills it
    (`ControlRequest.operator`); whatever a client sends there is replaced."""

    uid: int | None = None
    user: str = Field(default="", max_length=64)
    pid: int | None = None
    # control: an operator's connection; sighup; actor:<id>: a supervised actor's (its pid)
    via: str = Field(default="control", max_length=64, pattern=r"^(control|sighup|actor:\S+)$")
    # who logged in (pam_loginuid, /proc/<pid>/loginuid: survives sudo); None: unset
    login_uid: int | None = None
    login_user: str = Field(default="", max_length=64)

    def describe(self) -> str:
        """`alice (uid 1000, pid 4242)`; `SIGHUP` for a reload by signal; `actor risk (pid
        4242)` for a supervised actor's request; `unknown`."""
        if self.via == "sighup":
            return "SIGHUP"
        if self.via.startswith("actor:"):
            return f"actor {self.via.removeprefix('actor:')} (pid {self.pid})"
        if self.uid is None:
            return "unknown"  # no peer credentials (not an ipc connection)
        login = ""
        if self.login_uid is not None and self.login_uid != self.uid:
            login = f", login {self.login_user or self.login_uid}"  # `sudo -u tradepulse`
        return f"{self.user or self.uid} (uid {self.uid}, pid {self.pid}{login})"


Command = Annotated[
    Status
    | Shutdown
    | Restart
    | KillSwitch
    | Exposure
    | Intake
    | Reconcile
    | Cancel
    | FixSeq
    | VenueFault
    | ExchangeFault
    | Orders
    | Fills
    | Positions
    | Reload
    | ApplyConfig
    | Stop
    | Start,
    Field(discriminator="command"),
]

COMMAND_ADAPTER: TypeAdapter[Command] = TypeAdapter(Command)
COMMAND_NAMES: tuple[str, ...] = tuple(
    name
    for model in get_args(get_args(Command)[0])
    for name in get_args(model.model_fields["command"].annotation)
)


def acted_on(command: Command) -> str | None:
    """The supervised actor `command` acts on where placement matters (a venue's connector
    or simulator runs on the supervisor of its host group, maybe another host's: the core
    sends it across the link, `actors.link.remote_control`): `restart`, `stop`, `start`
    their actor, `fix-seq` the venue's connector. None: any other command."""
    if isinstance(command, Restart | Stop | Start):
        return command.actor
    if isinstance(command, FixSeq):
        return f"connector.{command.venue}"
    return None


def parse_command(name: str, args: Mapping[str, Any] | None = None) -> Command:
    """The command `name` with its arguments `args`; a `ProtocolError` says what is wrong."""
    if name not in COMMAND_NAMES:
        raise ProtocolError(f"unknown command {name!r}; commands: {', '.join(COMMAND_NAMES)}")
    try:
        return COMMAND_ADAPTER.validate_python({**(args or {}), "command": name})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"][1:]) or "arguments"
        raise ProtocolError(f"{name}: {loc!r}: {err['msg']}") from exc
