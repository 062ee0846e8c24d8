"""One simulated venue inside a simulator process (`actors.venuesim.actor`): its book and
engine log, FIX session store, message log, faults and acceptor, all on the process's loop.

A process runs its own venue and the venues whose `sim.runs_in` names it
(`protocol.sim_config`); each keeps its own state directory, port file and port, so a
connector cannot tell the difference.

Crash point (`actors.runtime.crashpoints`, tests only): `engine_written_before_reports` of
the process's actor, passed when the engine has written an operation with execution
reports (an order taken, a fill) and none of them has reached the FIX session yet, nor the
request's MsgSeqNum the session store: the venue's crash between its log and its answer.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

from actors.connector.fix.msglog import MessageLog
from actors.connector.fix.store import FixStore
from actors.runtime.actor import Actor
from actors.runtime.durable import write_atomic
from actors.venuesim import busts, fixmap
from actors.venuesim.acceptor import SimAcceptor
from actors.venuesim.engine import Venue
from actors.venuesim.faults import FaultError, Faults
from actors.venuesim.model import ExecEvent
from actors.venuesim.store import SimStore
from protocol.commands import VenueFault
from protocol.config import SimCfg
from protocol.messages import ControlReply
from protocol.paths import (
    read_sim_port,
    sim_port_file,
    venue_fix_dir,
    venue_message_log_dir,
    venue_state_dir,
)
from protocol.tls import server_context

SYNC_INTERVAL_S = 1.0


def sim_tls(sim: SimCfg) -> ssl.SSLContext | None:
    """The venue's TLS server context (`tls_cert_file` ...), None for plain TCP."""
    if not sim.tls_cert_file:
        return None
    return server_context(sim.tls_cert_file, sim.tls_key_file, sim.tls_client_ca_file)


class SimVenue:
    """Venue `name`, listening once built; `turn` once per loop turn, `close` at the end."""

    def __init__(self, actor: Actor, name: str, seed: int) -> None:
        cfg = actor.cfg
        vcfg = cfg.venue(name)
        sim = (vcfg.sim or SimCfg()).model_copy(update={"dialect": vcfg.sim_dialect})
        self.name = name
        self.log = log = actor.log.bind(venue=name)
        self.store = SimStore.open(venue_state_dir(cfg.state_path, name))
        self.venue = Venue(name, sim, self.store, seed)
        self.fix_store = FixStore(venue_fix_dir(cfg.state_path, name), fsync=False)
        self.faults = Faults()
        self._dirty = False
        self._crash_point = actor.crash_point
        log_dir = venue_message_log_dir(cfg.state_path, name)
        self.message_log = MessageLog.for_venue(log_dir, vcfg.message_log, log)
        self.acceptor = SimAcceptor(
            venue=self.venue,
            store=self.fix_store,
            sender_comp_id=vcfg.target,
            client_comp_id=vcfg.sender_comp_id,
            heartbeat_s=vcfg.heartbeat_s,
            faults=self.faults,
            loop=actor,
            log=log,
            on_dirty=self._mark_dirty,
            require_username=sim.require_username,
            tls=sim_tls(sim),
            require_logon_fields=sim.require_logon_fields,
            message_log=self.message_log,
        )
        previous = read_sim_port(cfg.runtime_path, name) if vcfg.port == 0 else None
        port = self.acceptor.listen(vcfg.host, previous or vcfg.port, fallback_any=bool(previous))
        write_atomic(sim_port_file(cfg.runtime_path, name), f"{port}\n".encode(), durable=False)
        for kind, value in sim.faults.items():
            try:
                self.acceptor.apply_fault(kind, value)
            except FaultError as exc:
                log.error("sim_fault_invalid", kind=kind, error=str(exc))
        actor.call_every(sim.liquidity_interval_s, self.acceptor.liquidity_step)
        actor.call_every(SYNC_INTERVAL_S, self._sync)
        log.info(
            "sim_listening", host=vcfg.host, port=port, book_id=self.store.book_id,
            orders=self.venue.open_count, fix_next_in=self.fix_store.next_in,
            fix_next_out=self.fix_store.next_out,
        )  # fmt: skip

    def turn(self) -> None:
        """Once per loop turn of the process (`SimAcceptor.turn`)."""
        self.acceptor.turn()

    def close(self) -> None:
        self.acceptor.close()
        self.store.close()
        self.fix_store.close()
        self.message_log.close()

    def info(self) -> dict[str, Any]:
        """What the process's heartbeat says of this venue."""
        return {**self.acceptor.info(), "faults": self.faults.active(time.monotonic())}

    def apply(self, command: VenueFault) -> ControlReply:
        """The fault `command` at this venue (or a trade's bust or correction,
        `actors.venuesim.busts`); the reply for the operator."""
        kind = command.command
        if kind in busts.KINDS:
            return self._take_back(kind, command.value)
        try:
            parsed = self.acceptor.apply_fault(kind, command.value)
        except FaultError as exc:
            return ControlReply(status="error", reason=str(exc))
        data = {"kind": kind, "value": parsed, "faults": self.faults.active(time.monotonic())}
        return ControlReply(status="ok", reason=f"{kind} applied", data=data)

    def status(self) -> dict[str, Any]:
        """The venue's answer to `status`: its session, faults, book and positions."""
        positions = {
            p.symbol: {"net_qty": str(p.net_qty), "avg_px": str(p.avg_px)}
            for p in self.venue.positions().values()
        }
        return {
            "venue": self.name,
            **self.acceptor.info(),
            "logons": self.acceptor.logons,
            "fix_next_in": self.fix_store.next_in,
            "fix_next_out": self.fix_store.next_out,
            "faults": self.faults.active(time.monotonic()),
            "open_orders": self.venue.open_count,
            "positions": positions,
            "book_id": self.store.book_id,
        }

    def _take_back(self, kind: str, value: str | int | float | bool | None) -> ControlReply:
        """A trade busted or corrected: in the venue's log (fsynced) before its report goes
        out, as every execution."""
        try:
            events = self.venue.operator_record(busts.builder(kind, value), time.time_ns())
        except busts.BustError as exc:
            return ControlReply(status="error", reason=str(exc))
        self.store.sync()
        for ev in events:
            self.acceptor.outbox.push(fixmap.event_out(ev, {}))
        ev = events[0]
        assert isinstance(ev, ExecEvent)
        data = {"kind": kind, "exec_id": ev.exec_id, "exec_ref_id": ev.exec_ref_id,
                "cl_ord_id": ev.cl_ord_id, "ord_status": ev.ord_status.value,
                "cum_qty": str(ev.cum_qty)}  # fmt: skip
        self.log.warning("sim_trade_taken_back", **data)
        return ControlReply(status="ok", reason=f"{kind} {ev.exec_ref_id} applied", data=data)

    def _mark_dirty(self) -> None:
        """The engine wrote an operation whose execution reports go out next."""
        self._dirty = True
        self._crash_point("engine_written_before_reports")

    def _sync(self) -> None:
        if self._dirty:
            self._dirty = False
            self.store.sync()
