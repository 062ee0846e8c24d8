"""`[venues.sim] require_username`: the simulated venue refuses a Logon without that
Username(553), or with another one, the way it refuses logons under `refuse_logons_s`
(a Logout saying why, then the connection closes); the right one logs on. The username is
a credential: the venue never logs it."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from actors.connector.fix.events import LoggedOut
from tests.venuesim.rig import FixClient, SimProcess

USERNAME = "alice-sim-41d2"


def logon(client: FixClient, username: str | None) -> FixClient:
    """`FixClient.connect` with Username(553) in the Logon (None: without)."""
    client.sock = socket.create_connection(("127.0.0.1", client.port), timeout=5.0)
    client.sock.setblocking(False)
    client.session.logon(reset=True, extra=[] if username is None else [(553, username)])
    client._flush()
    client.wait(lambda: client.logged_on or not client.connected, 5.0, "logon answered")
    return client


@pytest.mark.parametrize(
    ("username", "reason"),
    [(None, "Username(553) required"), ("mallory", "Username(553) not accepted")],
)
def test_a_logon_without_the_required_username_is_refused(
    make_sim_process: Callable[..., SimProcess], short_tmp: Path, username: str | None,
    reason: str,
) -> None:  # fmt: skip
    sim = make_sim_process(require_username=USERNAME)
    client = FixClient(sim.port, short_tmp / "client")
    try:
        logon(client, username)
        assert not client.logged_on and not client.connected
        assert [e.text for e in client.events if isinstance(e, LoggedOut)] == [reason]
        assert sim.wait_event("sim_logon_refused")["reason"] == reason
        assert sim.control("status").data["logons"] == 0
    finally:
        client.shutdown()


def test_the_required_username_logs_on_and_is_never_logged(
    make_sim_process: Callable[..., SimProcess], short_tmp: Path
) -> None:
    sim = make_sim_process(require_username=USERNAME)
    client = FixClient(sim.port, short_tmp / "client")
    try:
        assert logon(client, USERNAME).logged_on
        sim.wait_event("sim_logon")
        sim.stop()
        assert USERNAME not in json.dumps(sim.lines) + "\n".join(sim.stderr)
    finally:
        client.shutdown()
