"""Venue faults for the nemesis, through the simulated venue's control interface.

The venue process answers `ControlRequest(command=VenueFault(command=<fault kind>, value=V))`
on its own ROUTER (the same requests `python -m actors.venuesim control` sends; sending them
directly saves an interpreter start per fault). The nemesis's fault kinds map onto the
venue's (see `actors.venuesim.faults`); faults with a duration are switched off again
after it, so this call blocks for the fault's window. A ccxt venue's local exchange
answers `ExchangeFault` the same way on `exchangesim.<venue>`'s ROUTER (see
`actors.exchangesim.faults`).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import zmq

from actors.venuesim.control import sim_target, venue_part
from protocol.codec import Sender, decode, encode
from protocol.commands import ExchangeFault, Exposure, parse_command
from protocol.config import SystemConfig
from protocol.control import ControlUnavailable, control_request
from protocol.exceptions import ProtocolError, TradePulseError
from protocol.messages import ControlReply, ControlRequest, Message
from tests.chaos.busts import bust_or_correct


class VenueControlError(TradePulseError):
    """An actor did not answer, or refused, a chaos control request."""


def actor_request(
    cfg: SystemConfig, actor_id: str, body: Message, timeout_s: float = 5.0
) -> Message:
    """Send one request to an actor's ROUTER and return the reply body."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(cfg.endpoint(actor_id))
        env = Sender(f"chaos-{uuid.uuid4().hex[:6]}", 0).envelope(body)
        sock.send_multipart(encode(env))
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(int(left * 1000) + 1):
                break
            try:
                reply = decode(sock.recv_multipart())
            except ProtocolError:
                continue
            if reply.corr_id == env.msg_id:
                return reply.body
        raise VenueControlError(f"{actor_id} did not answer {body.type} within {timeout_s} s")
    finally:
        sock.close(0)
        ctx.term()


def sim_request(
    cfg: SystemConfig, venue: str, command: str, value: Any = None, timeout_s: float = 5.0
) -> ControlReply:
    """Send one control command to `venue`'s simulator (`venuesim.<venue>`, or the process
    it runs in) and return its (ok) reply."""
    target, args = sim_target(cfg, venue, command, {} if value is None else {"value": value})
    request = ControlRequest(command=parse_command(command, args))
    reply = actor_request(cfg, target, request, timeout_s)
    if not isinstance(reply, ControlReply) or reply.status != "ok":
        raise VenueControlError(f"{target} {command} ({venue}): {reply}")
    return venue_part(reply, venue)


def exchange_request(
    cfg: SystemConfig, venue: str, kind: str, value: Any = None, timeout_s: float = 5.0
) -> ControlReply:
    """Set exchange fault `kind` at `exchangesim.<venue>` (`actors.exchangesim.faults`)."""
    request = ControlRequest(command=ExchangeFault(command=kind, value=value))  # type: ignore[arg-type]
    reply = actor_request(cfg, f"exchangesim.{venue}", request, timeout_s)
    if not isinstance(reply, ControlReply) or reply.status != "ok":
        raise VenueControlError(f"exchangesim.{venue} {kind}: {reply}")
    return reply


def risk_positions(cfg: SystemConfig, attempts: int = 3) -> tuple[list[dict[str, Any]] | None, str]:
    """Risk's own position view (what its limits read), or None and why it is unavailable
    (asked up to `attempts` times: risk may be restarting or rebuilding)."""
    why = ""
    for _ in range(attempts):
        try:
            # through the operator's channel: risk's ROUTER takes only the system's processes
            reply = control_request(cfg, Exposure(), timeout_s=3.0)
        except ControlUnavailable as exc:
            why = str(exc)
            continue
        if reply.status == "ok":
            return list(reply.data["positions"]), ""
        why = f"risk answered exposure with {reply.status}: {reply.reason}"
        time.sleep(0.5)  # NOT_READY: a rebuild is under way
    return None, why


def venue_fault(
    system: Any, venue: str, kind: str, params: dict[str, Any]
) -> dict[str, Any] | None:
    """Inject the nemesis fault `kind` at `venue` (blocking for its duration); what it did,
    for the fault's record (a trade bust's: `tests.chaos.busts`)."""
    cfg: SystemConfig = system.cfg
    duration = float(params.get("duration_s", 0.0))
    if kind == "trade_bust":
        return bust_or_correct(system, venue, params, sim_request)
    if kind == "drop_session":
        sim_request(cfg, venue, "drop_session")
    elif kind == "refuse_logons":
        sim_request(cfg, venue, "refuse_logons_s", duration)
        sim_request(cfg, venue, "drop_session")
        time.sleep(duration)
    elif kind == "venue_hang":
        sim_request(cfg, venue, "hang", duration)
        time.sleep(duration)
    elif kind in ("delay_execs", "duplicate_execs", "reorder_execs"):
        fault, on, off = {
            "delay_execs": ("delay_exec_ms", params.get("delay_ms", 100), 0),
            "duplicate_execs": ("duplicate_exec", "on", "off"),
            "reorder_execs": ("reorder_exec", "on", "off"),
        }[kind]
        sim_request(cfg, venue, fault, on)
        try:
            time.sleep(duration)
        finally:
            sim_request(cfg, venue, fault, off)
    elif kind == "reject_burst":
        sim_request(cfg, venue, "reject_next", int(params.get("count", 1)))
    elif kind in ("drop_ws", "http_5xx", "rate_limit", "timeout_after_accept"):
        exchange_request(cfg, venue, kind, params.get("count"))
    elif kind in ("duplicate_trade_events", "delay_trade_events"):
        fault, on, off = {
            "duplicate_trade_events": ("duplicate_trade_events", "on", "off"),
            "delay_trade_events": ("delay_trade_events_ms", params.get("delay_ms", 100), 0),
        }[kind]
        exchange_request(cfg, venue, fault, on)
        try:
            time.sleep(duration)
        finally:
            exchange_request(cfg, venue, fault, off)
    else:
        raise VenueControlError(f"unknown venue fault {kind!r}")
    return None
