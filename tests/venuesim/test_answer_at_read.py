"""The venue's answers to what one read brought are on the wire when that read's handler
returns, before the loop runs its timers (a liquidity step, the engine log's fsync) and
the turn's housekeeping (`SimAcceptor.turn`), which still writes what comes later."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import structlog

from actors.connector.fix import codec as fc
from actors.connector.fix.store import FixStore
from actors.venuesim import SimStore, Venue
from actors.venuesim.acceptor import SimAcceptor
from actors.venuesim.faults import Faults
from protocol.config import SimCfg
from tests.connector.fix.test_session import split_frames


class _Loop:
    def __init__(self) -> None:
        self.later: list[Callable[[], None]] = []

    def add_fd(self, fd: int, handler: Callable[[], None], events: int = 0) -> None: ...
    def modify_fd(self, fd: int, events: int) -> None: ...
    def remove(self, sock_or_fd: Any) -> None: ...

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.later.append(fn)


def _frame(msg_type: str, seq: int, body: list[tuple[int, bytes]]) -> bytes:
    now = fc.sending_time(time.time()).encode()
    header = [(49, b"C"), (56, b"V"), (34, b"%d" % seq), (52, now)]
    return fc.encode(msg_type, header, body)


def _read_now(sock: socket.socket) -> list[str]:
    """The MsgTypes the venue has written so far (no waiting)."""
    try:
        data = sock.recv(1 << 16)
    except BlockingIOError:
        return []
    return [dict(fc.split_fields(raw))[b"35"].decode() for raw in split_frames(data)]


@contextmanager
def open_venue(tmp_path: Path, log: Any) -> Iterator[tuple[SimAcceptor, socket.socket]]:
    """A venue (AAPL, reference 100) adopting one end of a socket pair; the other end."""
    cfg = SimCfg(reference_prices={"AAPL": Decimal("100")}, tick_size=Decimal("0.01"))
    store = SimStore.open(tmp_path / "sim", book_id="bk")
    fix_store = FixStore(tmp_path / "fix", fsync=False)
    acceptor = SimAcceptor(
        venue=Venue("simA", cfg, store, seed=7), store=fix_store, sender_comp_id="V",
        client_comp_id="C", heartbeat_s=30, faults=Faults(), loop=_Loop(), log=log,
    )  # fmt: skip
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    acceptor._adopt(ours, b"")
    try:
        yield acceptor, theirs
    finally:
        acceptor.close()
        theirs.close()
        store.close()
        fix_store.close()


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[tuple[SimAcceptor, socket.socket]]:
    with open_venue(tmp_path, structlog.get_logger("test")) as opened:
        yield opened


def test_a_logon_and_an_order_are_answered_when_their_read_returns(venue: Any) -> None:
    acceptor, client = venue
    client.sendall(_frame("A", 1, [(98, b"0"), (108, b"30"), (141, b"Y")]))
    acceptor._on_conn_ready()
    assert _read_now(client) == ["A"]  # before any turn()
    order = [(11, b"c1"), (55, b"AAPL"), (54, b"1"), (38, b"1"), (40, b"1"), (60, b"x")]
    client.sendall(_frame("D", 2, order))
    acceptor._on_conn_ready()
    answers = _read_now(client)  # New, then its fill against the market maker
    assert answers[:1] == ["8"] and set(answers) == {"8"}
    acceptor.turn()  # nothing left for the turn to write
    assert _read_now(client) == []
