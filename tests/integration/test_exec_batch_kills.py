"""kill -9 in the middle of a batch of executions (`ExecReports`, one connector loop
turn's executions in one message), with real processes: a market buy of 2000 sweeps four
quote levels, so the venue's acceptance and four fills reach the connector in one read and
go to the OMS as one batch. The OMS killed after the batch's first execution is durable,
before its ack; or the connector killed after sending the batch, before its outbox holds
it. Either way every execution is applied exactly once: the order ends FILLED 2000 @
100.025 like the venue, position 2000, each fill journalled once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from protocol import paths
from protocol.messages import OrderStatus
from tests.integration.oms_support import OmsSystem, check_journal_fills, overrides, systems
from tests.system_ops import VENUE, client, find_venue_order, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal
CONNECTOR = f"connector.{VENUE}"


def _sweep_and_check(sut: OmsSystem, actor: str, point: str, arm: Any) -> None:
    with client(sut) as c:
        submit_when_open(c, VENUE, client_order_id="warm-1")
        from tests.integration.oms_support import settle

        settle(c, sut, ["warm-1"])
        since = sut.mark()
        arm()
        submit_when_open(c, VENUE, qty="2000", price=None, client_order_id="sweep-1")
        sut.wait_event("injected_crash", 15.0, since=since, actor=actor, point=point)
        sut.wait_event("actor_ready", 15.0, since=since, child=actor)
        final = settle(c, sut, ["warm-1", "sweep-1"])
    sweep = final.oms["sweep-1"]
    assert (sweep.status, sweep.cum_qty) == (OrderStatus.FILLED, D(2000))
    assert sweep.avg_px == D("100.025")
    assert len(find_venue_order(final.venue, "sweep-1")["fills"]) == 4  # type: ignore[index]
    assert final.oms_positions == {"AAPL": D(2000)}
    check_journal_fills(sut, final.oms)


def test_kill9_of_the_oms_inside_a_batch_applies_each_execution_once() -> None:
    """The OMS dies with the batch's first execution committed and none acked; the
    connector sends the batch again to the next OMS, which applies only the rest."""
    point = "mid_exec_batch"
    with systems() as started:
        sut = OmsSystem(crash_at=[point], overrides=overrides())
        started.append(sut)
        sut.start()
        _sweep_and_check(sut, "oms", point, lambda: sut.arm(point))


def test_kill9_of_the_connector_after_sending_a_batch_applies_each_execution_once() -> None:
    """The connector dies with the batch sent to the OMS but not in its outbox (nor next-in
    past it): the venue sends the executions again at the next logon, and the OMS, which
    may have applied them already, applies each exec id once."""
    point = "after_exec_batch_sent"
    env = {"TP_FAULT_CRASH_AT": f"{CONNECTOR}:{point}"}
    with systems() as started:
        sut = OmsSystem(overrides=overrides(), env=env)
        started.append(sut)
        marker = paths.crash_marker(sut.state_dir, CONNECTOR, point)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("disarmed by the test\n")
        sut.start()
        _sweep_and_check(sut, CONNECTOR, point, marker.unlink)
