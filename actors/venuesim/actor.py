"""The simulated venue process: the matching engine behind a FIX 4.4 acceptor.

Spawned by the supervisor as ``venuesim.<venue>`` for every venue with a ``[venues.sim]``
table, or alone with ``python -m actors.venuesim run``. It is the outside world: its
state lives in ``<state_dir>/venues/<venue>/`` (the engine's log, and ``fix/`` for the
FIX session store), which our cold start never touches, and it survives its own
``kill -9``.

Port: `VenueCfg.port`, or with 0 the port of the previous incarnation (if still free)
or any free one; written atomically to ``<runtime_dir>/venuesim.<venue>.port`` before
READY, so the connector (which starts after us) finds it.

Several venues, one process: the venues whose `sim.runs_in` names this venue run here too,
each an `actors.venuesim.unit.SimVenue` with its own state directory, port and session, on
this one loop (one process instead of one a venue: less memory and idle CPU; its kill -9
takes all of them down, and they all come back with it).

Control: the actor's ROUTER answers `ControlRequest`s directly (``python -m
actors.venuesim control``), and `on_control` takes the same commands if the supervisor
forwards them: ``status``, or a fault (`protocol.commands.VenueFault`: the kind, see
`faults`, with its value, and the venue when the process runs several).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

from actors.runtime.actor import Actor
from actors.runtime.peer import Replier
from actors.venuesim.faults import FAULT_KINDS
from actors.venuesim.unit import SimVenue
from protocol.codec import Envelope
from protocol.commands import Command, Status, VenueFault
from protocol.messages import ControlReply, ControlRequest, ErrorCode, Message
from protocol.sim_config import sim_guests


class VenueSimActor(Actor):
    kind = "venuesim"
    trims_heap = True
    # the outside world, not part of the system: its control socket serves the operator's
    # and the chaos tools' fault commands (python -m actors.venuesim control), no orders
    guarded = False

    def setup(self) -> None:
        name = self.args.venue or self.actor_id.partition(".")[2]
        self.venue_name = name
        seed = self.args.extra.get("seed")  # standalone `run --seed`: our own venue's
        self.venues: dict[str, SimVenue] = {}
        # the supervisor's (its spec: the topology it started with), else the file's (alone)
        guests = self.args.extra.get("guests")
        here = (name, *(sim_guests(self.cfg.venues, name) if guests is None else guests))
        for venue in here:
            own = int(seed) if seed is not None and venue == name else zlib.crc32(venue.encode())
            try:
                self.venues[venue] = SimVenue(self, venue, own)
            except Exception as exc:
                if len(here) > 1:  # several venues: say which one failed (one: its actor's)
                    error = f"{type(exc).__name__}: {exc}"
                    self.log.error("sim_venue_failed", venue=venue, error=error)
                raise

    # ------------------------------------------------------------------ loop hooks

    def after_iteration(self) -> None:
        for venue in self.venues.values():
            venue.turn()

    def on_stop(self) -> None:
        for venue in self.venues.values():
            venue.close()

    def send_supervisor(self, body: Message, corr_id: str = "") -> None:
        if not self.args.extra.get("standalone"):  # alone, nobody would ever read them
            super().send_supervisor(body, corr_id)

    def heartbeat_info(self) -> dict[str, Any]:
        return self._by_venue(SimVenue.info)

    # ------------------------------------------------------------------ control

    def on_request(self, env: Envelope, reply: Replier) -> None:
        if isinstance(env.body, ControlRequest):
            self.on_control(env.body.command, reply)
        else:
            reply.reject(ErrorCode.BAD_REQUEST, f"{self.kind} does not serve {env.type}")

    def on_control(self, command: Command, respond: Callable[[ControlReply], None]) -> None:
        if isinstance(command, Status):
            respond(ControlReply(status="ok", data=self.status()))
            return
        if not isinstance(command, VenueFault):
            known = ", ".join(("status", *FAULT_KINDS))
            reason = f"unknown command {command.command!r}; {known}"
            respond(ControlReply(status="error", reason=reason))
            return
        if command.venue:
            venue = self.venues.get(command.venue)
        else:  # the one venue, or none: which of several is meant?
            venue = next(iter(self.venues.values())) if len(self.venues) == 1 else None
        if venue is None:
            named = f"venue {command.venue!r}" if command.venue else "no venue"
            here = ", ".join(self.venues)
            reason = f"{named}: this simulator process runs {here} (name one)"
            respond(ControlReply(status="error", reason=reason))
            return
        respond(venue.apply(command))

    def status(self) -> dict[str, Any]:
        return self._by_venue(SimVenue.status)

    def _by_venue(self, part: Callable[[SimVenue], dict[str, Any]]) -> dict[str, Any]:
        """The one venue's `part`; with guests, every venue's by name, under "venues"
        (what `actors.venuesim.control.venue_part` takes apart)."""
        if len(self.venues) == 1:
            return part(self.venues[self.venue_name])
        return {"venues": {name: part(v) for name, v in self.venues.items()}}
