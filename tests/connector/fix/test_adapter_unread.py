"""A venue that logs on, then never reads its socket while it keeps asking (TestRequests
with long ids): the connector closes the connection once MAX_UNSENT_BYTES wait unsent,
instead of queueing its answers in memory for good."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.connector.fix import adapter as fix_adapter
from actors.connector.fix import codec as fc
from actors.connector.fix.adapter import FixAdapter
from tests.connector.fix.support import LOG, RecordingListener, TestLoop, venue_cfg


class DeafVenue:
    """A raw acceptor: answers our Logon, then only writes (never reads again)."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port: int = self.server.getsockname()[1]
        self.conn: socket.socket | None = None
        self.seq = 0

    def frame(self, msg_type: str, body: list[tuple[int, bytes]]) -> bytes:
        self.seq += 1
        header = [(49, b"MINI"), (56, b"TRADEPULSE"), (34, b"%d" % self.seq)]
        header.append((52, fc.sending_time(time.time()).encode()))
        return fc.encode(msg_type, header, body)

    def accept_logon(self, loop: TestLoop) -> None:
        self.server.setblocking(False)

        def accepted() -> bool:
            try:
                self.conn, _ = self.server.accept()
            except BlockingIOError:
                return False
            return True

        loop.run_until(accepted)
        conn = self.conn
        assert conn is not None
        conn.setblocking(False)
        got = bytearray()

        def logon_read() -> bool:  # our Logon: the only read
            try:
                got.extend(conn.recv(4096))
            except BlockingIOError:
                pass
            return b"\x0110=" in got

        loop.run_until(logon_read)
        assert b"35=A\x01" in got
        conn.settimeout(5.0)
        conn.sendall(self.frame("A", [(98, b"0"), (108, b"5")]))

    def test_request(self, n: int) -> None:
        assert self.conn is not None
        self.conn.sendall(self.frame("1", [(112, b"%d-" % n + b"x" * 60_000)]))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


@pytest.fixture
def venue() -> Iterator[DeafVenue]:
    deaf = DeafVenue()
    yield deaf
    deaf.close()


def test_venue_that_never_reads_is_disconnected_past_the_unsent_bound(
    tmp_path: Path, venue: DeafVenue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fix_adapter, "MAX_UNSENT_BYTES", 1 << 20)
    loop = TestLoop()
    listener = RecordingListener()
    adapter = FixAdapter(
        loop,
        listener,
        venue_cfg(),
        store_dir=tmp_path / "fix",
        address=lambda: ("127.0.0.1", venue.port),
        log=LOG,
        id_prefix="t",
        fsync=False,
    )
    loop.after_turn.append(adapter.flush)
    try:
        adapter.connect()
        venue.accept_logon(loop)
        loop.run_until(lambda: listener.ups)
        # each 60 KB TestRequest is answered by a 60 KB Heartbeat nobody takes: the
        # kernel's buffers fill, then the adapter's own queue grows past the bound
        for n in range(200):
            venue.test_request(n)
            loop.turn(0.0)
            if listener.downs:
                break
        loop.run_until(lambda: listener.downs, timeout_s=5.0)
        reason, was_up = listener.downs[0]
        assert reason.startswith("venue not reading"), reason
        assert was_up
        assert not adapter.session.state == "active"
    finally:
        adapter.close()
