"""A connector the supervisor gives up on, through the real system (seen on the demo): its
exec outbox corrupt, killed, its restart meets the bytes (`state_corrupt`, exit 65) and it
stays DOWN. The OMS used to keep its own view of the venue (CONNECTED, reconciled), accept
new orders for it, send them to no connector (UNKNOWN after the request timeout) and resend
them when the connector came back hours later. Now the supervisor records the give-up in
the stops file: a new order for the venue is refused at once, VENUE_DOWN naming the
connector and why; after the operator's repair and `restart`, orders are accepted again."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from protocol import paths
from protocol.client import VenueDown
from tests.helpers import SystemUnderTest, eventually
from tests.system_ops import client, submit_when_open

pytestmark = pytest.mark.integration

GARBAGE = b"\x09\xd7 not a tradepulse file \xff\x00" * 64


def _oms_sees_gave_up(sut: SystemUnderTest, venue: str) -> dict[str, Any] | None:
    """The OMS's view (its heartbeat info, in status) once it read the record."""
    status = sut.status()
    return status if venue in (status.get("intake_pauses") or {}).get("gave_up", {}) else None


def test_orders_for_a_gave_up_connector_are_refused_at_once_until_its_restart(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    sut = start_system()
    with client(sut) as c:
        submit_when_open(c, "simB")  # the venue trades
    outbox = paths.exec_outbox(sut.state_dir, "simB")
    pid = sut.pid_of("connector.simB")
    os.kill(pid, signal.SIGSTOP)  # it writes nothing more while its file is damaged
    good = outbox.read_bytes()
    outbox.write_bytes(GARBAGE)
    os.kill(pid, signal.SIGKILL)
    gave_up = sut.wait_event("actor_gave_up", child="connector.simB", timeout_s=30)
    assert gave_up["reason"] == "state_corrupt", gave_up
    status = eventually(lambda: _oms_sees_gave_up(sut, "simB"), 10, message="OMS sees it")
    assert status["venues"]["simB"]["state"] == "DOWN", status["venues"]

    with client(sut) as c:
        started = time.monotonic()
        with pytest.raises(VenueDown) as refused:
            c.submit("simB", "AAPL", "BUY", "10", "LIMIT", price="95.00", timeout_s=10)
        took_s = time.monotonic() - started
        assert "connector.simB gave up: state_corrupt" in str(refused.value), refused.value
        assert took_s < sut.cfg.oms.request_timeout_s, took_s  # at once, not after a timeout
        assert submit_when_open(c, "simA").venue == "simA"  # the other venue trades
    assert len(sut.events("actor_spawned", child="connector.simB")) == 2  # never respawned

    outbox.write_bytes(good)  # the operator's repair, then the runbook's restart
    proc = sut.cli("restart", "connector.simB")
    assert proc.returncode == 0, proc.stderr
    with client(sut) as c:  # NotReady until reconciled: waited for
        order = submit_when_open(c, "simB", timeout_s=30)
        assert order.venue == "simB" and order.status != "REJECTED", order
    assert _oms_sees_gave_up(sut, "simB") is None
    assert sut.stop() == 0
