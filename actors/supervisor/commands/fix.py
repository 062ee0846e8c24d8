"""`tradepulse fix log|seq --venue V ...`: a venue's FIX message log and sequence numbers.

    fix log --venue V [--follow] [--since 10m|2h|ISO] [--raw] [--venue-side]
    fix seq --venue V                                   show next-in / next-out
    fix seq --venue V [--next-in N] [--next-out M] --reason "..."   set them

`log` reads the log files (actors/connector/fix/msglog.py), so it works whether the system
runs or not; `--venue-side` reads the simulator's side of a simulated venue. `seq` shows
the numbers from the FIX store's file (running or not). Setting goes to the venue's
connector through the control plane while the system runs (the supervisor writes the
store itself while that connector is not running); with no supervisor running the CLI
writes the store directly, holding the state dir's lock. Exit codes: 0 ok; 1 failure (no
log or store yet, the store is busy, a refused value); 2 usage (unknown venue, a ccxt
venue, missing reason); 3 the system runs but its control socket does not answer, or (the
core, a venue placed on an edge) the link to that edge is down; 4 the control socket
answered from a process that is not the supervisor (nothing set, its answer not shown).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from actors.connector.fix import msgview, seqadmin
from actors.connector.fix.msglog import log_files
from actors.connector.fix.store import read_numbers
from actors.supervisor.commands.base import ControlCommand, ControlHost
from actors.supervisor.ctl import (
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    print_reply,
)
from protocol import commands as wire
from protocol import paths
from protocol.config import SystemConfig
from protocol.control import ControlUnavailable, control_request
from protocol.exceptions import ConfigError, JournalCorrupt, StateDirLocked
from protocol.link_config import CORE
from protocol.messages import ControlReply


class Fix(ControlCommand[wire.FixSeq]):
    """a venue's FIX message log (log) or next sequence numbers (seq)"""

    name = "fix"
    model = wire.FixSeq

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "action", choices=["log", "seq"], help="message log, or sequence numbers"
        )
        parser.add_argument("--venue", required=True, help="the venue (its name in the config)")
        parser.add_argument("--follow", action="store_true", help="log: keep printing")
        parser.add_argument("--since", default="", help="log: ISO time, or an age: 10m, 2h")
        parser.add_argument("--raw", action="store_true", help="log: messages as on the wire")
        parser.add_argument(
            "--venue-side", action="store_true", help="log: the simulated venue's own log"
        )
        parser.add_argument("--next-in", type=int, help="seq: MsgSeqNum expected next")
        parser.add_argument("--next-out", type=int, help="seq: MsgSeqNum of our next message")
        parser.add_argument("--reason", default="", help="seq: why (required to set)")

    def target(self, command: wire.FixSeq) -> str | None:
        return f"connector.{command.venue}"

    def to_wire(self, ns: argparse.Namespace) -> wire.FixSeq:
        return wire.FixSeq(
            venue=ns.venue, next_in=ns.next_in, next_out=ns.next_out, reason=ns.reason
        )

    def run(self, cfg: SystemConfig, ns: argparse.Namespace) -> int:
        if ns.venue not in {v.name for v in cfg.venues}:
            known = ", ".join(v.name for v in cfg.venues)
            return _fail(f"unknown venue {ns.venue!r} (venues: {known})", EXIT_CONFIG)
        if (kind := next(v.kind for v in cfg.venues if v.name == ns.venue)) != "fix":
            return _fail(
                f"venue {ns.venue!r} is a {kind} venue: it has no FIX session", EXIT_CONFIG
            )
        if ns.action == "log":
            return _show_log(cfg, ns)
        if ns.next_in is None and ns.next_out is None:
            return _show_seq(cfg, ns)
        try:
            command = self.to_wire(ns)
        except ValidationError as exc:  # no reason, a number out of range: usage error
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "arguments"
            return _fail(f"seq: {where}: {err['msg']}", EXIT_CONFIG)
        try:
            reply = control_request(cfg, command, timeout_s=ns.timeout_s)
        except ControlUnavailable:
            return _set_offline(cfg, command, ns, self)
        return _print_reply(reply, ns, self)

    def execute(self, command: wire.FixSeq, host: ControlHost) -> ControlReply:
        """The venue's connector is not running: the supervisor writes the store."""
        route = self.target(command)
        if route is None or host.actor_state(route) is None:
            return ControlReply(status="error", reason=f"unknown venue {command.venue!r}")
        return _apply(
            paths.fix_dir(host.state_path, command.venue),
            command,
            structlog.get_logger().bind(actor="supervisor", venue=command.venue),
            "supervisor",
        )

    def format(self, reply: ControlReply) -> str:
        if reply.status != "ok":
            return super().format(reply)
        d = reply.data
        return (
            f"next-in {d['old_next_in']} -> {d['next_in']}, "
            f"next-out {d['old_next_out']} -> {d['next_out']} "
            f"(set by {d['applied_by']}; reason: {d['reason']})"
        )


