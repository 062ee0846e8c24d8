"""TLS for the FIX TCP connection, in one test loop over loopback: the FIX adapter
(`[venues.tls]`) against the simulated venue's acceptor serving TLS with a certificate the
test makes (tests/tlscerts.py). The venue's certificate is verified (CA, name); every
failure is a `fix_tls_failed` log line and a failed connect, never a logon; nothing blocks
the loop, even a venue that never answers the handshake."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from actors.connector import tcp
from actors.connector.fix.adapter import FixAdapter
from actors.connector.fix.store import FixStore
from actors.venuesim import SimStore, Venue, acceptor
from actors.venuesim.acceptor import SimAcceptor
from actors.venuesim.faults import Faults
from protocol.config import SimCfg
from protocol.fix_config import TlsCfg
from protocol.tls import server_context
from tests.connector.fix.support import LOG, RecordingListener, TestLoop, venue_cfg
from tests.connector.fix.test_adapter import Done, order
from tests.tlscerts import Pki, make_pki

D = Decimal


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


class TlsHarness:
    """The simulated venue (TLS with `server`, a (cert, key) pair; plain TCP with None)
    and the adapter (with `tls`), one loop."""

    def __init__(
        self,
        root: Path,
        tls: TlsCfg | None,
        server: tuple[Path, Path] | None,
        client_ca: Path | None = None,
        **venue: Any,
    ) -> None:
        self.loop = TestLoop()
        cfg = SimCfg(reference_prices={"AAPL": D("100")}, volatility_bps=0.0)
        self.sim_store = SimStore.open(root / "sim", book_id="bk")
        self.fix_store = FixStore(root / "sim-fix", fsync=False)
        ctx = None
        if server is not None:
            ctx = server_context(str(server[0]), str(server[1]), str(client_ca or ""))
        self.acceptor = SimAcceptor(
            venue=Venue("mini", cfg, self.sim_store, seed=7), store=self.fix_store,
            sender_comp_id="MINI", client_comp_id="TRADEPULSE", heartbeat_s=5,
            faults=Faults(), loop=self.loop, log=LOG, tls=ctx,
        )  # fmt: skip
        port = self.acceptor.listen("127.0.0.1", 0)
        self.loop.after_turn.append(self.acceptor.turn)
        self.listener = RecordingListener()
        self.adapter = FixAdapter(
            self.loop, self.listener, venue_cfg(**{"request_timeout_s": 3.0, "tls": tls} | venue),
            store_dir=root / "fix", address=lambda: ("127.0.0.1", port), log=LOG,
            id_prefix="t", fsync=False,
        )  # fmt: skip
        self.loop.after_turn.append(self.adapter.flush)

    def connect(self) -> None:
        self.adapter.connect()
        self.loop.run_until(lambda: self.listener.ups or self.listener.downs)

    def close(self) -> None:
        self.adapter.close()
        self.acceptor.close()
        self.fix_store.close()
        self.sim_store.close()


@pytest.fixture
def harnesses() -> Iterator[list[TlsHarness]]:
    made: list[TlsHarness] = []
    yield made
    for h in made:
        h.close()


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == name]


def test_trades_over_tls_with_the_venue_certificate_verified(
    tmp_path: Path, pki: Pki, harnesses: list[TlsHarness]
) -> None:
    """ca_file trusts the test CA, the venue serves its certificate for 127.0.0.1: the
    handshake (TLS >= 1.2) completes inside the loop, the Logon goes over it and an order
    is acknowledged; the venue's session saw our Logon."""
    h = TlsHarness(tmp_path, TlsCfg(ca_file=str(pki.ca)), (pki.server_cert, pki.server_key))
    harnesses.append(h)
    with capture_logs() as logs:
        h.connect()
        assert h.listener.ups == ["logged on"], h.listener.downs
        h.adapter.place(order("c1", price="99.00"), Done())
        h.loop.run_until(lambda: h.listener.execs)
    assert h.listener.execs[0].kind == "accepted"
    (est,) = events(logs, "fix_tls_established")
    assert est["version"] in ("TLSv1.2", "TLSv1.3")
    assert events(logs, "sim_tls_established") and not events(logs, "fix_tls_failed")


