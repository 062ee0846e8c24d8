"""kill -9 in the middle of a batch of executions (`ExecReports`, one connector loop
turn's executions in one message), with real processes: a market buy of 2000 sweeps four
quote levels, so the venue's acceptance and four fills reach the connector in one read and
go to the OMS as one batch. The OMS killed after the batch's first execution is durable,
before its ack; or the connector killed after sending the batch, before its outbox holds
it. Either way every execution is applied exactly once: the order ends FILLED 2000 @
100.025 like the venue, position 2000, each fill journalled once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.oms_support import OmsSystem, overrides, sweep_through_crash, systems
from tests.system_ops import VENUE

pytestmark = pytest.mark.integration
D = Decimal
CONNECTOR = f"connector.{VENUE}"


def test_kill9_of_the_oms_inside_a_batch_applies_each_execution_once() -> None:
    """The OMS dies with the batch's first execution committed and none acked; the
    connector sends the batch again to the next OMS, which applies only the rest."""
    point = "mid_exec_batch"
    with systems() as started:
        sut = OmsSystem(crash_at=[point], overrides=overrides())
        started.append(sut)
        sut.start()
        sweep_through_crash(sut, "oms", point)


def test_kill9_of_the_connector_after_sending_a_batch_applies_each_execution_once() -> None:
    """The connector dies with the batch sent to the OMS but not in its outbox (nor next-in
    past it): the venue sends the executions again at the next logon, and the OMS, which
    may have applied them already, applies each exec id once."""
    point = "after_exec_batch_sent"
    with systems() as started:
        sut = OmsSystem(crash_at=[f"{CONNECTOR}:{point}"], overrides=overrides())
        started.append(sut)
        sut.start()
        sweep_through_crash(sut, CONNECTOR, point)
