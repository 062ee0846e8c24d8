"""A create that lands late, with the kill switch engaged meanwhile, through the real system
(supervisor, risk, OMS, the ccxt connector, the local exchange as real processes).

The exchange holds the create (`delay_create_ms`: slow on its way) past the connector's
request timeout, and takes it within its recvWindow. Meanwhile the OMS's passes ask the
order's status: "no such order", while a create of it may still arrive, is answered
`pending`, so the OMS neither resubmits it nor, with the kill switch engaged, rejects it
as never sent (`order_dropped_unsent`) while it then rests at the exchange, unmanaged.
Once the create lands the OMS follows it (ACCEPTED) and, the kill switch engaged, risk
sweeps the venue again (`kill_switch_cancel_round`, why `live_order`): the order ends
CANCELLED at the exchange and in the OMS, the switch still engaged (review rev16: the
create landed after the engagement's mass cancel and its sweep, and rested there for good,
ACCEPTED: a GTC buy that could still fill)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from protocol.client import ExecutionClient
from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.ccxt_support import BTC, VENUE, CcxtSystem, overrides, running, settle
from tests.system_ops import client, exchange_fault, inspect_exchange, kill_switch, submit_when_open

pytestmark = pytest.mark.integration
LOW_BID = "59000.00"
RECV_WINDOW_MS = 10_000
DELAY_CREATE_MS = 8_500  # lands within the recvWindow, after a pass or two of the OMS
EXCHANGE = f"exchangesim.{VENUE}"


@pytest.fixture(scope="module")
def sut() -> Iterator[CcxtSystem]:
    over = overrides(ccxt={"recv_window_ms": RECV_WINDOW_MS})
    # the OMS's passes over an order without a venue answer: every 4 s, the first one 4 s
    # after the submit, so the kill switch is engaged before it (and it comes before the
    # create lands)
    over["oms"]["request_timeout_s"] = 4.0
    yield from running(CcxtSystem(overrides=over, crash_at=()))


@pytest.fixture(scope="module")
def c(sut: CcxtSystem) -> Iterator[ExecutionClient]:
    with client(sut) as ec:
        yield ec


def _at_exchange(sut: CcxtSystem, coid: str) -> dict[str, Any] | None:
    orders = inspect_exchange(sut, VENUE, cli=False)["orders"]
    return next((o for o in orders if o["client_order_id"] == coid), None)


@pytest.mark.timeout(120)
def test_a_create_landing_late_with_the_kill_switch_engaged_is_followed_and_cancelled(
    sut: CcxtSystem, c: ExecutionClient
) -> None:
    coid = "late-create"
    since = sut.mark()
    exchange_fault(sut, VENUE, "delay_create_ms", DELAY_CREATE_MS)
    submit_when_open(c, VENUE, "BUY", "0.01", LOW_BID, client_order_id=coid, tif="GTC",
                     symbol=BTC)  # fmt: skip
    sut.wait_event("sim_create_delayed", 10.0, since=since)  # on its way, held
    sut.cli("kill-switch", "engage", "--reason", "desk halt while a create is on its way")
    assert kill_switch(sut)["engaged"]
    sweep = sut.wait_event("kill_switch_cancel_round", 10.0, since=since, why="sweep")
    sut.wait_event("ccxt_submit_failed", 10.0, since=since, cl_ord_id=coid)  # answer lost
    sut.wait_event("reconcile_skipped_in_flight", 15.0, since=since)  # asked: pending
    eventually(
        lambda: c.get_order(coid).status is OrderStatus.CANCELLED, 40.0,
        message=lambda: f"{c.get_order(coid)}\n{sut.describe()}",
    )  # fmt: skip
    exchange_fault(sut, VENUE, "clear")
    assert kill_switch(sut)["engaged"]
    assert sut.events("kill_switch_cancel_round", since=since, why="live_order")
    landed = _at_exchange(sut, coid)  # after the mass cancel and its sweep, and not open
    swept_ms = datetime.fromisoformat(sweep["ts"]).timestamp() * 1000
    assert landed is not None and landed["created_ms"] > swept_ms, (landed, sweep)
    assert not landed["is_open"], landed
    assert not sut.events("order_dropped_unsent", since=since, client_order_id=coid)
    assert not sut.events("order_resubmitted", since=since, client_order_id=coid)
    assert not sut.events("reconcile_escalation", since=since, client_order_id=coid)
    settle(c, sut, [coid])  # the OMS agrees with the exchange: the order cancelled there