def test_bytes_buffered_inside_tls_are_drained_on_both_sides(
    tmp_path: Path, pki: Pki, harnesses: list[TlsHarness], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads smaller than a TLS record (512 bytes, one read per readiness event) leave
    decrypted bytes inside the SSL objects, where the poller cannot see them: the venue
    drains them (five orders written at once, one record) and so does the connector (the
    five acknowledgements), so all five are acknowledged at once, not at the next
    heartbeat (5 s) that happens to make the socket readable again."""
    monkeypatch.setattr(tcp, "READ_BYTES", 512)
    monkeypatch.setattr(tcp, "READ_BUDGET", 512)
    monkeypatch.setattr(acceptor, "_READ_BYTES", 512)
    monkeypatch.setattr(acceptor, "_MAX_READS_PER_CALL", 1)
    h = TlsHarness(tmp_path, TlsCfg(ca_file=str(pki.ca)), (pki.server_cert, pki.server_key))
    harnesses.append(h)
    h.connect()
    for i in range(5):
        h.adapter.place(order(f"b{i}", qty="1", price="99.00"), Done())
    h.loop.run_until(lambda: len(h.listener.execs) >= 5, 2.5)
    assert sorted(e.cl_ord_id for e in h.listener.execs) == [f"b{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("tls", "expected"),
    [
        (lambda pki: TlsCfg(ca_file=str(pki.other_ca)), "unable to get local issuer"),
        (
            lambda pki: TlsCfg(ca_file=str(pki.ca), server_hostname="fix.venue.example"),
            "Hostname mismatch",
        ),
    ],
    ids=["wrong_ca", "wrong_hostname"],
)
def test_a_certificate_that_does_not_verify_fails_the_connect(
    tmp_path: Path, pki: Pki, harnesses: list[TlsHarness], tls: Any, expected: str
) -> None:
    """A venue certificate from a CA we do not trust, or not for the name we expect: the
    handshake fails, `fix_tls_failed` says why, the attempt is a failed connect (the
    connector's backoff and down_after_failures apply), and no Logon is ever sent."""
    h = TlsHarness(tmp_path, tls(pki), (pki.server_cert, pki.server_key))
    harnesses.append(h)
    with capture_logs() as logs:
        h.connect()
    assert not h.listener.ups
    ((reason, was_up),) = h.listener.downs
    assert not was_up and reason.startswith("connect: tls: certificate verify failed")
    (failed,) = events(logs, "fix_tls_failed")
    assert expected in failed["reason"]
    assert h.acceptor.logons == 0 and h.acceptor.received == {}


def test_hostname_check_can_be_turned_off_but_the_ca_is_still_checked(
    tmp_path: Path, pki: Pki, harnesses: list[TlsHarness]
) -> None:
    """check_hostname = false accepts a certificate for another name (a venue reached by
    an address its certificate does not list) but still refuses an unknown CA."""
    off = TlsCfg(ca_file=str(pki.ca), server_hostname="fix.venue.example", check_hostname=False)
    h = TlsHarness(tmp_path / "a", off, (pki.server_cert, pki.server_key))
    harnesses.append(h)
    h.connect()
    assert h.listener.ups == ["logged on"]
    rogue = TlsHarness(tmp_path / "b", off, (pki.other_server_cert, pki.other_server_key))
    harnesses.append(rogue)
    rogue.connect()
    assert not rogue.listener.ups and "certificate verify failed" in rogue.listener.downs[0][0]


def test_a_plain_tcp_venue_fails_the_handshake(
    tmp_path: Path, pki: Pki, harnesses: list[TlsHarness]
) -> None:
    """TLS configured, the venue speaks plain FIX: the handshake cannot complete (the
    plain acceptor never answers a ClientHello); the connect deadline (request_timeout_s)
    cuts it, `fix_tls_failed` is logged and the attempt counts as a failed connect. The
    loop kept turning all along (the venue's side answered in the same loop)."""
    h = TlsHarness(tmp_path, TlsCfg(ca_file=str(pki.ca)), None, request_timeout_s=0.5)
    harnesses.append(h)
    with capture_logs() as logs:
        started = time.monotonic()
        h.connect()
    assert time.monotonic() - started < 3.0
    assert h.listener.downs == [("tls: handshake timeout", False)] and not h.listener.ups
    assert "handshake not finished" in events(logs, "fix_tls_failed")[0]["reason"]
    assert h.acceptor.logons == 0


def test_a_venue_that_stalls_the_handshake_is_cut_at_the_deadline(
    tmp_path: Path, pki: Pki, harnesses: list[TlsHarness]
) -> None:
    """A listener that accepts and then never says a word: the loop is never blocked
    (its timers keep running) and the attempt fails at request_timeout_s."""
    silent = socket.create_server(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    loop, listener = TestLoop(), RecordingListener()
    adapter = FixAdapter(
        loop, listener, venue_cfg(request_timeout_s=0.5, tls=TlsCfg(ca_file=str(pki.ca))),
        store_dir=tmp_path / "fix", address=lambda: ("127.0.0.1", port), log=LOG,
        id_prefix="t", fsync=False,
    )  # fmt: skip
    ticks: list[float] = []

    def tick() -> None:
        ticks.append(time.monotonic())
        loop.call_later(0.05, tick)

    tick()
    try:
        adapter.connect()
        loop.run_until(lambda: listener.downs, 5.0)
        assert listener.downs == [("tls: handshake timeout", False)]
        assert len(ticks) >= 5  # the loop turned while the handshake waited
    finally:
        adapter.close()
        silent.close()


def test_mutual_tls_logs_on_with_the_client_certificate_only(
    tmp_path: Path, pki: Pki, harnesses: list[TlsHarness]
) -> None:
    """The venue requires a client certificate signed by its client CA: with cert_file /
    key_file the connector logs on; without, the venue refuses the handshake
    (`sim_tls_failed`), the connector logs `fix_tls_failed` and a failed connect, and
    never logs on."""
    server = (pki.server_cert, pki.server_key)
    mutual = TlsCfg(
        ca_file=str(pki.ca), cert_file=str(pki.client_cert), key_file=str(pki.client_key)
    )
    h = TlsHarness(tmp_path / "a", mutual, server, client_ca=pki.ca)
    harnesses.append(h)
    h.connect()
    assert h.listener.ups == ["logged on"]
    bare = TlsHarness(tmp_path / "b", TlsCfg(ca_file=str(pki.ca)), server, client_ca=pki.ca)
    harnesses.append(bare)
    with capture_logs() as logs:
        bare.connect()
    assert not bare.listener.ups and not bare.listener.downs[0][1]
    assert "tls: " in bare.listener.downs[0][0] and bare.acceptor.logons == 0
    assert "certificate" in events(logs, "sim_tls_failed")[0]["reason"]
    # TLS 1.3: our side finished its handshake; the venue's alert arrives at the first read
    assert "certificate required" in events(logs, "fix_tls_failed")[0]["reason"]


def test_a_plain_client_is_refused_by_a_tls_venue(
    tmp_path: Path, pki: Pki, harnesses: list[TlsHarness]
) -> None:
    """The simulator serving TLS is as strict as a real TLS venue: a connector without
    `[venues.tls]` sends a plain Logon, which is no ClientHello; the venue drops it
    (`sim_tls_failed`) and there is no logon."""
    h = TlsHarness(tmp_path, None, (pki.server_cert, pki.server_key))
    harnesses.append(h)
    with capture_logs() as logs:
        h.connect()
        h.loop.run_until(lambda: events(logs, "sim_tls_failed"))
    assert not h.listener.ups and h.acceptor.logons == 0


def test_tls_contexts_refuse_versions_below_1_2(pki: Pki) -> None:
    """Both sides: TLS 1.2 at least."""
    from protocol.tls import client_context

    assert client_context(TlsCfg(ca_file=str(pki.ca))).minimum_version is ssl.TLSVersion.TLSv1_2
    server = server_context(str(pki.server_cert), str(pki.server_key))
    assert server.minimum_version is ssl.TLSVersion.TLSv1_2


def test_a_tls_file_gone_since_start_fails_the_connect_not_the_actor(
    tmp_path: Path, pki: Pki, harnesses: list[TlsHarness]
) -> None:
    """The context is built per connection (a rotated certificate is used at the next
    one): a ca_file deleted after `run` checked it makes each attempt a failed connect
    with `fix_tls_failed` naming the field; nothing raises out of the adapter, and once
    the file is back the next attempt logs on."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(pki.ca.read_bytes())
    h = TlsHarness(tmp_path / "h", TlsCfg(ca_file=str(ca)), (pki.server_cert, pki.server_key))
    harnesses.append(h)
    ca.unlink()
    with capture_logs() as logs:
        h.connect()
    assert not h.listener.ups and h.listener.downs[0][0].startswith("connect: tls: ")
    assert "tls.ca_file" in events(logs, "fix_tls_failed")[0]["reason"]
    ca.write_bytes(pki.ca.read_bytes())
    h.adapter.connect()
    h.loop.run_until(lambda: h.listener.ups)
    assert h.listener.ups == ["logged on"]
