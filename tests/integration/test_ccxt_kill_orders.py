"""The kill-switch engaged while new orders wait at the ccxt connector's gate for the
exchange's ORDERS count (the local exchange enforcing its order limit, here 5 per 10 s,
not lifted as the chaos harness and the bench lift it): every order the OMS was told is
sent either reached the exchange and is cancelled there, or was withdrawn before it went
out; nothing stays live, and the OMS says CANCELLED for each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors.connector.ccxt.gate import WITHDRAWN
from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.ccxt_support import BTC, VENUE, CcxtSystem, overrides
from tests.system_ops import client, inspect_exchange, submit_when_open

pytestmark = pytest.mark.integration
LOW_BID = "59000.00"  # below every ask: a buy here rests
ORDERS = 7  # ORDERS 5 per 10 s, budget 4: 3 wait for the count


@pytest.fixture
def sut() -> Iterator[CcxtSystem]:
    system = CcxtSystem(overrides=overrides(sim={"orders_per_10s": 5}))
    try:
        system.start(timeout_s=30.0)
        yield system
    finally:
        system.destroy()


def test_the_kill_switch_leaves_nothing_live_with_orders_waiting_for_the_order_count(
    sut: CcxtSystem,
) -> None:
    ids = [f"kq-{i}" for i in range(ORDERS)]
    with client(sut) as c:
        since = sut.mark()
        for coid in ids:
            submit_when_open(c, VENUE, "BUY", "0.01", LOW_BID, client_order_id=coid,
                             tif="GTC", symbol=BTC)  # fmt: skip
        sut.wait_event("ccxt_weight_wait", 10.0, since=since)  # some wait for the count
        done = sut.cli("kill-switch", "engage", "--reason", "halt with orders queued")
        assert done.returncode == 0, done.stdout + done.stderr
        sut.wait_event("ccxt_mass_cancel", 10.0, since=since, accepted=True)

        def all_cancelled() -> bool:
            views = {v.client_order_id: v for v in c.list_orders(VENUE)}
            return all(views[i].status is OrderStatus.CANCELLED for i in ids if i in views)

        eventually(all_cancelled, 20.0, interval_s=0.1, message=sut.describe)
        views = {v.client_order_id: v for v in c.list_orders(VENUE)}
        assert {views[i].status for i in ids} == {OrderStatus.CANCELLED}
    orders = {o["client_order_id"]: o for o in inspect_exchange(sut, VENUE)["orders"]}
    withdrawn = {e["cl_ord_id"] for e in sut.events("ccxt_submit_withdrawn", since=since)}
    assert withdrawn, "no order was waiting at the gate when the kill-switch engaged"
    assert not withdrawn & set(orders), "a withdrawn order reached the exchange"
    assert set(ids) == withdrawn | set(orders)  # each one accounted for
    assert all(views[i].reason.startswith(WITHDRAWN) for i in withdrawn)  # the checker's
    assert not [o for o in orders.values() if o["is_open"]]
    assert {o["status"] for o in orders.values()} == {"CANCELED"}
