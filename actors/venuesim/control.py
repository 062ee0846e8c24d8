"""Control of a simulated venue from outside its process: the operator's CLI (`python -m
actors.venuesim control`), the tests and the chaos tools. A venue's simulator answers on
its process's ROUTER: `venuesim.<venue>`, or for a venue simulated in another's process
(`[venues.sim] runs_in`) that process's, where a fault names its venue and a status is
the venue's own part.
"""

from __future__ import annotations

from typing import Any

from protocol import control as ctl
from protocol.config import SystemConfig
from protocol.messages import ControlReply
from protocol.sim_config import sim_process_of


def control_request(
    cfg: SystemConfig, venue: str, command: str, args: dict[str, Any], timeout_s: float = 5.0
) -> ControlReply:
    """Send one command to the venue's ROUTER and wait for the answer (a status: the
    venue's own part). Raises `VenueSimUnavailable` when nobody answers."""
    target, args = sim_target(cfg, venue, command, args)
    try:
        reply = ctl.control_request(cfg, command, args, timeout_s, target=target)
    except VenueSimUnavailable:
        raise
    except ctl.ControlUnavailable as exc:
        raise VenueSimUnavailable(f"venue sim {venue!r}: {exc}") from exc
    return venue_part(reply, venue)


def sim_target(
    cfg: SystemConfig, venue: str, command: str, args: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The actor whose ROUTER serves `venue`'s simulator (`venuesim.<sim.runs_in>` for a
    venue simulated in another's process), and the command's arguments: a fault names
    its venue."""
    vcfg = next((v for v in cfg.venues if v.name == venue), None)
    host = venue if vcfg is None else sim_process_of(vcfg)
    return f"venuesim.{host}", args if command == "status" else {**args, "venue": venue}


def venue_part(reply: ControlReply, venue: str) -> ControlReply:
    """A status from a process that simulates several venues: `venue`'s part of it."""
    venues = reply.data.get("venues")
    if not isinstance(venues, dict) or not isinstance(part := venues.get(venue), dict):
        return reply
    return reply.model_copy(update={"data": part})


class VenueSimUnavailable(ctl.ControlUnavailable):
    """The venue sim's ROUTER did not answer."""
