"""Test harness for the FIX adapter without processes: a small event loop with the same
contract as the actor loop (zmq.Poller on raw fds, call_later timers, a flush per turn),
an in-process FIX acceptor ("mini venue") on a real loopback socket, and a listener that
records what the adapter reports.
"""

from __future__ import annotations

import heapq
import itertools
import socket
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import simplefix  # type: ignore[import-untyped]
import structlog
import zmq

from actors.connector.fix import codec as fc
from actors.connector.fix.events import AppMessage, Disconnect, SessionEvent
from actors.connector.fix.store import FixStore
from actors.venuesim.fixmap import session_reject
from actors.venuesim.venue_session import VenueSession
from protocol.backoff_config import ReconnectCfg
from protocol.config import VenueCfg
from protocol.messages import ExecReport

LOG = structlog.get_logger("test")


class TestLoop:
    """One thread, one poller, timers; `run_until` turns it like `Actor._iterate`."""

    __test__ = False

    def __init__(self) -> None:
        self.poller = zmq.Poller()
        self.handlers: dict[int, Callable[[], None]] = {}
        self.timers: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = itertools.count()
        self.after_turn: list[Callable[[], None]] = []

    def add_fd(self, fd: int, handler: Callable[[], None], events: int = zmq.POLLIN) -> None:
        self.poller.register(fd, events)
        self.handlers[fd] = handler

    def modify_fd(self, fd: int, events: int) -> None:
        self.poller.modify(fd, events)

    def remove(self, fd: int) -> None:
        if fd in self.handlers:
            self.poller.unregister(fd)
            del self.handlers[fd]

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self.timers, (time.monotonic() + delay_s, next(self.seq), fn))

    def call_every(self, interval_s: float, fn: Callable[[], None]) -> None:
        def tick() -> None:
            fn()
            self.call_later(interval_s, tick)

        self.call_later(interval_s, tick)

    def turn(self, max_wait_s: float = 0.05) -> None:
        now = time.monotonic()
        timeout = max_wait_s
        if self.timers:
            timeout = min(timeout, max(0.0, self.timers[0][0] - now))
        for fd, _ev in self.poller.poll(int(timeout * 1000)):
            handler = self.handlers.get(fd)
            if handler is not None:
                handler()
        now = time.monotonic()
        while self.timers and self.timers[0][0] <= now:
            _, _, fn = heapq.heappop(self.timers)
            fn()
        for fn in self.after_turn:
            fn()

    def run_until(self, predicate: Callable[[], Any], timeout_s: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"condition not met within {timeout_s} s: {predicate!r}")
            self.turn()


class RecordingListener:
    def __init__(self) -> None:
        self.ups: list[str] = []
        self.downs: list[tuple[str, bool]] = []
        self.execs: list[ExecReport] = []
        self.on_execs_hook: Callable[[Sequence[ExecReport]], None] | None = None

    def on_session_up(self, detail: str) -> None:
        self.ups.append(detail)

    def on_session_down(self, reason: str, was_up: bool) -> None:
        self.downs.append((reason, was_up))

    def on_execs(self, reports: Sequence[ExecReport]) -> None:
        if self.on_execs_hook is not None:
            self.on_execs_hook(reports)
        self.execs.extend(reports)


def venue_cfg(**overrides: Any) -> VenueCfg:
    values: dict[str, Any] = {
        "name": "mini",
        "target_comp_id": "MINI",
        "heartbeat_s": 5,
        "request_timeout_s": 2.0,
        "reconnect": ReconnectCfg(initial_s=0.01, factor=2.0, max_s=0.2, jitter=0.0),
    }
    values.update(overrides)
    return VenueCfg(**values)


def fields_of(msg: simplefix.FixMessage) -> dict[int, str]:
    return {int(t): bytes(v).decode() for t, v in msg.pairs}


def fix_message(pairs: Sequence[tuple[int, str]]) -> simplefix.FixMessage:
    """A parsed-like message holding `pairs` (for the pure mapping tests)."""
    return fc.to_message([(str(t).encode(), v.encode()) for t, v in pairs])


