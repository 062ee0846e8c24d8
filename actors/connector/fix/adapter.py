"""The FIX 4.4 initiator adapter: a nonblocking TCP socket in the actor loop around the
sans-I/O `FixSession` (session.py), behind the `VenueAdapter` interface (adapter.py).

One loop turn::

    socket readable -> session.receive() -> events: executions go to listener.on_execs()
                       (durable there) *before* anything else is handled
    timers          -> session.tick() every 200 ms (heartbeats, TestRequest, timeouts)
    flush()         -> rate-limited outbound queue into session.send(), then ONE
                       session.data_to_send() (fsync of the FIX store: sent messages and
                       next-in), then the send callbacks (the OMS's Acks), then the socket

so next-in never becomes durable before the executions it covers are in the outbox, and
an order is acked only once it is in the FIX store (the current connection resends it on
request; a later one answers with a gap fill and the OMS's pass resubmits it: fix
transmit). Crash point (tests, chaos): `fix_stored_before_send`, SIGKILL after the store
sync of a turn that sent an order message, before its bytes reach the socket.

Logon: what it carries and when it resets sequence numbers (the dialect's
`reset_seq_num`, the schedule's daily reset) is `logon.LogonPlan`. The session is "up"
(on_session_up) once logged on and the resend we asked for, if any, is complete.

Outbound application messages (orders and queries) pass a token bucket (VenueCfg
rate_limit_per_s / rate_burst); the excess waits in a FIFO queue and is never dropped. A
request still queued when the session drops fails with VENUE_DOWN: nothing was sent.
"""

from __future__ import annotations

import gc
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from actors.connector.adapter import (
    Listener,
    Loop,
    RequestFailed,
    SendDone,
)
from actors.connector.early_view import ViewMarks
from actors.connector.fix import mapping as fm
from actors.connector.fix.codec import Written
from actors.connector.fix.events import (
    AppMessage,
    Disconnect,
    LoggedOn,
    LoggedOut,
    Logger,
    SessionEvent,
    SessionRejectReceived,
)
from actors.connector.fix.logon import LogonPlan
from actors.connector.fix.order_wire import place_body
from actors.connector.fix.outbound import Outbound, OutboundQueue
from actors.connector.fix.queries import QueryBook
from actors.connector.fix.replies import ReplyRouter
from actors.connector.fix.requests import QueryRequests
from actors.connector.fix.session import FixSession
from actors.connector.fix.store import FixStore
from actors.connector.ratelimit import TokenBucket
from actors.connector.tcp import TcpClient
from protocol.config import VenueCfg
from protocol.messages import (
    CancelOnVenue,
    ErrorCode,
    ExecReport,
    PlaceOrder,
    ReplaceOnVenue,
)

# the session clock (heartbeats, test requests, logon/logout deadlines: seconds), a periodic
# loop timer so that the liveness beats and the connector's own checks share its wake-ups
TICK_S = 0.2

Address = tuple[str, int]
# bytes the venue has not taken off its socket: past this it is not reading (a full resend
# is ~2 MB), and the connection is closed instead of growing our memory without end (each
# of its TestRequests and ResendRequests answered into a socket nobody reads)
MAX_UNSENT_BYTES = 32 << 20


def resend_pending(session: FixSession) -> bool:
    """True while a ResendRequest we sent is unanswered or messages wait behind a gap.
    (Reads the session's private fields: FixSession has no public accessor yet.)"""
    return bool(getattr(session, "_resend_until", 0)) or bool(getattr(session, "_queue", None))


# What a venue sends the initiator: execution reports, cancel rejects, position reports /
# acks, mass cancel reports, business rejects. Any other FIX 4.4 application message (a D
# or H sent to us by mistake) gets a BusinessMessageReject 380=3, never silence.
INITIATOR_APP_MSG_TYPES = frozenset({"8", "9", "AP", "AO", "r", "j"})


