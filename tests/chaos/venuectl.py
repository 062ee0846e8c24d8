"""Venue faults for the nemesis, through the simulated venue's control interface.

The venue process answers `ControlRequest(command=<fault kind>, args={"value": V})` on its
own ROUTER (the same requests `python -m actors.venues.sim control` sends; sending them
directly saves an interpreter start per fault). The nemesis's fault kinds map onto the
venue's (see `actors.venues.sim.faults`); faults with a duration are switched off again
after it, so this call blocks for the fault's window.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import zmq

from protocol.codec import Sender, decode, encode
from protocol.config import SystemConfig
from protocol.exceptions import ProtocolError, TradePulseError
from protocol.messages import ControlReply, ControlRequest


class VenueControlError(TradePulseError):
    pass


def sim_request(cfg: SystemConfig, venue: str, command: str, value: Any = None,
                timeout_s: float = 5.0) -> ControlReply:
    """Send one control command to `venuesim.<venue>` and return its reply."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(cfg.endpoint(f"venuesim.{venue}"))
        args = {} if value is None else {"value": value}
        env = Sender(f"chaos-{uuid.uuid4().hex[:6]}", 0).envelope(ControlRequest(command=command, args=args))
        sock.send_multipart(encode(env))
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(int(left * 1000) + 1):
                break
            try:
                reply = decode(sock.recv_multipart())
            except ProtocolError:
                continue
            if reply.corr_id == env.msg_id and isinstance(reply.body, ControlReply):
                if reply.body.status != "ok":
                    raise VenueControlError(f"venuesim.{venue} {command}: {reply.body.reason}")
                return reply.body
        raise VenueControlError(f"venuesim.{venue} did not answer {command} within {timeout_s} s")
    finally:
        sock.close(0)
        ctx.term()


def venue_fault(system: Any, venue: str, kind: str, params: dict[str, Any]) -> None:
    """Inject the nemesis fault `kind` at `venue` (blocking for its duration)."""
    cfg: SystemConfig = system.cfg
    duration = float(params.get("duration_s", 0.0))
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
    else:
        raise VenueControlError(f"unknown venue fault {kind!r}")