def _apply(directory: Path, command: wire.FixSeq, log: Any, applied_by: str) -> ControlReply:
    try:
        data = seqadmin.open_and_set(
            directory,
            next_in=command.next_in,
            next_out=command.next_out,
            reason=command.reason,
            log=log,
            applied_by=applied_by,
        )
    except FileNotFoundError:
        reason = f"no FIX store for venue {command.venue!r} yet (it never connected)"
        return ControlReply(status="error", reason=reason)
    except StateDirLocked:
        reason = "the FIX store is open by a connector right now; try again"
        return ControlReply(status="error", reason=reason)
    except (ValueError, JournalCorrupt) as exc:
        return ControlReply(status="error", reason=str(exc))
    return ControlReply(status="ok", reason="sequence numbers set", data=data)


def _set_offline(cfg: SystemConfig, command: wire.FixSeq, ns: argparse.Namespace, unit: Fix) -> int:
    """No supervisor answers: take the state dir's lock (proof that none runs) and write
    the store directly, with the same validation and log line."""
    from actors.supervisor.host import lock_state_dir

    try:
        lock_fd = lock_state_dir(cfg)
    except StateDirLocked as exc:
        return _fail(f"{exc}, but its control socket does not answer", EXIT_UNAVAILABLE)
    except ConfigError as exc:  # a state dir shared by another user (host.check_owner)
        return _fail(f"config error: {exc}", EXIT_CONFIG)
    try:
        log = structlog.wrap_logger(
            structlog.PrintLogger(sys.stderr),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),  # as actors
                structlog.processors.JSONRenderer(),
            ],
        ).bind(actor="cli", venue=ns.venue)
        directory = paths.fix_dir(cfg.state_path, ns.venue)
        reply = _apply(directory, command, log, "cli (system stopped)")
    finally:
        os.close(lock_fd)
    return _print_reply(reply, ns, unit)


def _print_reply(reply: ControlReply, ns: argparse.Namespace, unit: Fix) -> int:
    return print_reply(reply, unit.format, as_json=ns.json)


def _show_seq(cfg: SystemConfig, ns: argparse.Namespace) -> int:
    try:
        next_in, next_out = read_numbers(paths.fix_dir(cfg.state_path, ns.venue))
    except FileNotFoundError:
        return _fail(f"no FIX store for venue {ns.venue!r} yet (it never connected{_on(cfg, ns)})")
    except JournalCorrupt as exc:
        return _fail(str(exc))
    if ns.json:
        print(json.dumps({"venue": ns.venue, "next_in": next_in, "next_out": next_out}))
    else:
        print(f"{ns.venue}: next-in {next_in}, next-out {next_out}")
    return EXIT_OK


def _show_log(cfg: SystemConfig, ns: argparse.Namespace) -> int:
    if ns.venue_side:
        directory = paths.venue_message_log_dir(cfg.state_path, ns.venue)
    else:
        directory = paths.fix_message_log_dir(cfg.state_path, ns.venue)
    try:  # a usage error first: it was "no FIX message log yet", exit 1, where none was
        since = msgview.parse_since(ns.since) if ns.since else ""
    except ValueError as exc:
        return _fail(f"--since: {exc}", EXIT_CONFIG)
    if not log_files(directory):
        return _fail(f"no FIX message log for venue {ns.venue!r} yet ({directory}{_on(cfg, ns)})")
    found = msgview.follow(directory, since) if ns.follow else msgview.entries(directory, since)
    try:
        for entry in found:
            if ns.json:
                raw = entry.raw.decode("latin-1").replace("\x01", "|")
                line = json.dumps({**entry._asdict(), "raw": raw})
            else:
                line = msgview.describe(entry, raw=ns.raw)
            print(line, flush=ns.follow)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:  # `| head`: the reader is gone
        sys.stderr.close()
    return EXIT_OK


def _on(cfg: SystemConfig, ns: argparse.Namespace) -> str:
    """Where a venue's FIX files are when it is placed on an edge (the config is the same
    on every host; this host may be the core)."""
    group = cfg.venue(ns.venue).host_group
    return "" if group == CORE else f" here; it runs on host group {group}: its files are there"


def _fail(text: str, code: int = EXIT_FAILURE) -> int:
    print(f"tradepulse fix: {text}", file=sys.stderr)
    return code
