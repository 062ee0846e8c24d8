"""A venue that does not serve RequestForPositions (issue 11, finding 2, the AN half): the
simulator with `[venues.sim.dialect] serves_positions = false` answers AN with
BusinessMessageReject 380=3, as such a venue does. Reconciliation must not depend on venue
positions: the start-up pass completes without them (`venue_positions_unavailable`),
intake opens and orders are sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.oms_support import overrides, start, systems
from tests.system_ops import VENUE, client, submit_when_open

pytestmark = pytest.mark.integration


def test_orders_flow_to_a_venue_that_refuses_position_requests(short_tmp: Path) -> None:
    with systems() as started:
        no_an = overrides(dialect={"serves_positions": False})
        sut = start(started, root=short_tmp, overrides=no_an)
        with client(sut) as c:
            submit_when_open(c, VENUE, price="95.00", client_order_id="an-less-1", timeout_s=15)
            c.wait_for_status("an-less-1", {OrderStatus.ACCEPTED})
        sut.wait_event("venue_positions_unavailable", 5.0, actor="oms")
        eventually(lambda: sut.actor("oms")["info"]["venues"][VENUE] == "reconciled", 10.0)
        refused = [e for e in sut.events("reconcile_failed", actor="oms") if "AN" in e["reason"]]
        assert refused == []