class FixAdapter(QueryRequests):
    def __init__(
        self,
        loop: Loop,
        listener: Listener,
        vcfg: VenueCfg,
        *,
        store_dir: Path,
        address: Callable[[], Address | None],
        log: Logger,
        id_prefix: str,
        fsync: bool = True,
        clock: Callable[[], float] = time.time,
        crash_point: Callable[[str], None] = lambda _name: None,
    ) -> None:
        self.venue = vcfg.name
        self._crash_point = crash_point  # fault injection (tests, chaos): a SIGKILL point
        self._loop = loop
        self._listener = listener
        self._cfg = vcfg
        self._address = address
        self._log = log
        self._clock = clock
        self._dir = Path(store_dir)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._logon_plan = LogonPlan(self._dir, vcfg, log)  # before the store: cold start?
        self._store = FixStore(self._dir, fsync=fsync)
        self.session = FixSession(
            sender_comp_id=vcfg.sender_comp_id,
            target_comp_id=vcfg.target,
            store=self._store,
            initiator=True,
            heartbeat_s=vcfg.heartbeat_s,
            clock=clock,
            log=log,
            logon_timeout_s=vcfg.request_timeout_s,
            app_msg_types=INITIATOR_APP_MSG_TYPES,
        )
        bucket = TokenBucket(vcfg.rate_limit_per_s, vcfg.rate_burst)
        self._out = OutboundQueue(
            bucket, lambda delay_s: loop.call_later(delay_s, self._out.woken), self._store
        )
        self._queries = QueryBook(self.venue, log)
        self._ids = itertools.count(1)
        self._id_prefix = id_prefix
        self._replies = ReplyRouter(self.venue, self._out, self._queries, self.session, log)
        self._tcp = TcpClient(loop, self._on_ready, tls=vcfg.tls, log=log)
        self._gen = 0  # connection generation: timers of an old connection do nothing
        self._up = False
        self._logged_on_at = 0.0
        self._delivered = 0  # executions handed to on_execs so far
        self._batch: list[ExecReport] = []  # the ones of the message batch being handled
        self._loop.call_every(TICK_S, self._tick)

    # ------------------------------------------------------------------ VenueAdapter

    @property
    def is_active(self) -> bool:
        return self.session.state == "active"

    @property
    def is_idle(self) -> bool:
        return not self._tcp.is_open

    @property
    def exec_mark(self) -> int:
        return self._delivered + len(self._batch)

    def view_marks(self) -> ViewMarks:
        """What a held open-orders answer's validity hangs on (actors/connector/early_view.py)."""
        store = self._store
        return ViewMarks(
            self._gen, store.next_out, self.session.resends, store.next_in, self.exec_mark,
            store.numbering,
        )  # fmt: skip

    def connect(self) -> None:
        if self._tcp.is_open:
            raise RuntimeError("connect() while a connection exists")
        self._gen += 1
        gen = self._gen
        try:
            addr = self._address()
            if addr is None:
                raise OSError("venue address not known yet (no port file)")
            self._tcp.connect(addr)
        except OSError as exc:
            reason = f"connect: {exc}"
            self._loop.call_later(0, lambda: self._attempt_failed(gen, reason))
            return
        timeout_s = self._cfg.request_timeout_s
        self._loop.call_later(timeout_s, lambda: self._connect_timeout(gen))

    def disconnect(self, reason: str) -> None:
        if self._tcp.connecting:
            self._close(reason)
        elif self._tcp.is_open:
            self.session.logout(reason)  # active: Logout; logon_sent: Disconnect next tick

    def flush(self) -> None:
        if not self._tcp.is_open or self._tcp.connecting:
            return
        done = self._out.pump(self.session)
        data = self.session.data_to_send(flush_log=False)  # fsync: sent messages and next-in
        if data:  # (whatever the pump sent is in it)
            if done:  # an order message durable in the store, not yet on the wire
                self._crash_point("fix_stored_before_send")
            self._write(data)  # the venue first, then the Acks, then the message log
            self._out.record_sent()  # what the sends carried: read only by later turns
        for callback in done:
            callback(None)
        self.session.flush_log()

    def new_trading_session(self, key: str) -> None:
        self._logon_plan.new_trading_session(key)

    def close(self) -> None:
        self._close("adapter closed")
        self._store.close()

    def place(self, order: PlaceOrder, done: SendDone) -> None:
        body = place_body(order, self._clock())  # written ahead (fix order_wire)
        self._order_msg("D", body, order.cl_ord_id, done)

    def cancel(self, request: CancelOnVenue, done: SendDone) -> None:
        fields = fm.cancel_fields(request, self._clock())
        self._order_msg("F", fields, request.cl_ord_id, done)

    def replace(self, request: ReplaceOnVenue, done: SendDone) -> None:
        fields = fm.replace_fields(request, self._clock())
        self._order_msg("G", fields, request.cl_ord_id, done)

    def info(self) -> dict[str, object]:
        return {
            "fix_state": self.session.state,
            "next_in": self._store.next_in,
            "next_out": self._store.next_out,
            "queued": len(self._out),
            "queries": len(self._queries),
        }

    # ------------------------------------------------------------------ outbound

    def _order_msg(
        self, msg_type: str, fields: list[tuple[int, Any]] | Written, ref: str, done: SendDone
    ) -> None:
        if self.session.state == "active":  # `_check_active` and `_enqueue`, inline
            self._out.put(Outbound(msg_type, fields, done, ref))
        else:
            self._check_active(done)  # refused: VENUE_DOWN

    def _check_active(self, done: Callable[[Any], None]) -> bool:
        if self.is_active:
            return True
        done(RequestFailed(ErrorCode.VENUE_DOWN, f"not logged on ({self.session.state})"))
        return False

    def _enqueue(self, item: Outbound) -> None:
        self._out.put(item)

    def _write(self, data: bytes = b"") -> None:
        try:
            self._tcp.write(data)
        except OSError as exc:
            self._close(f"send: {exc}")
            return
        unsent = self._tcp.pending_out
        if unsent > MAX_UNSENT_BYTES:
            self._close(f"venue not reading: {unsent} bytes unsent")

    # ------------------------------------------------------------------ inbound

    def _on_ready(self) -> None:
        if self._tcp.connecting:
            try:
                if self._tcp.finish_connect():  # False: the TLS handshake goes on
                    self._logon_plan.send_logon(self.session, self._store)
            except OSError as exc:
                self._close(f"connect: {exc}")
            return
        if self._tcp.pending_out:
            self._write()
        if self._tcp.is_open:
            self._read()

    def _read(self) -> None:
        chunks, lost = self._tcp.read()
        gen = self._gen
        # no cyclic-GC pass inside one turn's reading (at most READ_BUDGET bytes): a mass
        # status's reports pile up as held VenueOrders, which the collector's passes only
        # traverse again and again (10,000 reports with the actor's frozen heap: 303 young
        # and 2 full passes -> 30 and 0, 25 -> 22.5 us of CPU a report); it runs again at
        # the first allocation past its threshold after the block (`collections_paused`,
        # inline: a turn's read forwards its executions, 6 fewer calls before the send)
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            events: list[SessionEvent] = []
            for data in chunks:
                events += self.session.receive(data)
            self._handle(events)
        finally:
            if was_enabled:
                gc.enable()
        if lost and gen == self._gen:
            self._close(lost)

    def _handle(self, events: list[SessionEvent]) -> None:
        execs: list[ExecReport] = []
        self._batch = execs  # a query answer completing meanwhile sees how many came first
        for event in events:
            if isinstance(event, AppMessage):
                self._replies.on_app(event, execs)
            elif isinstance(event, SessionRejectReceived):
                text = fm.session_reject_text(event)
                unsupported = event.reason == fm.INVALID_MSG_TYPE
                self._replies.on_rejected(
                    event.ref_seq, event.ref_msg_type, text, execs, unsupported=unsupported
                )
        self._batch = []
        if execs:  # tests: kill -9 with executions read, not forwarded, nothing of them kept
            self._crash_point("exec_read_before_forward")
            self._listener.on_execs(execs)  # durable before next-in is (at data_to_send)
            self._delivered += len(execs)
        for event in events:
            if isinstance(event, LoggedOn):
                self._logged_on_at = time.monotonic()
                self._logon_plan.logged_on()
            elif isinstance(event, LoggedOut):
                self._log.info("fix_logout", text=event.text)
            elif isinstance(event, Disconnect):
                self._close(event.reason)
                return
        self._check_up()

    # ------------------------------------------------------------------ state

    def _check_up(self) -> None:
        if self._up or not self.is_active:
            return
        waited_s = time.monotonic() - self._logged_on_at
        if not resend_pending(self.session):
            detail = "logged on"
        elif waited_s >= self._cfg.request_timeout_s:
            detail = "logged on; resend still incomplete"
        else:
            return
        self._up = True
        self._listener.on_session_up(detail)

    def _tick(self) -> None:
        if self._tcp.is_open and not self._tcp.connecting:
            self._handle(self.session.tick())

    def _connect_timeout(self, gen: int) -> None:
        if gen == self._gen and self._tcp.connecting:
            self._close(self._tcp.timed_out())

    def _attempt_failed(self, gen: int, reason: str) -> None:
        if gen == self._gen and not self._tcp.is_open:
            self._listener.on_session_down(reason, False)

    def _close(self, reason: str) -> None:
        """Drop the connection: write what is pending (best effort), close, fail requests."""
        if not self._tcp.is_open:
            return
        if self._tcp.connecting:
            self._tcp.close()
        else:
            self._tcp.close(last=self.session.data_to_send())
            self.session.connection_lost()
        self._gen += 1
        down = RequestFailed(ErrorCode.VENUE_DOWN, f"session dropped: {reason}")
        self._out.fail(down)
        self._queries.fail_all(down)
        was_up, self._up = self._up, False
        self._listener.on_session_down(reason, was_up)
