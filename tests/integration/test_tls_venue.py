"""The whole system against a simulated venue serving FIX over TLS (issue 11 section 3)
with a certificate the test makes: orders trade end to end over mutual TLS and survive a
connector kill -9 with nothing sent twice; a venue certificate that does not verify (an
untrusted CA, another name) or a missing client certificate leaves the venue DOWN with
`fix_tls_failed` and never a Logon."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.integration.oms_support import overrides, settle, start, systems
from tests.system_ops import VENUE, client, sim_fault, submit_when_open, venue_order
from tests.tlscerts import Pki, make_pki

pytestmark = pytest.mark.integration
CONNECTOR = f"connector.{VENUE}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_system(pki: Pki, tls: dict[str, Any], *, client_ca: bool, **venue: Any) -> dict[str, Any]:
    sim = {"tls_cert_file": str(pki.server_cert), "tls_key_file": str(pki.server_key)}
    if client_ca:
        sim["tls_client_ca_file"] = str(pki.ca)
    cfg = overrides(**sim)
    cfg["venues"][0] |= {"tls": tls, **venue}
    return cfg


def mutual(pki: Pki) -> dict[str, Any]:
    return {
        "ca_file": str(pki.ca),
        "cert_file": str(pki.client_cert),
        "key_file": str(pki.client_key),
    }


def test_orders_trade_over_mutual_tls_and_survive_a_connector_kill9(pki: Pki) -> None:
    """The venue requires a client certificate; the connector has one and trusts the
    venue's CA: it logs on over TLS and orders trade. Then the venue holds its reports
    back, an order reaches it, and the connector is killed -9: the next incarnation
    handshakes again, the OMS reconciles, the order is ACCEPTED and was never resent."""
    with systems() as started:
        sut = start(started, overrides=tls_system(pki, mutual(pki), client_ca=True))
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="tls-1")
            settle(c, sut, ["tls-1"])
            sut.wait_event("fix_tls_established", actor=CONNECTOR)
            sim_fault(sut, VENUE, "delay_exec_ms", "3000")
            submit_when_open(c, VENUE, price="96.00", client_order_id="tls-held")
            held = lambda: (venue_order(sut, VENUE, "tls-held") or {}).get("status")  # noqa: E731
            eventually(lambda: held() == "ACCEPTED", 10.0)
            assert c.get_order("tls-held").status is OrderStatus.PENDING_SUBMIT
            since = sut.mark()
            os.kill(sut.pid_of(CONNECTOR), signal.SIGKILL)
            sut.wait_event("actor_ready", 15.0, since=since, child=CONNECTOR)
            sut.wait_event("fix_tls_established", 15.0, since=since, actor=CONNECTOR)
            sim_fault(sut, VENUE, "clear")
            final = settle(c, sut, ["tls-1", "tls-held"])
        assert final.oms["tls-held"].status is OrderStatus.ACCEPTED
        assert final.venue["rejects"] == [] and len(final.venue["orders"]) == 2
        assert not sut.events("order_resubmitted", since=since)
        assert not sut.events("fix_tls_failed")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("wrong_ca", "certificate verify failed"),
        ("wrong_hostname", "certificate verify failed: Hostname mismatch"),
        ("no_client_cert", ""),  # TLS 1.3: the alert, or the closed connection, comes later
    ],
)
def test_a_failed_handshake_leaves_the_venue_down_without_a_logon(
    pki: Pki, case: str, expected: str
) -> None:
    """Each attempt fails its handshake (`fix_tls_failed`, a `connect_failed`); after
    down_after_failures the venue is DOWN in `status`; the simulator never saw a Logon.
    Without the client certificate the venue refuses the handshake (`sim_tls_failed`)."""
    tls = {
        "wrong_ca": {"ca_file": str(pki.other_ca)},
        "wrong_hostname": mutual(pki) | {"server_hostname": "fix.venue.example"},
        "no_client_cert": {"ca_file": str(pki.ca)},
    }[case]
    cfg = tls_system(pki, tls, client_ca=True, down_after_failures=2)
    with systems() as started:
        sut: SystemUnderTest = start(started, overrides=cfg)
        eventually(lambda: sut.status()["venues"][VENUE]["state"] == "DOWN", 20.0)
        # DOWN comes over ZeroMQ, the log lines through the reader thread: wait for them
        sut.wait_events("connect_failed", 2, actor=CONNECTOR)
        failed = sut.events("connect_failed", actor=CONNECTOR)
        assert all("tls: " in e["reason"] for e in failed), failed
        tls_failed = sut.events("fix_tls_failed", actor=CONNECTOR)
        assert tls_failed and all(expected in e["reason"] for e in tls_failed), tls_failed
        if case == "no_client_cert":
            assert "certificate" in sut.wait_event("sim_tls_failed")["reason"]
        assert not sut.events("fix_logon") and not sut.events("sim_logon")
        assert sut.actor(f"venuesim.{VENUE}")["info"]["session"] != "active"
