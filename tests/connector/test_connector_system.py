"""The connector inside the whole system (supervisor, risk, OMS, venue sim): kill -9 of the
connector and venue session drops while a client trades; the OMS ends up agreeing with the
venue's own inspection."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from decimal import Decimal

import pytest

from protocol.client import ExecutionClient
from protocol.messages import TERMINAL_STATUSES, OrderStatus, OrderView
from tests.helpers import SystemUnderTest, eventually
from tests.system_ops import VENUE, inspect_venue, sim_fault, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal
ACKED = {OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, *TERMINAL_STATUSES}
OVERRIDES = {
    "venues": [
        {
            "name": VENUE,
            "target_comp_id": "SIMA",
            "reconnect": {"initial_s": 0.05, "factor": 2.0, "max_s": 0.5, "jitter": 0.2},
            "sim": {"reference_prices": {"AAPL": "100.00"}, "volatility_bps": 0.0},
        }
    ]
}


def submit(client: ExecutionClient, i: int) -> OrderView:
    """A crossing IOC order (buy 100.50 / sell 99.50), once the OMS has opened intake."""
    buy = i % 2 == 0
    return submit_when_open(
        client, VENUE, "BUY" if buy else "SELL", "600", "100.50" if buy else "99.50",
        tif="IOC", client_order_id=f"t{i:03d}", timeout_s=20.0,
    )  # fmt: skip


def test_kill9_of_the_connector_and_session_drops_while_trading(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """Crossing IOC orders stream in; the connector is killed -9 right after an order's
    executions started (the supervisor restarts it) and later the venue drops the session
    (the connector reconnects: `reconnect` logged, tradepulse_reconnects_total counted).
    Every order ends terminal at the OMS with the venue's cum qty, and the OMS positions
    equal the venue's."""
    sut = start_system(venues=(VENUE,), overrides=OVERRIDES)
    with ExecutionClient(sut.cfg, timeout_s=20.0) as client:
        submitted: list[str] = []
        for i in range(45):
            if i in (15, 30):
                # no PlaceOrder in flight at the OMS (its request to a dead connector would
                # wait out oms.request_timeout_s, then the resubmit grace); the last order's
                # executions may still be
                client.wait_for_status(submitted[-1], ACKED, timeout_s=10.0)
            if i == 15:
                mark = sut.mark()
                os.kill(sut.pid_of(f"connector.{VENUE}"), signal.SIGKILL)
                # a request the OMS sends into the dying connector's socket is lost and
                # waits out its timeout: submit again once the OMS knows the new one
                ready = sut.wait_event("actor_ready", since=mark, child=f"connector.{VENUE}")
                sut.wait_event("venue_state", since=mark, actor="oms",
                               connector_epoch=ready["child_epoch"])  # fmt: skip
            if i == 30:
                sim_fault(sut, VENUE, "drop_session")
            submitted.append(submit(client, i).client_order_id)

        def all_terminal() -> list[OrderView] | None:
            views = [client.get_order(c) for c in submitted]
            return views if all(v.status in TERMINAL_STATUSES for v in views) else None

        def stuck() -> str:
            views = [client.get_order(c) for c in submitted]
            return "\n".join(str(v) for v in views if v.status not in TERMINAL_STATUSES)

        views = eventually(all_terminal, 30.0, interval_s=0.1, message=stuck)
        oms_positions = {p.symbol: p.qty for p in client.positions(VENUE)}

    venue = inspect_venue(sut, VENUE)
    by_cl = {cl: o for o in venue["orders"] for cl in o["cl_ord_ids"]}
    for view in views:
        vo = by_cl[view.cl_ord_id]
        assert view.cum_qty == D(vo["cum_qty"]), (view, vo)
    venue_positions = {s: D(p["net_qty"]) for s, p in venue["positions"].items()}
    assert {s: q for s, q in oms_positions.items() if q} == {
        s: q for s, q in venue_positions.items() if q
    }
    sut.wait_event("reconnect", actor=f"connector.{VENUE}")  # read by a thread: wait
    # counted just after that line is written: wait for the count too
    eventually(lambda: (sut.metric("tradepulse_reconnects_total", venue=VENUE) or 0) >= 1, 5.0)
    assert sut.events("actor_restarting", child=f"connector.{VENUE}")
