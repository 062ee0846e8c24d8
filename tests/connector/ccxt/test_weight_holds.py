"""The ccxt connector when the exchange's limits would hold it long (the rig of
test_weight_budget: the real adapter and exchange server, the user-data stream refused):
a Retry-After past `Rest.max_hold_s` ends the session with its reason and no connect
goes out until it is over; a new order that waited its bound at the gate is refused as
never sent, never sent later."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from actors.connector.adapter import StatusResult
from protocol.messages import (
    OrdType,
    PlaceOrder,
    QueriedOrder,
    ReplaceOnVenue,
    Side,
    TimeInForce,
)
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


def _send(rig: _Rig, n: int) -> list[str]:
    acks: list[Any] = []
    for i in range(n):
        order = PlaceOrder(
            cl_ord_id=f"h-{i:03d}", symbol="BTC/USDT", side=Side.BUY, qty=D("0.01"),
            order_type=OrdType.LIMIT, price=PRICES["BTC/USDT"], tif=TimeInForce.GTC,
        )  # fmt: skip
        rig.adapter.place(order, acks.append)
    rig.adapter.flush()
    assert acks == [None] * n
    return [f"h-{i:03d}" for i in range(n)]


def _at_exchange(rig: _Rig) -> set[str]:
    return {o.chain[-1] for o in rig.exchange.orders.values()}


def test_a_ban_ends_the_session_and_no_order_or_connect_goes_out_until_it_is_over(
    make_rig: Callable[..., _Rig],
) -> None:
    """Two orders wait for the ORDERS count when another client on the IP earns a 418 of
    3 days. The session ends, its reason the ban; the two orders are never sent (reported
    "unsent", as at any session end); a connect meanwhile fails at once with the same
    reason, sending nothing."""
    rig = make_rig(weight_per_min=400, ip_ban_s=259_200.0, ip_ban_after=1, orders_per_10s=5)
    ids = _send(rig, 6)
    rig.run_until(lambda: len(_at_exchange(rig)) == 4)

    async def other_client() -> None:
        async with aiohttp.ClientSession() as s:
            for _ in range(22):  # exchangeInfo 20 each: the 21st is 429, the 22nd 418
                async with s.get(rig.url + "/api/v3/exchangeInfo") as r:
                    await r.read()

    rig.adapter.bridge.run_until_complete(other_client(), 10.0)
    rig.loop.run_until(lambda: rig.listener.downs, 15.0)
    reason, was_up = rig.listener.downs[0]
    assert was_up and ("IP banned until" in reason or "rate limited for" in reason), reason
    rig.loop.run_until(lambda: rig.adapter.is_idle, 10.0)
    assert _at_exchange(rig) == set(ids[:4])  # the waiting two were never sent
    unsent = sorted((e.cl_ord_id, e.kind) for e in rig.listener.execs if e.cl_ord_id in ids[4:])
    assert unsent == [(c, "unsent") for c in ids[4:]]  # as at any end (rev21 #2)
    seen = dict(rig.server.limiter.refused), len(rig.weights)
    rig.adapter.connect()
    rig.loop.run_until(lambda: len(rig.listener.downs) == 2, 10.0)
    reason, was_up = rig.listener.downs[1]
    assert not was_up and reason.startswith(("IP banned until", "rate limited for")), reason
    assert (dict(rig.server.limiter.refused), len(rig.weights)) == seen  # nothing went out


def test_an_order_held_past_its_bound_is_refused_as_never_sent(
    make_rig: Callable[..., _Rig],
) -> None:
    """ORDERS 5 per 10 s (budget 4) and a bound of 0.5 s at the gate: of 6 orders at
    once, 4 go and 2 are refused (REJECTED, "not sent") after the bound, never sent
    afterwards (the ORDERS window passes)."""
    rig = make_rig(orders_per_10s=5)
    rig.adapter.rest.max_order_wait_s = 0.5
    ids = _send(rig, 6)

    def refused() -> set[str]:
        return {e.cl_ord_id for e in rig.listener.execs if e.kind == "rejected"}

    rig.run_until(lambda: refused() == set(ids[4:]), 10.0)
    assert all(
        "not sent" in e.text for e in rig.listener.execs if e.kind == "rejected"
    )  # fmt: skip
    rig.run_until(lambda: rig.adapter.rest.orders.used() == 0, 15.0)  # the window passed
    rig.run_until(lambda: not rig.adapter.flows.inflight, 5.0)
    assert _at_exchange(rig) == set(ids[:4])


def test_an_order_that_cannot_leave_within_the_bound_is_refused_at_once(
    make_rig: Callable[..., _Rig],
) -> None:
    """ORDERS 5 per 10 s (budget 4): of 9 orders at once, 4 go, 4 wait for the count to
    free (~10 s) and the 9th, behind a full count of waiting orders (it could leave only
    in the window after, past the bound), is refused as never sent at once, while the
    four still wait; it never reaches the exchange."""
    rig = make_rig(orders_per_10s=5)
    ids = _send(rig, 9)

    def refused() -> set[str]:
        return {e.cl_ord_id for e in rig.listener.execs if e.kind == "rejected"}

    rig.run_until(lambda: refused(), 10.0)
    assert refused() == {ids[8]}
    assert set(ids[4:8]) <= rig.adapter.flows.inflight  # still waiting for the count
    assert [e.text for e in rig.listener.execs if e.kind == "rejected"][0].startswith(
        "not sent: 4 new orders wait"
    )
    assert ids[8] not in _at_exchange(rig)


def test_a_status_query_never_says_unseen_of_an_order_waiting_to_go_out(
    make_rig: Callable[..., _Rig],
) -> None:
    """The OMS asks the status of an order waiting for the ORDERS count (its request timed
    out there): the answer waits for the submit and shows the order at the exchange, not
    "never seen" (on which the OMS resubmits it, or rejects it as never sent while it then
    goes out)."""
    rig = make_rig(orders_per_10s=5)
    ids = _send(rig, 5)
    rig.run_until(lambda: len(_at_exchange(rig)) == 4)
    assert ids[4] in rig.adapter.flows.inflight
    answers: list[Any] = []
    rig.adapter.order_status(
        [QueriedOrder(cl_ord_id=ids[4], symbol="BTC/USDT", side=Side.BUY)], answers.append
    )
    rig.run_until(lambda: answers, 20.0)
    result = answers[0]
    assert isinstance(result, StatusResult), result
    assert not result.unknown and [o.cl_ord_id for o in result.orders] == [ids[4]]


def test_a_replace_waits_for_its_order_waiting_to_go_out(
    make_rig: Callable[..., _Rig],
) -> None:
    """A replace of an order waiting for the ORDERS count: its cancel step does not go
    first (-2011, the replace refused, the order going out afterwards and resting): the
    order goes out, then is replaced; only the new order rests."""
    rig = make_rig(orders_per_10s=5)
    ids = _send(rig, 5)
    rig.run_until(lambda: len(_at_exchange(rig)) == 4)
    assert ids[4] in rig.adapter.flows.inflight
    acks: list[Any] = []
    rig.adapter.replace(
        ReplaceOnVenue(
            cl_ord_id=f"{ids[4]}.r1", orig_cl_ord_id=ids[4], symbol="BTC/USDT",
            side=Side.BUY, qty=D("0.02"), order_type=OrdType.LIMIT,
            price=PRICES["BTC/USDT"], tif=TimeInForce.GTC,
        ),
        acks.append,
    )  # fmt: skip

    def kinds() -> set[str]:
        return {e.kind for e in rig.listener.execs if e.cl_ord_id == f"{ids[4]}.r1"}

    rig.run_until(lambda: kinds() & {"replaced", "cancel_rejected"}, 30.0)
    assert kinds() == {"replaced"}
    open_ids = {o.chain[-1] for o in rig.exchange.open_orders(None)}
    assert ids[4] not in open_ids and f"{ids[4]}.r1" in open_ids
