"""A venue's session schedule through the real system (`[venues.schedule]`): the test sets
a session that opens a few seconds after the system starts and closes a few seconds
later (seconds resolution, UTC, every day), so the whole day passes in real time.

Before the open and after the close the connector stays logged out and reports
OUT_OF_SESSION (`tradepulse status`, both the connector and the OMS columns), an order to
the venue is rejected at intake with the out-of-session reason, and the position heartbeat
does not count the planned downtime as an outage: no kill-switch over longer than
`oms.outage_tolerance_s`. At the open the connector logs on, the OMS reconciles and
orders flow; at the close it logs out with a Logout."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from protocol.client import ExecutionClient, NotReady, OutOfSession, Timeout
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.system_ops import SYMBOL, client, kill_switch, submit_when_open

pytestmark = pytest.mark.integration

TOLERANCE_S = 1.5
OPEN_IN_S = 14  # system start (a few s on a loaded machine) + the first closed phase
OPEN_FOR_S = 10
ATTEMPTS = 3  # a machine too slow for the schedule: again, with the margins doubled


class TooSlow(Exception):
    """The machine did not keep up with the schedule the test set (the system started after
    the open, or the open phase's order had not filled by the close): the run proves
    nothing either way, so it is repeated with more time (`ATTEMPTS`)."""


def before(deadline: dt.datetime, what: str) -> None:
    """`what` was done before `deadline` (else the schedule was too tight: `TooSlow`)."""
    if dt.datetime.now(dt.UTC) >= deadline:
        raise TooSlow(f"{what} after {deadline.isoformat()}")


@contextlib.contextmanager
def phase(deadline: dt.datetime, what: str) -> Iterator[None]:
    """The checks of one phase of the day, which must end before `deadline`: one that fails
    after it (the venue's session changed under the check) is `TooSlow`, not a finding."""
    try:
        yield
    except (AssertionError, Timeout, OutOfSession) as exc:
        before(deadline, f"{what} ({exc!r:.200})")
        raise
    before(deadline, what)


def hhmmss(at: dt.datetime) -> str:
    return at.strftime("%H:%M:%S")


def overrides(opens: dt.datetime, closes: dt.datetime) -> dict[str, Any]:
    schedule = {
        "timezone": "UTC", "start": hhmmss(opens), "end": hhmmss(closes),
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    }  # fmt: skip
    return {
        # every beat at info: `no_outage_for` counts the out-of-session beats
        "heartbeat": {"interval_s": 0.2, "venue_positions_interval_s": 0.2, "log_every_n": 1},
        "oms": {"outage_tolerance_s": TOLERANCE_S},
        "venues": [
            {
                "name": "simA",
                "target_comp_id": "SIMA",
                "schedule": schedule,
                "sim": {"reference_prices": {"AAPL": "100.00"}},
            },
            {
                "name": "simB",
                "target_comp_id": "SIMB",
                "sim": {"reference_prices": {"AAPL": "100.00"}},
            },
        ],
    }


def out_of_session_reason(c: ExecutionClient) -> str | None:
    """Submit to simA: the OutOfSession reason, or None while the OMS is not ready."""
    try:
        c.submit("simA", SYMBOL, "BUY", "1", "LIMIT", price="95.00", tif="DAY", timeout_s=5.0)
    except OutOfSession as exc:
        return str(exc)
    except NotReady:
        return None
    raise AssertionError("an order to a venue out of session was accepted")


def venue_row(sut: SystemUnderTest) -> tuple[str, str]:
    """simA's state as `tradepulse status` shows it: (connector, OMS)."""
    data = sut.status()
    oms = next(a.get("info") or {} for a in data["actors"] if a["id"] == "oms")
    return str(data["venues"]["simA"]["state"]), str((oms.get("venues") or {}).get("simA"))


def no_outage_for(sut: SystemUnderTest, seconds: float) -> None:
    """The heartbeat asks simA (every 0.2 s) for longer than `seconds`, each time told it is
    out of session, and never engages the kill-switch nor counts a miss."""
    since, start = sut.mark(), time.monotonic()
    sut.wait_events(
        "heartbeat_out_of_session", int(seconds / 0.2) + 1, seconds * 4, since=since, venue="simA"
    )
    assert time.monotonic() - start >= seconds * 0.9
    assert not kill_switch(sut)["engaged"], kill_switch(sut)
    assert not sut.events("kill_switch_requested")
    assert not sut.events("heartbeat_missed", since=since, venue="simA")


def test_the_venue_logs_out_outside_its_session_without_an_outage(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Closed at start: OUT_OF_SESSION, orders refused with the reason, no kill-switch past
    the tolerance. Open: logon, reconciliation, an order fills. Closed again: Logout,
    OUT_OF_SESSION, orders refused, still no kill-switch. (A machine too slow for the
    schedule repeats the day with twice the margins, `TooSlow`.)"""
    for attempt in range(ATTEMPTS):
        try:
            _one_day(start_system, OPEN_IN_S << attempt, OPEN_FOR_S << attempt)
            return
        except TooSlow:
            if attempt == ATTEMPTS - 1:
                raise


def _one_day(start_system: Callable[..., SystemUnderTest], open_in_s: int, open_for_s: int) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    opens = now + dt.timedelta(seconds=open_in_s)
    closes = opens + dt.timedelta(seconds=open_for_s)
    sut = start_system(overrides=overrides(opens, closes))
    try:
        _check_the_day(sut, opens, closes)
    except TooSlow:
        sut.destroy()
        raise


def _check_the_day(sut: SystemUnderTest, opens: dt.datetime, closes: dt.datetime) -> None:
    with client(sut) as c:
        # closed: planned downtime
        if sut.wait_event("fix_session_closed", venue="simA").get("at_start") is not True:
            raise TooSlow("the system started after the session opened")
        with phase(opens, "the closed phase's checks"):  # else the logon could be unseen
            reason = eventually(lambda: out_of_session_reason(c), 10.0)
            assert "outside its trading session" in reason
            assert eventually(lambda: venue_row(sut) == ("OUT_OF_SESSION", "OUT_OF_SESSION"), 5.0)
            assert not sut.events("fix_logon", venue="simA")
            no_outage_for(sut, TOLERANCE_S * 2)
            assert sut.metric("tradepulse_venue_in_session", venue="simA") == 0
        # open: logon, reconciliation, orders flow
        wait_s = (opens - dt.datetime.now(dt.UTC)).total_seconds() + 10.0
        opened = sut.wait_event("fix_session_opened", max(wait_s, 10.0), venue="simA")
        assert opened["session_start"] == opens.isoformat()
        with phase(closes, "the open phase's checks"):  # else the close could be unseen
            since = sut.mark()
            sut.wait_event("fix_logon", since=since, venue="simA")
            sut.wait_event("reconcile_plan", since=since, venue="simA")
            order = submit_when_open(c, "simA", "BUY", "10", price="101.00")  # crosses the ask
            c.wait_for_status(order.client_order_id, {OrderStatus.FILLED}, 10.0)
            # the OMS column comes with its next actor heartbeat
            assert eventually(lambda: venue_row(sut) == ("CONNECTED", "reconciled"), 5.0)
            assert sut.metric("tradepulse_venue_in_session", venue="simA") == 1
        # closed again: Logout, planned downtime
        since = sut.mark()
        wait_s = (closes - dt.datetime.now(dt.UTC)).total_seconds() + 10.0
        sut.wait_event("fix_session_closed", max(wait_s, 10.0), since=since, venue="simA")
        sut.wait_event("fix_session_logged_out", since=since, venue="simA")
        sut.wait_event("sim_logout", since=since, venue="simA")  # the venue got our Logout
        assert eventually(lambda: venue_row(sut) == ("OUT_OF_SESSION", "OUT_OF_SESSION"), 5.0)
        assert "outside its trading session" in eventually(lambda: out_of_session_reason(c), 5.0)
        no_outage_for(sut, TOLERANCE_S * 2)
        assert not sut.events("reconnect", since=since, venue="simA")
        stamp = sut.metric("tradepulse_last_heartbeat_timestamp_seconds", venue="simA")
        assert stamp is not None and time.time() - stamp < 2.0  # NoPositionHeartbeat stays quiet
