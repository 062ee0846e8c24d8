"""FIX 4.4 session layer, sans-I/O: the same class is our initiator and the simulator's acceptor.

The session owns no socket and no timer. The caller feeds it and drains it::

    session = FixSession(sender_comp_id="US", target_comp_id="VENUE", store=FixStore(dir),
                         initiator=True, heartbeat_s=30)
    session.logon(reset=cold_start, extra=[(553, user), (554, password)])  # initiator only
    each loop turn (a poller woken by the socket fd, timeout ~100 ms):
        events = session.receive(bytes_read)     # any chunking; drain the socket first
        events += session.tick()                 # heartbeats, TestRequest, timeouts
        ... handle events; session.send("D", fields) for orders ...
        pending += session.data_to_send()        # once per turn: one fsync for the batch
        write what the socket takes of `pending`; poll for POLLOUT while some is left
        on Disconnect: write `pending` (best effort), close, session.connection_lost()

Events come only out of `receive()` and `tick()` (a `logout()` before logon completes
shows its `Disconnect` at the next call).

An acceptor calls `connection_made()` when a client connects (it starts the logon
timeout) and waits for the client's Logon; ``accept_logon(msg)`` may refuse it by
returning a text, which goes back in the Logout.

States: ``disconnected`` (no session; initial, and after `connection_lost()`),
``logon_sent``, ``active``, ``logout_sent``, ``closed`` (a `Disconnect` was emitted; input
is ignored until `connection_lost()`). `send()` works only when ``active``.

Inbound rules. A frame that cannot be cut out of the stream is skipped up to the next
``8=FIX`` (see fix codec); more than ``max_junk_bytes`` of such bytes disconnects. Garbled
frames (ignored, number not consumed) and bad headers: see fix inbound. A well-formed
message with a missing required field, a MsgType FIX 4.4 does not define or a bad
SendingTime gets a session Reject and its number is consumed, as FIX prescribes (each
Reject we send counted in ``tradepulse_fix_rejects_sent_total``, its log line within a
budget of 10 a second). A valid FIX 4.4 application MsgType outside `app_msg_types` is
consumed too: one of `informational_msg_types` (News, TradingSessionStatus) is logged, any
other gets a BusinessMessageReject (35=j, BusinessRejectReason 380=3 Unsupported Message
Type). A MsgSeqNum lower than expected without PossDupFlag ends the session: Logout with a
text, then `Disconnect`. A GapFill whose NewSeqNo skips more than `MAX_GAP_FILL_JUMP`
numbers past its own, to no message seen there, is rejected (373=5, 371=36), only its own
number consumed (see fix inbound, docs/fix-venues.md); a jump the venue really made is
taken once its messages come. A PossDup message already seen is dropped. A number higher
than expected queues the message and sends one ResendRequest(BeginSeqNo=expected,
EndSeqNo=0); queued messages are delivered in order once the gap is filled. If next-in
stands still for a HeartBtInt while a gap is open (the resent message came garbled again),
the ResendRequest goes out again; after `MAX_RESEND_REREQUESTS` such requests without
progress the session ends (Logout, `Disconnect`): the next logon recovers it. A Logon 141=Y
at 1 while logged on resets both numbers (ours answers; held messages delivered first). A
ResendRequest is answered with the kept application messages (PossDupFlag=Y,
OrigSendingTime) and SequenceReset-GapFill for admin messages, for NewOrderSingles sent
before this connection or more than two HeartBtInt ago (the OMS decides whether an order
the venue never read still goes; each counted in ``tradepulse_fix_orders_not_resent_total``)
and for messages older than the store keeps (see fix transmit, which also bounds a flood
of ResendRequests).

Durability: see fix store. Outbound messages reach the store before `data_to_send()`
returns their bytes. Next-in is written at `data_to_send()` too, so it is durable only
after the caller handled the events of the previous `receive()`: after a crash a few
messages may come again (as PossDup resends); the application dedupes them (ExecID).
Clocks: `clock` is wall time, used only for SendingTime / OrigSendingTime and the
SendingTime accuracy check; every interval (heartbeat, TestRequest, logon / logout
timeouts, resend re-requests) runs on `monotonic`, so a wall-clock step never delays
(or fakes) the detection of a dead peer.

Secrets (Password 554) are never logged: the session logs no field values, except the
key fields of an informational message (a News headline, a trading session status).

Message log (optional, `set_message_log`; see fix msglog): every frame cut from the
stream (garbled ones marked) and every message encoded, credentials redacted, written at
`data_to_send()`, or at `flush_log()` after the bytes went out (`flush_log=False`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import simplefix
import structlog

from actors.connector.fix import codec as fc
from actors.connector.fix.events import (
    AppMessage,
    Disconnect,
    LoggedOn,
    LoggedOut,
    Logger,
    SessionEvent,
    SessionRejectReceived,
    SessionRejectSent,
    State,
)
from actors.connector.fix.inbound import (
    INFORMATIONAL_MSG_TYPES,
    BadHeader,
    Garbled,
    GarbledLog,
    Inbound,
    drain_behind_gap,
    gap_fill_refusal,
    log_informational,
    peer_text,
    read_frame,
)
from actors.connector.fix.msglog import BAD_HEADER, GARBLED_PREFIX, IN, NORMAL, MessageLog
from actors.connector.fix.store import MAX_SEQ, FixStore
from actors.connector.fix.transmit import ResendSkips, Transmitter, app_body, text_value
from actors.runtime import metrics
from actors.runtime.ratelog import LogBudget
from protocol.exceptions import VenueError

MAX_RESEND_REREQUESTS = 3  # ResendRequests repeated for a gap that does not move
# a State, not a literal: `receive` checks it again after each frame (a frame may close the
# session), where a literal would be narrowed away by the check before the loop
_CLOSED: State = "closed"


class FixSession:
    def __init__(
        self,
        *,
        sender_comp_id: str,
        target_comp_id: str,
        store: FixStore,
        initiator: bool,
        heartbeat_s: int = 30,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        log: Logger | None = None,
        accept_logon: Callable[[simplefix.FixMessage], str | None] | None = None,
        app_msg_types: frozenset[str] = fc.APP_MSG_TYPES,
        informational_msg_types: frozenset[str] = INFORMATIONAL_MSG_TYPES,
        grace_s: float | None = None,
        logon_timeout_s: float = 10.0,
        logout_timeout_s: float = 5.0,
        max_clock_skew_s: float | None = 120.0,
        max_junk_bytes: int = 64 << 10,
        max_queued: int = 100_000,
        message_log: MessageLog | None = None,
    ) -> None:
        self.sender_comp_id = sender_comp_id
        self.target_comp_id = target_comp_id
        self.initiator = initiator
        self.heartbeat_s = heartbeat_s
        self.state: State = "disconnected"
        self._store = store
        self._clock = clock  # wall time: SendingTime and its accuracy check only
        self._mono = monotonic  # every interval: heartbeats, TestRequest, timeouts
        self._log: Logger = log if log is not None else structlog.get_logger("fix_session")
        self._accept_logon = accept_logon
        if not app_msg_types | informational_msg_types <= fc.FIX44_MSG_TYPES:
            raise ValueError("app_msg_types and informational_msg_types must be FIX 4.4 types")
        self._app_types = app_msg_types - fc.ADMIN_MSG_TYPES
        self._info_types = informational_msg_types - self._app_types - fc.ADMIN_MSG_TYPES
        self._grace_s = grace_s
        self._logon_timeout_s = logon_timeout_s
        self._logout_timeout_s = logout_timeout_s
        self._max_skew_s = max_clock_skew_s
        self._max_junk_bytes = max_junk_bytes
        self._max_queued = max_queued
        self._sender_b = sender_comp_id.encode()
        self._target_b = target_comp_id.encode()
        self._tx = Transmitter(store, clock, monotonic, sender_comp_id, target_comp_id)
        self._tx.order_resend_age_s = 2.0 * heartbeat_s
        self._msg_log: MessageLog | None = None
        self.flush_log: Callable[[], None] = _no_log  # see data_to_send
        self.set_message_log(message_log)
        self._reader = fc.FrameReader()
        self._garbled = GarbledLog(self._log, monotonic, target_comp_id)
        self._resend_skips = ResendSkips(self._log, monotonic, target_comp_id)
        self._orders_not_resent = metrics.FIX_ORDERS_NOT_RESENT.labels(peer=target_comp_id)
        self._reject_log = LogBudget(clock=monotonic)  # Rejects we send: 10 lines a second
        self._beyond_log = LogBudget(burst=1, clock=monotonic)  # resends asked past our last
        self._events: list[SessionEvent] = []
        self._queue: dict[int, tuple[Inbound, bool]] = {}  # seq -> (message, already handled)
        self._resend_until = 0  # a ResendRequest is out until next_in passes this seq
        self._gap_from = 0  # next_in when the last ResendRequest went out or it last moved
        self._gap_since_s = 0.0
        self._rerequests = 0
        self._reset_sent = False
        self._logon_extra: Sequence[tuple[int, fc.Value]] = ()  # our Logon's, for a reset's
        self._since_s: float | None = None  # entered the current state / connected
        self._last_recv_s = 0.0
        self._test_req_id: str | None = None
        self._test_req_sent_s = 0.0

    # -- caller API ----------------------------------------------------------------------

    def connection_made(self) -> None:
        """A transport is up (acceptor: starts the logon timeout)."""
        self._reader.clear()
        self._since_s = self._mono()
        self._tx.new_connection()

    def logon(self, *, reset: bool = False, extra: Sequence[tuple[int, fc.Value]] = ()) -> None:
        """Initiator: queue our Logon; `reset` sends ResetSeqNumFlag=Y and clears the store."""
        if not self.initiator or self.state != "disconnected":
            raise VenueError(f"cannot log on in state {self.state}", retryable=False)
        self.connection_made()
        if reset:
            self._store.reset()
        self._reset_sent, self._logon_extra = reset, extra
        self._emit("A", fc.logon_body(self.heartbeat_s, reset, extra))
        self._enter("logon_sent")
        self._log.info("fix_logon_sent", reset=reset, seq=self._store.next_out - 1)

    def send(self, msg_type: str, fields: Sequence[tuple[int, fc.Value]] | fc.Written) -> int:
        """Queue an application message; returns its MsgSeqNum. Only when ``active``."""
        if self.state != "active":
            raise VenueError(f"FIX session not active ({self.state})", retryable=True)
        if msg_type in fc.ADMIN_MSG_TYPES:
            raise ValueError(f"admin MsgType {msg_type} is the session's business")
        return self._tx.emit(msg_type, app_body(fields), keep=True)

    @property
    def store(self) -> FixStore:
        return self._store

    def set_message_log(self, message_log: MessageLog | None) -> None:
        """Log every message in and out from now on (see fix msglog); None: stop."""
        self._tx.message_log = self._msg_log = message_log
        # `flush_log()` is the log's own flush (one call a turn), or nothing without a log
        self.flush_log = _no_log if message_log is None else message_log.flush

    @property
    def resent_through(self) -> int:
        """The highest of our sequence numbers sent again (PossDup) on the peer's request."""
        return self._tx.resent_through

    @property
    def resends(self) -> int:
        """Messages sent again (PossDup or gap fill) on the peer's request, ever."""
        return self._tx.resends

    def data_to_send(self, *, flush_log: bool = True) -> bytes:
        """Sync the store (group commit), then hand out every queued outbound byte.
        `flush_log` False: the message log's records are written at `flush_log()`, which
        the caller calls once the bytes are on the wire (the log is a record, no promise)."""
        return self._tx.take(flush_log=flush_log)

    def receive(self, data: bytes) -> list[SessionEvent]:
        """Feed bytes from the wire; never raises on any input."""
        if self.state != "closed":
            self._reader.feed(data)
            try:
                while self.state != _CLOSED and (frame := self._reader.next_frame()) is not None:
                    self._on_frame(frame)
                if self.state != _CLOSED and self._reader.junk_bytes > self._max_junk_bytes:
                    self._disconnect("garbage on the wire")
            except Exception as exc:  # noqa: BLE001 - a session bug must not kill the actor
                self._log.error("fix_session_internal_error", error=repr(exc))
                self._disconnect(f"internal error: {exc!r}")
        return self._take_events()

    def tick(self) -> list[SessionEvent]:
        """Timers: heartbeat, TestRequest, silent-peer disconnect, logon/logout timeouts."""
        now = self._mono()
        hb = self.heartbeat_s
        if self.state == "active" and hb > 0:
            grace = self._grace_s if self._grace_s is not None else 0.2 * hb
            if self._test_req_id is not None:
                if now - self._test_req_sent_s >= hb + grace:
                    self._fatal("no answer to TestRequest", logout=False)
            elif now - self._last_recv_s >= hb + grace:
                self._test_req_id = f"TEST-{int(now * 1000)}"
                self._test_req_sent_s = now
                self._emit("1", [(112, self._test_req_id.encode())])
                self._log.info("fix_test_request_sent", silent_s=round(now - self._last_recv_s, 3))
            if self.state == "active" and self._resend_until:
                self._check_gap(now, hb)
            if self.state == "active" and now - self._tx.last_sent_s >= hb:
                self._emit("0", [])
        elif self._since_s is not None:
            waited_s = now - self._since_s
            if self.state == "logon_sent" and waited_s >= self._logon_timeout_s:
                self._disconnect("logon timeout")
            elif self.state == "logout_sent" and waited_s >= self._logout_timeout_s:
                self._disconnect("logout timeout")
            elif self.state == "disconnected" and waited_s >= self._logon_timeout_s:
                self._disconnect("no Logon received")
        return self._take_events()

    def logout(self, text: str = "") -> None:
        """Start a graceful logout (``active``), or give up a logon in progress."""
        if self.state == "active":
            self._emit("5", [(58, text_value(text))] if text else [])
            self._enter("logout_sent")
        elif self.state == "logon_sent":
            self._disconnect("logout before logon completed")

    def connection_lost(self) -> None:
        """The transport is gone: forget the connection, keep the store."""
        self.state = "disconnected"
        self._reader.clear()
        self._tx.clear()
        self._queue.clear()
        self._resend_until = 0
        self._test_req_id = None
        self._since_s = None
        self._store.sync()
        if self._msg_log is not None:
            self._msg_log.flush()

    # -- inbound -------------------------------------------------------------------------

    def _on_frame(self, frame: fc.Frame) -> None:
        item = read_frame(frame, ours=self._sender_b, theirs=self._target_b)
        if self._msg_log is not None:
            self._msg_log.record(IN, frame.raw, NORMAL if type(item) is Inbound else _mark(item))
        if isinstance(item, Garbled):
            self._on_garbled(item)
            return
        self._last_recv_s = self._mono()  # a garbled frame is no sign of life
        self._test_req_id = None
        if isinstance(item, BadHeader):
            if self.state == "active" and item.comp_id_seq is not None:
                self._reject(item.comp_id_seq, item.hdr, fc.REASON_COMP_ID, item.text)
            self._fatal(item.text)
        elif self.state in ("disconnected", "logon_sent"):
            self._on_first_message(item)
        elif item.msg_type == "A" and item.hdr.get(b"141") == b"Y" and not item.poss_dup:
            self._on_reset_logon(item)  # (a resent copy is a duplicate: sequenced, dropped)
        elif item.msg_type == "4" and item.hdr.get(b"123") != b"Y":
            self._on_sequence_reset(item)
        else:
            self._sequence(item)

    def _on_garbled(self, garbled: Garbled) -> None:
        """Logged on: ignore it (no Reject, number not consumed); before: disconnect."""
        if self.state in ("active", "logout_sent"):
            self._garbled.ignored(garbled, self._store.next_in)
        else:
            self._fatal(f"garbled message: {garbled.reason}")

    def _sequence(self, inbound: Inbound) -> None:
        expected = self._store.next_in
        if inbound.seq < expected:
            if inbound.poss_dup:
                self._log.debug("fix_duplicate_dropped", seq=inbound.seq, expected=expected)
            else:
                self._fatal(f"MsgSeqNum too low, expecting {expected} but received {inbound.seq}")
        elif inbound.seq > expected:
            handled = inbound.msg_type in ("2", "5")  # answered even across a gap
            if handled:
                self._dispatch(inbound)
            if self.state == "active":
                self._queue_ahead(inbound, handled)
        else:
            self._process(inbound, False)
            if self._queue or self._resend_until:  # else `_drain_queue` has nothing to do
                self._drain_queue()

    def _queue_ahead(self, inbound: Inbound, handled: bool) -> None:
        if len(self._queue) >= self._max_queued:
            self._fatal("too many messages queued behind a gap")
            return
        self._queue.setdefault(inbound.seq, (inbound, handled))  # a resent copy: keep the first
        if not self._resend_until:
            self._request_resend(inbound.seq)

    def _request_resend(self, upto: int) -> None:
        self._resend_until = upto
        self._rerequests = 0
        begin = self._send_resend_request()
        self._log.info("fix_resend_requested", begin=begin, received=upto)

    def _send_resend_request(self) -> int:
        begin = self._gap_from = self._store.next_in
        self._gap_since_s = self._mono()
        self._emit("2", [(7, b"%d" % begin), (16, b"0")])
        return begin

    def _check_gap(self, now: float, hb: float) -> None:
        """A gap is open: if next-in stood still for HeartBtInt (the resend may have come
        garbled again), ask again; after MAX_RESEND_REREQUESTS such requests, give up."""
        next_in = self._store.next_in
        if next_in != self._gap_from:  # progress: the resend is coming in
            self._gap_from, self._gap_since_s, self._rerequests = next_in, now, 0
        elif now - self._gap_since_s >= hb:
            if self._rerequests >= MAX_RESEND_REREQUESTS:
                text = f"gap at seq {next_in} not filled after {self._rerequests} resend requests"
                self._fatal(text)
                return
            self._rerequests += 1
            self._send_resend_request()
            self._log.warning(
                "fix_resend_rerequested",
                begin=next_in,
                received=self._resend_until,
                attempt=self._rerequests,
            )

    def _drain_queue(self) -> None:
        store = self._store
        while self._queue and self.state == "active":
            item = self._queue.pop(store.next_in, None)
            if item is None:
                stale = [s for s in self._queue if s < store.next_in]
                if not stale:
                    break
                for s in stale:
                    del self._queue[s]
                continue
            self._process(*item)
        if self._resend_until and store.next_in > self._resend_until:
            self._resend_until = 0
            if self._queue and self.state == "active":
                self._request_resend(max(self._queue))

    def _process(self, inbound: Inbound, handled: bool) -> None:
        """An in-sequence message: validate, consume its number, act on it."""
        seq = inbound.seq
        problem = self._invalid(inbound)
        if problem is not None:
            self._reject(seq, inbound.hdr, *problem)
            self._store.set_next_in(seq + 1)
            if problem[0] == fc.REASON_SENDING_TIME:
                self._fatal("SendingTime accuracy problem")
        elif inbound.msg_type == "4":  # gap fill (a reset never gets here)
            new_seq = fc.get_int(inbound.msg, 36) or 0
            if (text := gap_fill_refusal(seq, new_seq, max(self._queue, default=0))) is not None:
                self._reject(seq, inbound.hdr, fc.REASON_VALUE_INCORRECT, text, ref_tag=36)
                new_seq = seq + 1
            self._store.set_next_in(new_seq)
        else:
            self._store.set_next_in(seq + 1)
            if not handled:
                self._dispatch(inbound)

    def _dispatch(self, inbound: Inbound) -> None:
        msg_type, msg = inbound.msg_type, inbound.msg
        if msg_type in self._app_types:
            self._events.append(AppMessage(msg_type, msg, inbound.poss_dup, inbound.seq))
        elif msg_type in self._info_types:
            log_informational(self._log, inbound)
        elif msg_type not in fc.ADMIN_MSG_TYPES:
            self._business_reject(inbound.seq, msg_type)
        elif msg_type == "1":
            self._emit("0", [(112, bytes(msg.get(112)))])
        elif msg_type == "2":
            self._serve_resend(inbound, fc.get_int(msg, 7) or 0, fc.get_int(msg, 16) or 0)
        elif msg_type == "3":
            event = SessionRejectReceived(
                fc.get_int(msg, 45) or 0, fc.get_str(msg, 372), fc.get_int(msg, 373),
                fc.get_str(msg, 58) or "", fc.get_int(msg, 371),
            )  # fmt: skip
            self._log.warning("fix_reject_received", ref_seq=event.ref_seq, reason=event.reason)
            self._events.append(event)
        elif msg_type == "5":
            self._events.append(LoggedOut(peer_text(fc.get_str(msg, 58))))
            if self.state == "active":
                self._emit("5", [])
                self._disconnect("peer logged out")
            else:
                self._disconnect("logout complete")
        elif msg_type == "A":
            self._reject(inbound.seq, inbound.hdr, fc.REASON_OTHER, "Logon while logged on")

    def _invalid(self, inbound: Inbound) -> tuple[int, str] | None:
        return fc.check_message(inbound.msg, inbound.hdr, self._clock(), self._max_skew_s)

    def _on_sequence_reset(self, inbound: Inbound) -> None:
        """SequenceReset-Reset: next-in becomes NewSeqNo whatever the MsgSeqNum."""
        problem = self._invalid(inbound)
        new_seq = fc.get_int(inbound.msg, 36) or 0
        if problem is None and new_seq < self._store.next_in:
            problem = fc.REASON_VALUE_INCORRECT, "NewSeqNo lower than expected MsgSeqNum"
        elif problem is None and new_seq > MAX_SEQ:
            problem = fc.REASON_VALUE_INCORRECT, f"NewSeqNo over {MAX_SEQ}"
        if problem is not None:
            self._reject(inbound.seq, inbound.hdr, *problem)
            return
        self._log.warning("fix_sequence_reset", old=self._store.next_in, new=new_seq)
        self._store.set_next_in(new_seq)
        self._drain_queue()

    def _on_reset_logon(self, inbound: Inbound) -> None:
        """Logon 141=Y while logged on: the peer starts new numbers on the connection (FIX's
        way for 24-hour sessions); ours too, and our reset Logon answers (unread old numbers
        are gone: reconciliation finds them). It ended as "MsgSeqNum too low", for good."""
        if self.state != "active":  # logging out: the old numbers end with the session
            self._sequence(inbound)
        elif (problem := self._invalid(inbound)) is not None or inbound.seq != 1:
            self._fatal(problem[1] if problem else "ResetSeqNumFlag(141)=Y with MsgSeqNum not 1")
        elif self._store.next_in == 1 or (self._store.next_in, self._store.next_out) == (2, 2):
            self._end_old_numbering()  # the answer to our reset, or a repeat: no new reset
            self._store.set_next_in(2)
        else:
            old = {"old_next_in": self._store.next_in, "old_next_out": self._store.next_out}
            self._log.warning("fix_reset_by_peer", **old, delivered=self._end_old_numbering())
            self._tx.clear()  # not handed out: old numbers (resent copies) the venue reset
            self._store.reset()
            self._store.set_next_in(2)
            self._emit("A", fc.logon_body(self.heartbeat_s, True, self._logon_extra))

    def _end_old_numbering(self) -> int:
        """What waits behind a gap came before the reset Logon (see fix inbound
        `drain_behind_gap`): its application messages delivered; how many."""
        kept = [m for m in drain_behind_gap(self._queue) if not self._invalid(m)]
        self._resend_until = 0
        for inbound in kept:
            self._dispatch(inbound)
        return len(kept)

    def _on_first_message(self, inbound: Inbound) -> None:
        seq, msg = inbound.seq, inbound.msg
        if self.state == "logon_sent" and inbound.msg_type == "5":
            text = peer_text(fc.get_str(msg, 58))
            if seq == self._store.next_in:
                self._store.set_next_in(seq + 1)
            self._events.append(LoggedOut(text))
            self._disconnect(f"logon refused: {text}")
            return
        if inbound.msg_type != "A" or self.initiator != (self.state == "logon_sent"):
            self._fatal("first message is not a Logon", logout=False)
            return
        problem = self._invalid(inbound)
        heartbeat_s = fc.get_int(msg, 108)
        if heartbeat_s is None or heartbeat_s > 3600:
            problem = problem or (fc.REASON_VALUE_INCORRECT, "HeartBtInt(108) out of range")
        if problem is not None or heartbeat_s is None:
            self._fatal(f"invalid Logon: {problem[1] if problem else ''}", logout=False)
            return
        reset = msg.get(141) == b"Y"
        if not self.initiator:
            refusal = self._accept_logon(msg) if self._accept_logon else None
            if refusal is not None:
                self._fatal(refusal or "logon refused", logout=True)
                return
            if reset:
                if seq != 1:
                    self._fatal("ResetSeqNumFlag(141)=Y with MsgSeqNum not 1", logout=True)
                    return
                self._store.reset()
            self.heartbeat_s = heartbeat_s
        elif reset and not self._reset_sent:
            self._store.set_next_in(1)  # the acceptor reset its side on its own
        if seq < self._store.next_in:
            text = f"MsgSeqNum too low, expecting {self._store.next_in} but received {seq}"
            self._fatal(text, logout=True)
            return
        if not self.initiator:
            self._emit("A", fc.logon_body(heartbeat_s, reset, ()))
        self._enter("active")
        self._last_recv_s = self._tx.last_sent_s = self._mono()
        was_reset = reset or self._reset_sent
        self._log.info("fix_logon", reset=was_reset, seq_in=seq, next_out=self._store.next_out)
        self._events.append(LoggedOn(was_reset))
        if seq == self._store.next_in:
            self._store.set_next_in(seq + 1)
        else:
            self._queue_ahead(inbound, True)

    # -- outbound ------------------------------------------------------------------------

    def _emit(self, msg_type: str, body: list[tuple[int, bytes]], *, keep: bool = False) -> int:
        return self._tx.emit(msg_type, body, keep=keep)

    def _serve_resend(self, inbound: Inbound, begin: int, end: int) -> None:
        last = self._store.next_out - 1  # asked past it: the peer thinks we sent more
        refusal = self._tx.resend_refusal(begin, end)
        if refusal is not None:  # no range we sent: refused (FIX 4.4), not answered by silence
            self._reject(inbound.seq, inbound.hdr, fc.REASON_VALUE_INCORRECT, *refusal)
            if refusal[1] == 7 and begin > last and (n := self._beyond_log.take()) is not None:
                kw = {"begin": begin, "end": end, "last_sent": last, "suppressed": n}
                self._log.warning("fix_resend_request_beyond_last_sent", **kw)
            return
        skipped = self._tx.skip_resend(begin, end)  # a flood of them: see fix transmit
        if skipped is not None:
            self._resend_skips.skipped(skipped, begin, end)
            return
        end, count, withheld = self._tx.resend(begin, end)
        if withheld:  # orders the peer never read: the OMS's reconciliation decides
            self._orders_not_resent.inc(withheld)
        self._log.info(
            "fix_resend_served", begin=begin, end=end, resent=count, orders_gap_filled=withheld
        )

    def _reject(
        self, ref_seq: int, hdr: dict[bytes, bytes], reason: int, text: str, ref_tag: int = 0
    ) -> None:
        """Session Reject (35=3) of message `ref_seq`; `ref_tag`: the field at fault."""
        body = [(45, b"%d" % ref_seq)] + ([(371, b"%d" % ref_tag)] if ref_tag else [])
        ref_type = hdr.get(b"35")
        if ref_type:
            body.append((372, ref_type))
        body += [(373, b"%d" % reason), (58, text_value(text))]
        self._emit("3", body)
        self._refused("session", reason, "fix_reject_sent", ref_seq=ref_seq, text=text)
        self._events.append(SessionRejectSent(ref_seq, reason, text))

    def _business_reject(self, ref_seq: int, ref_msg_type: str) -> None:
        """BusinessMessageReject 380=3 for a valid FIX 4.4 MsgType we do not support (an
        application message: kept, so a ResendRequest brings it again)."""
        reason = fc.BUSINESS_REJECT_UNSUPPORTED_MSG_TYPE
        text = f"Unsupported Message Type {ref_msg_type}"
        body = [(45, b"%d" % ref_seq), (372, ref_msg_type.encode()), (380, b"%d" % reason)]
        self._emit("j", [*body, (58, text.encode())], keep=True)
        self._refused(
            "business",
            reason,
            "fix_business_reject_sent",
            ref_seq=ref_seq,
            ref_msg_type=ref_msg_type,
        )

    def _refused(self, kind: str, reason: int, event: str, **fields: object) -> None:
        """A Reject (`kind` session) or BusinessMessageReject (business) sent: counted, and
        logged within the budget (a peer's flood of bad messages is one line each: 250
        warnings from one 38 KB read); ``suppressed``: lines left out before this one."""
        labels = {"peer": self.target_comp_id, "kind": kind, "reason": str(reason)}
        metrics.FIX_REJECTS_SENT.labels(**labels).inc()
        if (suppressed := self._reject_log.take()) is not None:
            self._log.warning(event, reason=reason, suppressed=suppressed, **fields)

    # -- state ---------------------------------------------------------------------------

    def _fatal(self, text: str, *, logout: bool | None = None) -> None:
        """End the session: Logout carrying `text` (by default only once logged on), then
        Disconnect. Before logon the peer may be anybody, so it gets a Logout only when
        the caller says so (comp ids checked)."""
        if logout is None:
            logout = self.state in ("active", "logout_sent")
        if logout:
            self._emit("5", [(58, text_value(text))])
        self._disconnect(text)

    def _disconnect(self, reason: str) -> None:
        if self.state == "closed":
            return
        self.state = "closed"
        self._log.info("fix_disconnect", reason=reason)
        self._events.append(Disconnect(reason))

    def _enter(self, state: State) -> None:
        self.state = state
        self._since_s = self._mono()

    def _take_events(self) -> list[SessionEvent]:
        events, self._events = self._events, []
        return events


def _no_log() -> None:
    """`flush_log` without a message log: nothing to write."""


def _mark(item: Inbound | Garbled | BadHeader) -> str:
    """How an inbound frame is marked in the message log."""
    if isinstance(item, Garbled):
        return GARBLED_PREFIX + item.reason
    return BAD_HEADER if isinstance(item, BadHeader) else NORMAL
