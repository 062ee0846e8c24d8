"""The connector as a real process against a simulated venue that serves neither
OrderMassStatusRequest (AF) nor RequestForPositions (AN) (issue 11, finding 2): the venue
answers both with BusinessMessageReject 380=3. The connector's dialect is FIX 4.4's
(it expects both), so it learns it from the refusals; with the venue's dialect configured,
it never asks."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from protocol.messages import (
    Ack,
    ErrorCode,
    GetPositions,
    OpenOrdersRequest,
    Positions,
    RequestRejected,
    Side,
)
from tests.connector.rig import ConnectorRig
from tests.connector.test_connector_process import kinds, market, venue_overrides
from tests.helpers import eventually

pytestmark = pytest.mark.integration
D = Decimal
MINIMAL = {"serves_positions": False, "serves_mass_status": False}


def _sim(**dialect: Any) -> dict[str, Any]:
    sim = venue_overrides()["venues"][0]["sim"]
    return dict(sim, dialect=dialect)


def _ledger(rig: ConnectorRig) -> Positions:
    answer = rig.request(GetPositions()).body
    assert isinstance(answer, Positions), answer
    return answer


def _venue_positions(rig: ConnectorRig) -> list[tuple[str, Decimal]]:
    rows = rig.inspect().get("positions") or {}
    return [(s, D(str(p["net_qty"]))) for s, p in sorted(rows.items()) if D(str(p["net_qty"]))]


def test_refused_af_and_an_fall_back_for_the_rest_of_the_incarnation() -> None:
    """The first AF is refused (VENUE_REFUSED, logged `venue_mass_status_unavailable`
    once), the next is answered VENUE_REFUSED without asking; the first AN is refused and
    every GetPositions is answered from the fill ledger (source "ledger"), equal to the
    venue's own positions, across a kill -9 of the connector and the FIX resend after it."""
    rig = ConnectorRig(venue_overrides(sim=_sim(**MINIMAL)))
    try:
        rig.start()
        for _ in range(2):
            refused = rig.request(OpenOrdersRequest()).body
            assert isinstance(refused, RequestRejected), refused
            assert refused.code is ErrorCode.VENUE_REFUSED
        assert "does not serve" in refused.reason  # the second: not asked
        assert _ledger(rig).positions == [] and _ledger(rig).source == "ledger"
        # the connector's log lines reach the rig through a reader thread: wait for them
        eventually(lambda: rig.connector.events("venue_mass_status_unavailable"))
        eventually(lambda: rig.connector.events("venue_positions_unavailable"))
        assert isinstance(rig.request(market("m1", Side.BUY, "700")).body, Ack)
        assert isinstance(rig.request(market("m2", Side.SELL, "200")).body, Ack)
        rig.pump_until(lambda: kinds(rig, "m1").count("fill") == 2 and "fill" in kinds(rig, "m2"))
        rows = [(p.symbol, p.qty) for p in _ledger(rig).positions]
        assert rows == _venue_positions(rig) == [("AAPL", D(500))]
        first = rig.connector
        rig.kill9("connector")  # its log read to the end: logged once each in its life
        assert len(first.events("venue_mass_status_unavailable")) == 1
        assert len(first.events("venue_positions_unavailable")) == 1
        rig.spawn("connector")
        rig.pump_until(lambda: isinstance(rig.request(GetPositions()).body, Positions), 15)
        rows = [(p.symbol, p.qty) for p in _ledger(rig).positions]
        assert rows == [("AAPL", D(500))]
    finally:
        rig.close()


def test_the_configured_dialect_asks_the_venue_nothing() -> None:
    """`[venues.dialect]` says the venue serves neither: no AF / AN is sent (no refusal is
    logged), open orders are VENUE_REFUSED and positions come from the ledger."""
    rig = ConnectorRig(venue_overrides(dialect=MINIMAL, sim=_sim()))
    try:
        rig.start()
        refused = rig.request(OpenOrdersRequest()).body
        assert isinstance(refused, RequestRejected) and refused.code is ErrorCode.VENUE_REFUSED
        assert _ledger(rig).source == "ledger"
        assert rig.connector.events("venue_mass_status_unavailable") == []
        assert rig.connector.events("venue_positions_unavailable") == []
    finally:
        rig.close()
