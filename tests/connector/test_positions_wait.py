"""A positions request that lets its answer wait longer for the OMS's acks
(`GetPositions.wait_s`, asked by a cold start again: actors/oms/opening_ask.py), with the
real connector and venue simulator processes and the test playing a slow OMS."""

from __future__ import annotations

import pytest

from protocol.messages import GetPositions, Positions, Side
from tests.connector.rig import ConnectorRig
from tests.connector.test_connector_process import market, venue_overrides

pytestmark = pytest.mark.integration


def test_an_answer_asked_to_wait_longer_names_the_oms_that_acked_late() -> None:
    """The OMS takes 1 s to ack an execution (its commit is slow), ten times the
    connector's own wait: a positions answer asked right after a fill with `wait_s` 4 waits
    for that ack, so its cut names the OMS's epoch, and it holds the fill."""
    rig = ConnectorRig(venue_overrides(), ack_delay_s=1.0)
    try:
        rig.start()
        rig.request(market("m1", Side.BUY, "10"))
        rig.pump_until(
            lambda: any(e.kind == "fill" and e.cl_ord_id == "m1" for e in rig.exec_msgs), 10
        )
        answer = rig.request(GetPositions(wait_s=4.0)).body
        assert isinstance(answer, Positions) and answer.source == "venue", answer
        assert answer.cut is not None and answer.cut.oms_epoch == rig.oms_epoch, answer.cut
        assert any(e.kind == "fill" and e.cl_ord_id == "m1" for e in rig.applied.values())
        assert [(p.symbol, p.qty) for p in answer.positions] == [("AAPL", 10)]
    finally:
        rig.close()