class MiniVenue:
    """A FIX acceptor on 127.0.0.1 driven by the same TestLoop: answers D with an
    ExecutionReport New (and `fill_qty` fills), F with Canceled, H/AF/AN/q with the
    answers our sim gives. `refuse` rejects logons; `drop()` cuts the connection."""

    def __init__(
        self,
        loop: TestLoop,
        store_dir: Path,
        *,
        comp_id: str = "MINI",
        client_id: str = "TRADEPULSE",
    ) -> None:
        self.loop = loop
        self.store = FixStore(store_dir, fsync=False)
        self.comp_id, self.client_id = comp_id, client_id
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.setblocking(False)
        self.port: int = self.listener.getsockname()[1]
        loop.add_fd(self.listener.fileno(), self._accept)
        loop.after_turn.append(self.flush)
        self.conn: socket.socket | None = None
        self.session: VenueSession | None = None
        self.received: list[AppMessage] = []
        self.logons: list[simplefix.FixMessage] = []
        self.refuse: str | None = None
        self.fill_qty: Decimal = Decimal(0)
        self.answer = True  # False: receive orders but say nothing
        # MsgType -> (RefTagID, SessionRejectReason, Text): session-reject those instead
        self.session_rejects: dict[str, tuple[int, int, str]] = {}
        self.orders: dict[str, dict[int, str]] = {}  # ClOrdID -> D fields
        self.positions: list[tuple[str, str, str, str]] = []  # symbol, long, short, px
        self._exec = itertools.count(1)
        self.connections = 0

    def close(self) -> None:
        self.drop()
        self.loop.remove(self.listener.fileno())
        self.listener.close()
        self.store.close()

    # -- connection ---------------------------------------------------------------------

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        if self.conn is not None:
            conn.close()
            return
        conn.setblocking(False)
        self.conn = conn
        self.connections += 1
        self.session = VenueSession(
            sender_comp_id=self.comp_id,
            target_comp_id=self.client_id,
            store=self.store,
            initiator=False,
            log=LOG,
            accept_logon=self._accept_logon,
        )
        self.session.connection_made()
        self.loop.add_fd(conn.fileno(), self._readable)

    def _accept_logon(self, msg: simplefix.FixMessage) -> str | None:
        self.logons.append(msg)
        return self.refuse

    def drop(self) -> None:
        if self.conn is not None:
            self.loop.remove(self.conn.fileno())
            self.conn.close()
            self.conn = None
        if self.session is not None:
            self.session.connection_lost()
            self.session = None

    def _readable(self) -> None:
        assert self.conn is not None and self.session is not None
        try:
            data = self.conn.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop()
            return
        self._on_events(self.session.receive(data))

    def _on_events(self, events: list[SessionEvent]) -> None:
        for ev in events:
            if isinstance(ev, AppMessage):
                self.received.append(ev)
                if ev.msg_type in self.session_rejects:
                    self.reject(ev.seq, ev.msg_type, *self.session_rejects[ev.msg_type])
                elif self.answer:
                    self._on_app(ev.msg_type, fields_of(ev.msg))
            elif isinstance(ev, Disconnect):
                self.flush()
                self.drop()
                return

    def flush(self) -> None:
        if self.session is None or self.conn is None:
            return
        self._on_events(self.session.tick())
        if self.session is None or self.conn is None:
            return
        data = self.session.data_to_send()
        if data:
            self.conn.sendall(data)

    # -- application --------------------------------------------------------------------

    def send(self, msg_type: str, fields: list[tuple[int, Any]]) -> None:
        assert self.session is not None
        self.session.send(msg_type, fields)

    def reject(self, ref_seq: int, msg_type: str, ref_tag: int, reason: int, text: str) -> None:
        """A session-level Reject (35=3) of the client's message `ref_seq`."""
        assert self.session is not None
        self.session.reject(session_reject(ref_seq, msg_type, ref_tag, reason, text))

    def exec_report(
        self,
        cl: str,
        exec_type: str,
        status: str,
        *,
        cum: str = "0",
        last: str = "0",
        px: str = "0",
        extra: Sequence[tuple[int, Any]] = (),
    ) -> None:
        order = self.orders.get(cl, {})
        self.send(
            "8",
            [
                (37, f"O-{cl}"),
                (17, f"X{next(self._exec)}"),
                (150, exec_type),
                (39, status),
                (11, cl),
                (55, order.get(55, "AAPL")),
                (54, order.get(54, "1")),
                (38, order.get(38, "10")),
                (151, "0"),
                (14, cum),
                (6, px),
                (32, last),
                (31, px),
                *extra,
            ],
        )

    def _on_app(self, msg_type: str, f: dict[int, str]) -> None:
        if msg_type == "D":
            self.orders[f[11]] = f
            self.exec_report(f[11], "0", "0")
            if self.fill_qty:
                px = f.get(44, "100")
                self.exec_report(
                    f[11], "F", "1", cum=str(self.fill_qty), last=str(self.fill_qty), px=px
                )
        elif msg_type == "F":
            self.exec_report(f[11], "4", "4", extra=[(41, f[41])])
        elif msg_type == "H":
            if f[11] in self.orders:
                self.exec_report(f[11], "I", "0", extra=[(790, f[790])])
            else:
                self.send(
                    "8",
                    [
                        (37, "NONE"),
                        (17, "0"),
                        (150, "I"),
                        (39, "8"),
                        (11, f[11]),
                        (103, 5),
                        (58, "UNKNOWN_ORDER"),
                        (790, f[790]),
                        (54, "1"),
                        (151, "0"),
                        (14, "0"),
                        (6, "0"),
                    ],
                )
        elif msg_type == "AF":
            ids = list(self.orders)
            if not ids:
                self.send(
                    "8",
                    [
                        (37, "NONE"),
                        (17, "0"),
                        (150, "I"),
                        (39, "8"),
                        (11, "NONE"),
                        (584, f[584]),
                        (911, 0),
                        (912, "Y"),
                        (54, "1"),
                        (151, "0"),
                        (14, "0"),
                        (6, "0"),
                    ],
                )
            for i, cl in enumerate(ids, 1):
                last = [(912, "Y")] if i == len(ids) else []
                self.exec_report(cl, "I", "0", extra=[(584, f[584]), (911, len(ids)), *last])
        elif msg_type == "AN":
            if not self.positions:
                self.send("AP", [(710, f[710]), (721, "P0"), (727, 0), (728, 2)])
            for i, (sym, long_q, short_q, px) in enumerate(self.positions, 1):
                self.send(
                    "AP",
                    [
                        (710, f[710]),
                        (721, f"P{i}"),
                        (727, len(self.positions)),
                        (728, 0),
                        (55, sym),
                        (704, long_q),
                        (705, short_q),
                        (730, px),
                    ],
                )
        elif msg_type == "q":
            self.send("r", [(11, f[11]), (37, "MC"), (530, f[530]), (531, f[530])])
