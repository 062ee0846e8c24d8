"""Venues without OrderMassStatusRequest (AF) and RequestForPositions (AN) through the real
system (issue 11, finding 2): the simulator refuses both (BusinessMessageReject 380=3) or
answers an empty AF with silence, as such venues do.

- The position heartbeat of a venue that refuses AN stays quiet while its session is up
  (before: the connector answered VENUE_REFUSED, the heartbeat counted that as missing and
  engaged the kill-switch after `outage_tolerance_s`); it compares the connector's fill
  ledger with the OMS instead.
- Orders flow to a venue with neither AF nor AN, and after a kill -9 of the connector the
  OMS reconciles by OrderStatusRequest: nothing duplicated, nothing stuck PENDING_SUBMIT.
- A venue silent on an empty AF reconciles with the dialect "silent", and keeps failing
  (`reconcile_failing`, visible in status) with "report"."""

from __future__ import annotations

import os
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from protocol.control import ControlUnavailable
from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.oms_support import overrides, settle, start, systems
from tests.system_ops import VENUE, client, kill_switch, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal
MINIMAL = {
    "serves_positions": False,
    "serves_mass_status": False,
    "empty_mass_status": "silent",
    "empty_mass_status_wait_s": 0.5,
}


def _with(cfg: dict[str, Any], **venue: Any) -> dict[str, Any]:
    """`cfg` with venue-level keys (e.g. `dialect`, for connector and simulator alike)."""
    cfg["venues"] = [cfg["venues"][0] | venue]
    return cfg


def test_heartbeat_stays_quiet_for_a_venue_that_refuses_an_while_its_session_is_up(
    short_tmp: Path,
) -> None:
    """The venue refuses AN (380=3); the connector's dialect expects AN (FIX 4.4). With a
    1 s outage tolerance the heartbeat goes 3 s and more (> 2 tolerances) without engaging
    the kill-switch: the connector answers from its fill ledger (source "ledger"), which
    equals the OMS's position after a fill."""
    cfg = overrides(dialect={"serves_positions": False})
    cfg["heartbeat"] = {
        "interval_s": 0.2, "venue_positions_interval_s": 0.4, "divergence_beats": 3,
        "missing_intervals": 2, "engage_on_missing": True,
    }  # fmt: skip
    cfg["oms"] |= {"outage_tolerance_s": 1.0}
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=cfg)
        with client(sut) as c:
            order = submit_when_open(c, VENUE, "BUY", "10", price="101.00", timeout_s=15)
            c.wait_for_status(order.client_order_id, {OrderStatus.FILLED})
        since = sut.mark()
        beats = sut.actor("heartbeat")["info"]["beats"]
        eventually(lambda: sut.actor("heartbeat")["info"]["beats"] >= beats + 15, 15.0)
        assert not kill_switch(sut)["engaged"]
        assert not sut.events("kill_switch_requested")
        compared = eventually(  # beats counted in status; their lines read by a thread
            lambda: [e for e in sut.events("heartbeat", since=since) if e.get("source")], 10.0
        )
        assert all(e["source"] == "ledger" for e in compared)
        assert compared[-1]["venue_positions"] == {"AAPL": "10"}
        assert compared[-1]["diff"] == {}


def test_orders_flow_and_reconcile_by_h_after_a_connector_kill9(short_tmp: Path) -> None:
    """[venues.dialect] without AF or AN (connector and simulator agree): orders flow; a
    kill -9 of the connector while orders rest and fill is followed by a pass that asks
    every open order by H (no AF, no AN reaches the venue); afterwards the OMS equals the
    venue, no order was sent twice, none is PENDING_SUBMIT."""
    cfg = _with(overrides(), dialect=MINIMAL)
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=cfg)
        with client(sut) as c:
            ids = [
                submit_when_open(c, VENUE, "BUY", "5", price=px, timeout_s=15).client_order_id
                for px in ("95.00", "96.00", "101.00")
            ]
            settle(c, sut, ids, positions=True)
            since = sut.mark()
            os.kill(sut.pid_of(f"connector.{VENUE}"), signal.SIGKILL)
            more = [
                submit_when_open(c, VENUE, "SELL", "3", price=px, timeout_s=20).client_order_id
                for px in ("99.00", "104.00")
            ]
            final = settle(c, sut, ids + more, positions=True)
            sut.wait_event("venue_open_orders_unavailable", 10.0, since=since, actor="oms")
        assert not [v for v in final.oms.values() if v.status is OrderStatus.PENDING_SUBMIT]
        assert final.venue["rejects"] == [] and len(final.venue["orders"]) == 5
        heads = {o["cl_ord_ids"][0] for o in final.venue["orders"]}
        assert len(heads) == 5  # each order reached the venue once (settle checks it too)
        received = sut.actor(f"venuesim.{VENUE}")["info"]["received"]  # by MsgType
        assert received.get("H", 0) > 0 and not {"AF", "AN"} & set(received), received


@pytest.mark.parametrize("handling", ["silent", "report"])
def test_a_venue_silent_on_an_empty_af(short_tmp: Path, handling: str) -> None:
    """The simulator answers an AF that matches no order with nothing. With the dialect
    "silent" the start-up pass completes (no open orders) and orders flow; with "report"
    every AF times out: the venue shows `reconcile_failing` in status, intake stays shut."""
    silent = {"empty_mass_status": "silent", "empty_mass_status_wait_s": 0.5}
    cfg = _with(overrides(dialect=silent), dialect=silent | {"empty_mass_status": handling})
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=cfg, wait_ready=handling == "silent")

        def venue_status() -> str:
            try:
                return str(sut.actor("oms")["info"]["venues"][VENUE])
            except (ControlUnavailable, KeyError):  # not up yet
                return ""

        if handling == "silent":
            eventually(lambda: venue_status() == "reconciled", 15.0)
            with client(sut) as c:
                submit_when_open(c, VENUE, price="95.00", client_order_id="s-1", timeout_s=15)
                c.wait_for_status("s-1", {OrderStatus.ACCEPTED})
        else:
            # a pass before the logon fails VENUE_DOWN first (seen under load): wait for the
            # state a pass that reached the silent venue leaves
            eventually(
                lambda: (
                    venue_status().startswith("reconcile_failing")
                    and ("TIMEOUT" in venue_status() or "no answer" in venue_status())
                ),
                30.0,
                message=lambda: venue_status(),
            )
