"""Review rev16 (branch `pend`): the kill switch leaves an order resting at the exchange.

A create is on its way to the exchange (`delay_create_ms`: held 8.5 s, within the 10 s
recvWindow) when the operator engages the kill switch. Risk's mass cancel (at the
engagement, and its sweep 1 s later) finds nothing open; the create then lands and the
order rests at the exchange. The OMS follows it (`pending`, then ACCEPTED:
test_ccxt_pending_create.py), but nothing cancels it: with the kill switch engaged an
order stays live at the exchange, for good (a GTC limit buy that can still fill).

Expected: once the late create has landed, the order is cancelled at the exchange (and
the OMS has it CANCELLED) while the kill switch stays engaged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from protocol.client import ExecutionClient
from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.ccxt_support import BTC, VENUE, CcxtSystem, overrides, running
from tests.system_ops import client, exchange_fault, inspect_exchange, kill_switch, submit_when_open

pytestmark = pytest.mark.integration
LOW_BID = "59000.00"
RECV_WINDOW_MS = 10_000
DELAY_CREATE_MS = 8_500  # lands within the recvWindow, after the mass cancel and its sweep
LANDED_S = 30.0  # the create lands ~8.5 s after it went out
CANCELLED_WITHIN_S = 30.0  # generous: several OMS passes and kill-switch rounds could run


@pytest.fixture(scope="module")
def sut() -> Iterator[CcxtSystem]:
    over = overrides(ccxt={"recv_window_ms": RECV_WINDOW_MS})
    over["oms"]["request_timeout_s"] = 4.0
    yield from running(CcxtSystem(overrides=over, crash_at=()))


@pytest.fixture(scope="module")
def c(sut: CcxtSystem) -> Iterator[ExecutionClient]:
    with client(sut) as ec:
        yield ec


def _at_exchange(sut: CcxtSystem, coid: str) -> dict[str, Any] | None:
    orders = inspect_exchange(sut, VENUE, cli=False)["orders"]
    return next((o for o in orders if o["client_order_id"] == coid), None)


@pytest.mark.timeout(150)
def test_an_order_landing_after_the_kill_switch_s_mass_cancel_does_not_stay_at_the_exchange(
    sut: CcxtSystem, c: ExecutionClient
) -> None:
    coid = "ks-late"
    since = sut.mark()
    exchange_fault(sut, VENUE, "delay_create_ms", DELAY_CREATE_MS)
    submit_when_open(c, VENUE, "BUY", "0.01", LOW_BID, client_order_id=coid, tif="GTC",
                     symbol=BTC)  # fmt: skip
    sut.wait_event("sim_create_delayed", 10.0, since=since)  # on its way, held
    sut.cli("kill-switch", "engage", "--reason", "desk halt while a create is on its way")
    assert kill_switch(sut)["engaged"]
    sweep = sut.wait_event("kill_switch_cancel_round", 10.0, since=since, why="sweep")
    landed = eventually(lambda: _at_exchange(sut, coid), LANDED_S, interval_s=0.1)
    exchange_fault(sut, VENUE, "clear")
    # it landed after the mass cancel and its sweep (not "it rests": cancelled as it should
    # be, it may be cancelled before this poll reads it open)
    swept_ms = datetime.fromisoformat(sweep["ts"]).timestamp() * 1000
    assert landed["created_ms"] > swept_ms, (landed, sweep)

    def cancelled() -> bool:
        order = _at_exchange(sut, coid)
        return order is not None and not order["is_open"]

    eventually(
        cancelled, CANCELLED_WITHIN_S, interval_s=0.2,
        message=lambda: (
            f"the order rests at the exchange with the kill switch engaged: "
            f"{_at_exchange(sut, coid)}; OMS {c.get_order(coid).status}; "
            f"kill switch {kill_switch(sut)}"
        ),
    )  # fmt: skip
    assert kill_switch(sut)["engaged"]
    assert eventually(lambda: c.get_order(coid).status is OrderStatus.CANCELLED, 10.0)
