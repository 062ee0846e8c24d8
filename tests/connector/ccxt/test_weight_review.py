"""Review of branch `weight` (rev2): defects proven against the real adapter and the
simulated exchange's limits (the `make_rig` of test_weight_budget: the user-data stream
refused, the REST poll carries everything).

- A new order waiting for the ORDERS count (acknowledged to the OMS as sent) is overtaken
  by a later cancel of it, or by a mass cancel (the kill switch): the create goes out
  afterwards and the order rests at the exchange.
- A 418 whose Retry-After is days holds every request, the ping included: the session
  stays up and keeps taking orders it cannot send, instead of reporting the venue down.
- The poll's share is measured against all use of the budget: a steady order flow above
  half of it starves the poll (and the stream-down ping) for as long as it lasts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from actors.connector.adapter import RequestFailed
from actors.connector.ccxt.exchange import BACKGROUND_SHARE
from actors.connector.ccxt.weight import WeightBudget
from protocol.messages import OrdType, PlaceOrder, Side, TimeInForce
from protocol.venue_messages import CancelOnVenue
from tests.connector.ccxt.test_weight_budget import PRICES, _Rig, _rig

D = Decimal


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., _Rig]]:
    gens: list[Iterator[_Rig]] = []

    def make(weight_per_min: int = 6000, poll_interval_s: float = 0.05, **sim_kw: Any) -> _Rig:
        gen = _rig(tmp_path, weight_per_min, poll_interval_s, **sim_kw)
        gens.append(gen)
        return next(gen)

    yield make
    for gen in gens:
        gen.close()


def _order(i: int, symbol: str = "BTC/USDT") -> PlaceOrder:
    return PlaceOrder(
        cl_ord_id=f"r-{i:03d}", symbol=symbol, side=Side.BUY, qty=D("0.01"),
        order_type=OrdType.LIMIT, price=PRICES[symbol], tif=TimeInForce.GTC,
    )  # fmt: skip


def _send(rig: _Rig, n: int) -> list[str]:
    """n orders acknowledged to the OMS (durable, "sent") in one turn, not waited for."""
    acks: list[Any] = []
    for i in range(n):
        rig.adapter.place(_order(i), acks.append)
    rig.adapter.flush()
    assert acks == [None] * n
    return [f"r-{i:03d}" for i in range(n)]


def _settled(rig: _Rig) -> bool:
    return not rig.adapter.flows.inflight


def _open_at_exchange(rig: _Rig) -> set[str]:
    return {o.chain[-1] for o in rig.exchange.open_orders(None)}


def test_a_cancel_does_not_overtake_its_order_waiting_for_the_order_count(
    make_rig: Callable[..., _Rig],
) -> None:
    """ORDERS 5 per 10 s (budget 4): the 5th order waits ~10 s. The OMS cancels it
    meanwhile; the cancel (not paced by ORDERS) must not go out first and leave the order
    resting after its create is sent."""
    rig = make_rig(orders_per_10s=5)
    ids = _send(rig, 5)
    rig.run_until(lambda: len(_open_at_exchange(rig)) == 4)
    last = ids[-1]
    assert last in rig.adapter.flows.inflight  # acked, waiting for the order count
    done: list[Any] = []
    rig.adapter.cancel(
        CancelOnVenue(cl_ord_id="c-1", orig_cl_ord_id=last, symbol="BTC/USDT", side=Side.BUY,
                      qty=D("0.01")),
        done.append,
    )  # fmt: skip
    rig.run_until(lambda: done and _settled(rig), 30.0)
    assert last not in _open_at_exchange(rig), "cancelled by the OMS, resting at the exchange"


def test_a_mass_cancel_leaves_no_order_waiting_to_be_sent(
    make_rig: Callable[..., _Rig],
) -> None:
    """The kill switch's mass cancel while new orders wait for the ORDERS count: once it
    is answered (accepted) no order of ours may still go out and rest."""
    rig = make_rig(orders_per_10s=5)
    _send(rig, 6)
    rig.run_until(lambda: len(_open_at_exchange(rig)) == 4)
    assert rig.adapter.flows.inflight  # two acked orders not sent yet
    done: list[Any] = []
    rig.adapter.mass_cancel(done.append)
    # its second pass too (a submit was still on the wire as it began): no request is
    # left in flight at the rig's teardown
    rig.run_until(lambda: done and _settled(rig) and not _mass_cancel_running(rig), 30.0)
    assert done == [True]
    assert not _open_at_exchange(rig), "orders went out after the mass cancel"


def _mass_cancel_running(rig: _Rig) -> bool:
    return any(t.get_name() == "mass_cancel" for t in rig.adapter._tasks)


def test_a_418_ban_of_days_reports_the_venue_down(make_rig: Callable[..., _Rig]) -> None:
    """Another client on the IP earns a 418 (ban 3 days); the connector's next request gets
    it. Nothing can be sent for 3 days: the venue must go down (the OMS stops sending),
    not stay up taking orders that wait for days."""
    rig = make_rig(weight_per_min=400, ip_ban_s=259_200.0, ip_ban_after=1)

    async def other_client() -> None:
        async with aiohttp.ClientSession() as s:
            for _ in range(22):  # exchangeInfo 20 each: the 21st is 429, the 22nd 418
                async with s.get(rig.url + "/api/v3/exchangeInfo") as r:
                    await r.read()

    rig.adapter.bridge.run_until_complete(other_client(), 10.0)
    assert rig.server.limiter.refused.get(418)
    rig.loop.run_until(lambda: rig.adapter.rest.budget.hold_s() > 3600, 10.0)  # it heard it
    rig.loop.run_until(lambda: not rig.adapter.is_active, 15.0)  # branch: up for 3 days
    answers: list[Any] = []
    rig.adapter.place(_order(50), answers.append)  # branch: acked "sent", held for 3 days
    assert answers and isinstance(answers[0], RequestFailed)


def test_a_steady_order_flow_above_half_the_budget_does_not_starve_the_poll() -> None:
    """Orders, cancels and the OMS's queries spend 62.5 % of the budget, steadily (5
    weight every 0.1 s: 3,000 of 4,800 a minute, each fits at once): the poll's request
    (background, `Rest._weigh_in`'s share), asking from the first full minute on, must
    still go within two minutes; the branch
    lets it go only while the whole budget's use is under half, so it waits forever (the
    stream-down ping too: the session never ends, reconciliation is blind)."""
    now = [0.0]
    budget = WeightBudget(0.8, clock=lambda: now[0])
    poll_went_at = None
    for _ in range(1800):  # 180 s in steps of 0.1 s; the poll asks from 60 s on
        assert budget.wait_s(5) == 0.0  # the order flow is never held back
        budget.take(5)
        budget.done(5)
        asks = now[0] >= 60.0 and poll_went_at is None
        if asks and budget.wait_s(6, BACKGROUND_SHARE) == 0.0:
            poll_went_at = now[0]
            budget.take(6)
            budget.done(6)
        now[0] += 0.1
    assert poll_went_at is not None and poll_went_at < 180.0
