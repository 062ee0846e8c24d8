"""The venue's FIX 4.4 acceptor: a loopback TCP listener, one client session at a time.

One `FixSession` (one store) serves the one client CompID. A connection that arrives
while none is open becomes the session's at once. One that arrives while a session is
open is on probation until its first frame: a Logon from our client's CompID to ours
replaces the old connection (a restarted client), anything else is closed and leaves the
live session alone. With `require_username` (`[venues.sim] require_username`), a Logon
without that Username(553) is refused like during the `refuse_logons_s` fault: a Logout
saying why, then the connection closes. So is a Logon without ResetSeqNumFlag(141)=Y when
the venue's dialect has `reset_seq_num = "every_logon"` (it numbers every connection
from 1), one with it under "never" (it takes no reset from clients), and with
`require_logon_fields` one that lacks a field of the dialect's `logon_fields` or carries
another value (the Logout names the tag).

The shell never blocks and never raises on client input: it reads what the socket has,
feeds the session, runs application messages through `fixmap.handle` (engine calls; a
valid FIX 4.4 MsgType it does not take, e.g. QuoteRequest, gets the session's
BusinessMessageReject 380=3, an invalid one a session Reject 373=11),
sends answers at once and execution reports through `ExecOutbox` (faults), writes a read's
answers at its end (before the loop's timers) and once per loop turn (`turn()`: timers,
group commit of the FIX store, socket write, a drop the session asked for). An
answer of one message per order (AF, q) is pumped, 256 parts a turn, and what is sent
meanwhile queues behind it (`pump`); it reads at most 64 KiB of requests a turn.
With `tls` (an `ssl.SSLContext`, `[venues.sim] tls_*`) every accepted connection first
completes a TLS handshake (`tlsgate`, nonblocking, with a deadline), then goes on as above.
Reports produced while no session is logged on (liquidity fills, a hang) wait in a
backlog and go out, in order, after the next Logon; a Logon with ResetSeqNumFlag=Y (the
client starts from nothing) discards them.

Durability: the engine writes each operation before it returns its events and the FIX
store writes before bytes reach the wire, both through the page cache (a `kill -9` loses
nothing); fsyncs are batched by the actor (`sync()`), since power loss of the host is
not a scenario for a simulated venue. A report still held by a fault or the backlog
when the process dies is never sent: the client finds it through status requests.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Any

import zmq

from actors.connector.fix import codec as fc
from actors.connector.fix.events import AppMessage, Disconnect, LoggedOn, LoggedOut, SessionEvent
from actors.connector.fix.msglog import MessageLog
from actors.connector.fix.store import FixStore
from actors.venuesim import fixmap
from actors.venuesim.engine import Venue
from actors.venuesim.faults import Faults, Value
from actors.venuesim.fixmap import Out
from actors.venuesim.logon_policy import LogonPolicy, is_refusal
from actors.venuesim.loop import Loop
from actors.venuesim.outbox import ExecOutbox
from actors.venuesim.probation import Probation
from actors.venuesim.pump import AnswerPump
from actors.venuesim.tlsgate import WOULD_BLOCK, TlsGate, pending_bytes
from actors.venuesim.venue_session import VenueSession

_READ_BYTES = 1 << 16
_MAX_READS_PER_CALL = 1  # 64 KiB of requests per loop turn (~430 H, ~60 ms of work)
_MAX_BACKLOG = 100_000
_MAX_UNSENT_BYTES = 64 << 20
_PUMP_UNSENT_BYTES = 1 << 20  # a long answer waits while this much is not written yet


class SimAcceptor:
    def __init__(
        self,
        *,
        venue: Venue,
        store: FixStore,
        sender_comp_id: str,
        client_comp_id: str,
        heartbeat_s: int,
        faults: Faults,
        loop: Loop,
        log: Any,
        on_dirty: Callable[[], None] = lambda: None,
        require_username: str = "",
        tls: ssl.SSLContext | None = None,
        require_logon_fields: bool = False,
        message_log: MessageLog | None = None,
    ) -> None:
        self.venue = venue
        self.faults = faults
        self._logon_policy = LogonPolicy(
            venue.dialect, faults, require_username, require_logon_fields
        )
        self._loop = loop
        self._log = log
        # a debug line costs its fields even when the level drops it: asked once (structlog)
        self._debug = not hasattr(log, "is_enabled_for") or log.is_enabled_for(logging.DEBUG)
        self._on_dirty = on_dirty
        self.session = VenueSession(
            sender_comp_id=sender_comp_id,
            target_comp_id=client_comp_id,
            store=store,
            initiator=False,
            heartbeat_s=heartbeat_s,
            log=log,
            accept_logon=self._logon_policy.check,
            informational_msg_types=frozenset(),  # a venue takes no News: 35=j 380=3
            message_log=message_log,
        )
        self.outbox = ExecOutbox(faults, self._send_app, loop.call_later, time.monotonic, log)
        self.port = 0
        self.logons = 0
        self.received: Counter[str] = Counter()  # application messages by MsgType
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._wbuf = bytearray()
        self._want_write = False
        self._drop_after_write = ""
        self._probation = Probation(loop, log, client_comp_id, sender_comp_id, self._adopt)
        self._backlog: deque[Out] = deque()
        self._pump = AnswerPump()  # long answers, and what is sent behind them
        self._hung = False
        self._tls = TlsGate(tls, loop, log, self._take) if tls is not None else None

    # ------------------------------------------------------------------ lifecycle

    def listen(self, host: str, port: int, fallback_any: bool = False) -> int:
        """Bind and listen; with `fallback_any`, a taken `port` falls back to a free one."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            if not fallback_any or port == 0:
                sock.close()
                raise
            sock.bind((host, 0))
        sock.listen(16)
        sock.setblocking(False)
        self._listener = sock
        self.port = sock.getsockname()[1]
        self._loop.add_fd(sock.fileno(), self._on_accept)
        return self.port

    def close(self, text: str = "venue shutting down") -> None:
        """Log out (best effort), close every socket."""
        if self._conn is not None and self.session.state == "active":
            self.session.logout(text)
            self._write(self.session.data_to_send())
        self._drop("venue closing", log=False)
        self._probation.close()
        if self._tls is not None:
            self._tls.close()
        if self._listener is not None:
            self._loop.remove(self._listener.fileno())
            self._listener.close()
            self._listener = None

    def info(self) -> dict[str, Any]:
        return {
            "port": self.port,
            "session": self.session.state,
            "connected": self._conn is not None,
            "held_reports": self.outbox.pending + len(self._backlog),
            "pumping": len(self._pump),
            "received": dict(self.received),
        }

    # ------------------------------------------------------------------ driven by the actor

    def turn(self) -> None:
        """Once per loop turn: session timers, group commit, write, probation timeouts."""
        if self._hung:
            return
        if self._conn is not None:
            self._on_events(self.session.tick())
        if self._pump.busy and len(self._wbuf) < _PUMP_UNSENT_BYTES and self._pump.run():
            self._loop.call_later(0, _next_turn)  # more to pump: no sleeping in the poll
        self._flush()
        self._probation.expire()
        if self._tls is not None:
            self._tls.expire()

    def liquidity_step(self) -> None:
        events = self.venue.liquidity_step(time.time_ns())
        if events:
            self._on_dirty()
        for ev in events:
            self.outbox.push(fixmap.event_out(ev, {}))

    def apply_fault(self, kind: str, value: Value) -> float | int | bool | None:
        """Set a fault (FaultError if invalid) and act on it now where it acts at once."""
        now = time.monotonic()
        parsed = self.faults.apply(kind, value, now)
        self._log.warning("sim_fault", kind=kind, value=parsed)
        if kind == "drop_session":
            self._drop("fault injection: drop_session")
        elif kind == "hang" and self.faults.hung(now):
            self._hang(self.faults.hang_until_s - now)
        elif kind in ("hang", "clear"):
            self._unhang()
        if kind == "clear":
            self.outbox.release_all()
        return parsed

    # ------------------------------------------------------------------ sockets

    def _on_accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: try again next turn
                self._log.warning("sim_accept_failed", error=str(exc))
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._log.info("sim_connection", peer=f"{addr[0]}:{addr[1]}")
            if self._tls is not None:
                self._tls.add(sock, f"{addr[0]}:{addr[1]}")
            else:
                self._take(sock)

    def _take(self, sock: socket.socket) -> None:
        if self._conn is None:
            self._adopt(sock, b"")
        else:
            self._probation.add(sock)

    def _adopt(self, sock: socket.socket, data: bytes) -> None:
        if self._conn is not None:
            self._drop("replaced by a new connection")
        self._conn = sock
        self._wbuf.clear()
        self._want_write = False
        self._drop_after_write = ""
        self.session.connection_made()
        self._loop.add_fd(sock.fileno(), self._on_conn_ready)
        if data:
            self._on_events(self.session.receive(data))
        if pending_bytes(sock):  # TLS: already decrypted, the poller will not tell
            self._loop.call_later(0, self._on_conn_ready)

    def _on_conn_ready(self) -> None:
        """Readable or writable: write what is pending, read what there is."""
        if self._want_write:
            self._write(b"")
        sock = self._conn
        for _ in range(_MAX_READS_PER_CALL):  # then let the loop breathe (timers, heartbeat)
            if sock is None or sock is not self._conn or self._hung:
                return
            try:
                data = sock.recv(_READ_BYTES)
            except WOULD_BLOCK:
                return
            except OSError as exc:
                self._drop(f"read failed: {exc}")
                return
            if not data:
                self._drop("client closed the connection")
                return
            self._on_events(self.session.receive(data))
        if sock is not None and sock is self._conn:
            self._write(self.session.data_to_send(flush_log=False))  # the answers, at once
            self.session.flush_log()
            if pending_bytes(sock):  # TLS: unseen bytes
                self._loop.call_later(0, self._on_conn_ready)

    def _write(self, data: bytes) -> None:
        self._wbuf += data
        sock = self._conn
        if sock is None:
            self._wbuf.clear()
            return
        while self._wbuf:
            try:
                sent = sock.send(self._wbuf)
            except WOULD_BLOCK:  # TLS SSLWantRead: POLLIN is always wanted
                break
            except OSError as exc:
                if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
                    self._log.warning("sim_write_failed", error=str(exc))
                self._drop("write failed")
                return
            del self._wbuf[:sent]
        if len(self._wbuf) > _MAX_UNSENT_BYTES:
            self._drop("client is not reading")
            return
        want = bool(self._wbuf)
        if want != self._want_write and not self._hung:
            self._want_write = want
            self._loop.modify_fd(sock.fileno(), zmq.POLLIN | (zmq.POLLOUT if want else 0))

    def _flush(self) -> None:
        data = self.session.data_to_send(flush_log=False)
        if self._conn is None:
            self._drop_after_write = ""
            self.session.flush_log()
            return
        self._write(data)
        self.session.flush_log()  # after the answer is on the wire: a record, no promise
        if self._drop_after_write and self._conn is not None:
            self._drop(self._drop_after_write)

    def _drop(self, reason: str, *, log: bool = True) -> None:
        """Close the client connection (no Logout) and tell the session."""
        self._drop_after_write = ""
        sock, self._conn = self._conn, None
        if sock is None:
            return
        if log:
            self._log.info("sim_disconnect", reason=reason)
        if not self._hung:
            self._loop.remove(sock.fileno())
        sock.close()
        self._wbuf.clear()
        self._want_write = False
        self.session.connection_lost()
        if dropped := self._pump.drop_answers():
            self._log.info("sim_answers_dropped", answers=dropped)

    # ------------------------------------------------------------------ hang

    def _hang(self, duration_s: float) -> None:
        if not self._hung:
            self._hung = True
            if self._conn is not None:
                self._loop.remove(self._conn.fileno())
            if self._listener is not None:
                self._loop.remove(self._listener.fileno())
            self._probation.pause()
            if self._tls is not None:
                self._tls.pause()
        self._loop.call_later(duration_s, self._hang_timer)

    def _hang_timer(self) -> None:
        if self._hung and not self.faults.hung(time.monotonic()):
            self._unhang()

    def _unhang(self) -> None:
        if not self._hung:
            return
        self._hung = False
        self._log.info("sim_hang_over")
        if self._listener is not None:
            self._loop.add_fd(self._listener.fileno(), self._on_accept)
        self._probation.resume()
        if self._tls is not None:
            self._tls.resume()
        if self._conn is not None:
            self._want_write = bool(self._wbuf)
            events = zmq.POLLIN | (zmq.POLLOUT if self._want_write else 0)
            self._loop.add_fd(self._conn.fileno(), self._on_conn_ready, events)
        self._send_backlog()

    # ------------------------------------------------------------------ session events

    def _on_events(self, events: list[SessionEvent]) -> None:
        for ev in events:
            if isinstance(ev, AppMessage):
                self._on_app(ev)
            elif isinstance(ev, LoggedOn):
                self.logons += 1
                self._log.info("sim_logon", reset=ev.reset, heartbeat_s=self.session.heartbeat_s)
                if ev.reset and self._backlog:
                    # a reset is a client starting from nothing: the reports of its previous
                    # life would be fills of orders it no longer knows (status tells it)
                    self._log.warning("sim_backlog_discarded", reports=len(self._backlog))
                    self._backlog.clear()
                self._send_backlog()
            elif isinstance(ev, LoggedOut):
                self._log.info("sim_logout", text=ev.text)
            elif isinstance(ev, Disconnect):
                self._drop_after_write = self._drop_after_write or ev.reason
                if is_refusal(ev.reason):
                    self._log.info("sim_logon_refused", reason=ev.reason)

    def _on_app(self, ev: AppMessage) -> None:
        self.received[ev.msg_type] += 1
        try:
            now, reject = time.time_ns(), self.faults.take_reject
            outs = fixmap.answer(
                self.venue, ev.msg_type, ev.msg, ev.seq, now, reject, poss_dup=ev.poss_dup
            )
        except Exception as exc:  # noqa: BLE001 - one bad request must not kill the venue
            self._log.exception("sim_request_failed", msg_type=ev.msg_type, seq=ev.seq)
            text = f"internal error: {type(exc).__name__}"
            outs = [fixmap.business_reject(ev.seq, ev.msg_type, fixmap.BR_OTHER, text)]
        if self._debug:
            self._log.debug(
                "sim_order", msg_type=ev.msg_type, seq=ev.seq, cl_ord_id=fc.get_str(ev.msg, 11),
                poss_dup=ev.poss_dup, answers=[o.msg_type for o in outs]
                if isinstance(outs, list) else "stream",
            )  # fmt: skip
        if isinstance(outs, fixmap.Stream):  # one part per order: pumped across loop turns
            self._pump.stream(outs.parts, self._route, answers_only=outs.answers_only)
            return
        for out in outs:
            self._route(out)  # an execution report marks the engine's log dirty there

    def _route(self, out: Out) -> None:
        if out.exec_type:
            self._on_dirty()  # a pumped mass cancel's engine work is done as it is read
            self.outbox.push(out)
        else:
            self._send_app(out)

    def _can_send(self) -> bool:
        return not self._hung and not self._drop_after_write and self.session.state == "active"

    def _send_app(self, out: Out) -> None:
        """Answers go out now or never (no session: nobody asked); execution reports
        keep their order through the backlog until a session can take them. Behind a
        long answer being pumped, both wait their turn."""
        if self._pump.busy and not self._pump.delivering:
            self._pump.put(out, self._send_app)
            return
        if not out.exec_type:
            if self._can_send():
                self._sequence(out)
            return
        if not self._backlog and self._can_send():
            self._sequence(out)  # nothing waits before it: what `_send_backlog` would do
        elif len(self._backlog) >= _MAX_BACKLOG:
            self._log.error("sim_backlog_full", dropped=out.exec_id)
        else:
            self._backlog.append(out)
            self._send_backlog()

    def _send_backlog(self) -> None:
        while self._backlog and self._can_send():
            self._sequence(self._backlog.popleft())

    def _sequence(self, out: Out) -> None:
        if out.msg_type == fixmap.SESSION_REJECT:
            self.session.reject(out)
        else:
            self.session.send(out.msg_type, out.fields)
        if self.faults.count_sent():
            self._drop_after_write = "fault injection: disconnect_after"


def _next_turn() -> None:
    """A timer due at once: the loop polls without waiting (a long answer is pumped)."""
