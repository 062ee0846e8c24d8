"""The simulated venue process: the matching engine behind a FIX 4.4 acceptor.

Spawned by the supervisor as ``venuesim.<venue>`` for every venue with a ``[venues.sim]``
table, or alone with ``python -m actors.venuesim run``. It is the outside world: its
state lives in ``<state_dir>/venues/<venue>/`` (the engine's log, and ``fix/`` for the
FIX session store), which our cold start never touches, and it survives its own
``kill -9``.

Port: `VenueCfg.port`, or with 0 the port of the previous incarnation (if still free)
or any free one; written atomically to ``<runtime_dir>/venuesim.<venue>.port`` before
READY, so the connector (which starts after us) finds it.

Control: the actor's ROUTER answers `ControlRequest`s directly (``python -m
actors.venuesim control``), and `on_control` takes the same commands if the supervisor
forwards them: ``status``, or a fault (`protocol.commands.VenueFault`: the kind, see
`faults`, with its value).
"""

from __future__ import annotations

import ssl
import time
import zlib
from collections.abc import Callable
from typing import Any

from actors.connector.fix.msglog import MessageLog
from actors.connector.fix.store import FixStore
from actors.runtime.actor import Actor
from actors.runtime.durable import write_atomic
from actors.runtime.peer import Replier
from actors.venuesim.acceptor import SimAcceptor
from actors.venuesim.engine import Venue
from actors.venuesim.faults import FAULT_KINDS, FaultError, Faults
from actors.venuesim.store import SimStore
from protocol.codec import Envelope
from protocol.commands import Command, Status, VenueFault
from protocol.config import SimCfg, SystemConfig
from protocol.messages import ControlReply, ControlRequest, ErrorCode, Message
from protocol.paths import sim_port_file, venue_fix_dir, venue_message_log_dir, venue_state_dir
from protocol.tls import server_context

SYNC_INTERVAL_S = 1.0


def sim_tls(sim: SimCfg) -> ssl.SSLContext | None:
    """The venue's TLS server context (`tls_cert_file` ...), None for plain TCP."""
    if not sim.tls_cert_file:
        return None
    return server_context(sim.tls_cert_file, sim.tls_key_file, sim.tls_client_ca_file)


def read_port(cfg: SystemConfig, venue: str) -> int | None:
    """The port the previous incarnation published, None if none (or unreadable)."""
    try:
        return int(sim_port_file(cfg.runtime_path, venue).read_text().strip())
    except (OSError, ValueError):
        return None


class VenueSimActor(Actor):
    kind = "venuesim"
    trims_heap = True
    # the outside world, not part of the system: its control socket serves the operator's
    # and the chaos tools' fault commands (python -m actors.venuesim control), no orders
    guarded = False

    def setup(self) -> None:
        name = self.args.venue or self.actor_id.partition(".")[2]
        vcfg = self.cfg.venue(name)
        sim = (vcfg.sim or SimCfg()).model_copy(update={"dialect": vcfg.sim_dialect})
        self.venue_name = name
        self.store = SimStore.open(venue_state_dir(self.cfg.state_path, name))
        seed = int(self.args.extra.get("seed", zlib.crc32(name.encode())))
        self.venue = Venue(name, sim, self.store, seed)
        self.fix_store = FixStore(venue_fix_dir(self.cfg.state_path, name), fsync=False)
        self.faults = Faults()
        self._dirty = False
        log_dir = venue_message_log_dir(self.cfg.state_path, name)
        self.message_log = MessageLog.for_venue(log_dir, vcfg.message_log, self.log)
        self.acceptor = SimAcceptor(
            venue=self.venue,
            store=self.fix_store,
            sender_comp_id=vcfg.target,
            client_comp_id=vcfg.sender_comp_id,
            heartbeat_s=vcfg.heartbeat_s,
            faults=self.faults,
            loop=self,
            log=self.log,
            on_dirty=self._mark_dirty,
            require_username=sim.require_username,
            tls=sim_tls(sim),
            require_logon_fields=sim.require_logon_fields,
            message_log=self.message_log,
        )
        previous = read_port(self.cfg, name) if vcfg.port == 0 else None
        port = self.acceptor.listen(vcfg.host, previous or vcfg.port, fallback_any=bool(previous))
        port_file = sim_port_file(self.cfg.runtime_path, name)
        write_atomic(port_file, f"{port}\n".encode(), durable=False)
        for kind, value in sim.faults.items():
            try:
                self.acceptor.apply_fault(kind, value)
            except FaultError as exc:
                self.log.error("sim_fault_invalid", kind=kind, error=str(exc))
        self.call_every(sim.liquidity_interval_s, self.acceptor.liquidity_step)
        self.call_every(SYNC_INTERVAL_S, self._sync)
        self.log.info(
            "sim_listening", host=vcfg.host, port=port, book_id=self.store.book_id,
            orders=self.venue.open_count, fix_next_in=self.fix_store.next_in,
            fix_next_out=self.fix_store.next_out,
        )  # fmt: skip

    # ------------------------------------------------------------------ loop hooks

    def after_iteration(self) -> None:
        self.acceptor.turn()

    def on_stop(self) -> None:
        self.acceptor.close()
        self.store.close()
        self.fix_store.close()
        self.message_log.close()

    def send_supervisor(self, body: Message, corr_id: str = "") -> None:
        if not self.args.extra.get("standalone"):  # alone, nobody would ever read them
            super().send_supervisor(body, corr_id)

    def heartbeat_info(self) -> dict[str, Any]:
        return {**self.acceptor.info(), "faults": self.faults.active(time.monotonic())}

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
        kind = command.command
        try:
            parsed = self.acceptor.apply_fault(kind, command.value)
        except FaultError as exc:
            respond(ControlReply(status="error", reason=str(exc)))
            return
        data = {"kind": kind, "value": parsed, "faults": self.faults.active(time.monotonic())}
        respond(ControlReply(status="ok", reason=f"{kind} applied", data=data))

    def status(self) -> dict[str, Any]:
        positions = {
            p.symbol: {"net_qty": str(p.net_qty), "avg_px": str(p.avg_px)}
            for p in self.venue.positions().values()
        }
        return {
            "venue": self.venue_name,
            **self.acceptor.info(),
            "logons": self.acceptor.logons,
            "fix_next_in": self.fix_store.next_in,
            "fix_next_out": self.fix_store.next_out,
            "faults": self.faults.active(time.monotonic()),
            "open_orders": self.venue.open_count,
            "positions": positions,
            "book_id": self.store.book_id,
        }

    # ------------------------------------------------------------------ durability

    def _mark_dirty(self) -> None:
        self._dirty = True

    def _sync(self) -> None:
        if self._dirty:
            self._dirty = False
            self.store.sync()
