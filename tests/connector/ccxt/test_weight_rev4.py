"""Review rev4 of branch `weight`'s gate fixes: defects proven against the real adapter
and the simulated exchange's limits (the rig of test_weight_budget)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from protocol.messages import OrdType, PlaceOrder, ReplaceOnVenue, Side, TimeInForce
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


def _send(rig: _Rig, n: int) -> list[str]:
    acks: list[Any] = []
    for i in range(n):
        order = PlaceOrder(
            cl_ord_id=f"v-{i:03d}", symbol="BTC/USDT", side=Side.BUY, qty=D("0.01"),
            order_type=OrdType.LIMIT, price=PRICES["BTC/USDT"], tif=TimeInForce.GTC,
        )  # fmt: skip
        rig.adapter.place(order, acks.append)
    rig.adapter.flush()
    assert acks == [None] * n
    return [f"v-{i:03d}" for i in range(n)]


def _open_at_exchange(rig: _Rig) -> set[str]:
    return {o.chain[-1] for o in rig.exchange.open_orders(None)}


def test_a_mass_cancel_leaves_no_replace_waiting_to_be_sent(
    make_rig: Callable[..., _Rig],
) -> None:
    """ORDERS 5 per 10 s (budget 4): 4 orders fill the count; a replace of one cancels it
    (not paced by ORDERS) and its new order waits ~10 s for the count. The kill switch's
    mass cancel meanwhile must leave nothing to go out afterwards and rest: the replace's
    create is not a `gate.Gates` submit, so the mass cancel neither withdraws nor waits
    for it."""
    rig = make_rig(orders_per_10s=5)
    ids = _send(rig, 4)
    rig.run_until(lambda: len(_open_at_exchange(rig)) == 4)
    new = f"{ids[0]}.r1"
    acks: list[Any] = []
    rig.adapter.replace(
        ReplaceOnVenue(
            cl_ord_id=new, orig_cl_ord_id=ids[0], symbol="BTC/USDT", side=Side.BUY,
            qty=D("0.02"), order_type=OrdType.LIMIT, price=PRICES["BTC/USDT"],
            tif=TimeInForce.GTC,
        ),
        acks.append,
    )  # fmt: skip
    rig.run_until(lambda: rig.adapter.rest.orders_waiting == 1, 10.0)  # its create waits
    assert ids[0] not in _open_at_exchange(rig)  # its cancel step ran
    done: list[Any] = []
    rig.adapter.mass_cancel(done.append)
    rig.run_until(lambda: done, 20.0)
    assert done == [True]

    rig.run_until(lambda: rig.adapter.rest.orders_waiting == 0, 20.0)
    rig.run_until(lambda: any(e.cl_ord_id == new for e in rig.listener.execs), 20.0)
    assert not _open_at_exchange(rig), "the replace's new order went out after the mass cancel"


def test_a_429_of_the_ips_minute_window_does_not_take_the_venue_down(
    make_rig: Callable[..., _Rig],
) -> None:
    """Another client on the IP fills the request weight (400/min): the connector's next
    request draws a plain 429 whose Retry-After is the seconds left of the minute window
    (Binance's usual, <= 60 s; no ban). That is the ordinary rate limit, waited out in
    under a minute; ending the session on it (Retry-After > request_timeout_s, 5 s) takes
    the venue DOWN for every 429: the OMS stops sending, a reconcile follows each return,
    and the heartbeat's outage clock (60 s) runs."""
    rig = make_rig(weight_per_min=400, ip_ban_after=1000)
    held: list[str] = []
    end_session = rig.adapter.rest.on_long_hold

    def recording(reason: str) -> None:
        held.append(reason)
        end_session(reason)

    rig.adapter.rest.on_long_hold = recording
    rig.run_until(lambda: rig.listener.ups, 10.0)

    async def other_client() -> None:
        async with aiohttp.ClientSession() as s:
            for _ in range(21):  # exchangeInfo 20 each: the 21st is the 429
                async with s.get(rig.url + "/api/v3/exchangeInfo") as r:
                    await r.read()

    rig.adapter.bridge.run_until_complete(other_client(), 10.0)
    # its own request draws the 429 (the poll's, or the ping's) and it holds
    rig.loop.run_until(lambda: held or rig.adapter.rest.budget.hold_s() > 0, 20.0)
    assert not held, f"a minute-window 429 ended the session: {held}"


def test_a_mass_cancel_does_not_hold_the_resting_orders_behind_a_submit_on_the_wire(
    make_rig: Callable[..., _Rig],
) -> None:
    """Three orders rest; a fourth's create is on the wire, its answer lost (the exchange
    placed it, the connector times out after request_timeout_s, 5 s, then looks it up).
    The kill switch's mass cancel must cancel what rests now, not after that submit is
    over: it waits for every submit on the wire before its first cancel, so the resting
    orders stay live (and may fill) for the submit's whole timeout and lookup, and its
    answer comes after risk's deadline for it (request_timeout_s + 1 s: a TIMEOUT, then
    retries and a connector restart)."""
    rig = make_rig()
    ids = _send(rig, 3)
    rig.run_until(lambda: len(_open_at_exchange(rig)) == 3)
    rig.server.faults.apply("timeout_after_accept", 1)
    acks: list[Any] = []
    slow = "w-000"
    rig.adapter.place(
        PlaceOrder(
            cl_ord_id=slow, symbol="BTC/USDT", side=Side.BUY, qty=D("0.01"),
            order_type=OrdType.LIMIT, price=PRICES["BTC/USDT"], tif=TimeInForce.GTC,
        ),
        acks.append,
    )  # fmt: skip
    rig.adapter.flush()
    rig.run_until(lambda: slow in _open_at_exchange(rig), 10.0)  # placed, answer withheld
    assert slow in rig.adapter.flows.inflight
    done: list[Any] = []
    rig.adapter.mass_cancel(done.append)
    rig.run_until(lambda: not set(ids) & _open_at_exchange(rig), 30.0)
    assert slow in rig.adapter.flows.inflight, (
        "the resting orders were cancelled only after the submit on the wire was over"
    )


def test_a_resend_of_an_order_withdrawn_at_the_gate_does_not_send_it(
    make_rig: Callable[..., _Rig],
) -> None:
    """ORDERS 5 per 10 s (budget 4): the 5th order waits for the count. In one turn a
    cancel of it comes, then the OMS's resend of its PlaceOrder (a second PlaceOrder of
    an id whose create is unanswered: `Flows.inflight`). The cancel withdraws the waiting
    submit (CANCELLED 'withdrawn before it reached the exchange') and drops the id from
    `inflight`; the resend's submit, spawned after it (not a `Gates` submit: the gate was
    taken), then finds no submit in flight, looks the order up ("no such order": it was
    never sent) and sends it: it rests, CANCELLED in the OMS."""
    rig = make_rig(orders_per_10s=5)
    ids = _send(rig, 5)
    rig.run_until(lambda: len(_open_at_exchange(rig)) == 4)
    last = ids[-1]
    assert last in rig.adapter.flows.inflight
    done: list[Any] = []
    rig.adapter.cancel(
        CancelOnVenue(
            cl_ord_id="c-1", orig_cl_ord_id=last, symbol="BTC/USDT", side=Side.BUY,
            qty=D("0.01"),
        ),
        done.append,
    )  # fmt: skip
    acks: list[Any] = []
    rig.adapter.place(
        PlaceOrder(
            cl_ord_id=last, symbol="BTC/USDT", side=Side.BUY, qty=D("0.01"),
            order_type=OrdType.LIMIT, price=PRICES["BTC/USDT"], tif=TimeInForce.GTC,
        ),
        acks.append,
    )  # fmt: skip
    rig.adapter.flush()
    rig.run_until(lambda: done and acks, 10.0)
    assert [e.text for e in rig.listener.execs if e.cl_ord_id == last][0].startswith(
        "withdrawn before it reached the exchange"
    )

    def submits() -> list[str]:
        return [t.get_name() for t in rig.adapter._tasks if t.get_name().startswith("submit")]

    rig.run_until(lambda: not submits(), 30.0)  # the resend's submit is over too
    assert last not in _open_at_exchange(rig), "withdrawn (CANCELLED), then sent: it rests"


def test_a_place_of_an_id_withdrawn_earlier_is_answered_not_sent(
    make_rig: Callable[..., _Rig],
) -> None:
    """The OMS sends an order withdrawn at the gate again later (after a restart it may not
    have its CANCELLED): the connector answers it CANCELLED 'withdrawn' again (deduped by
    its exec id within a session) and sends nothing, instead of looking it up ("no such
    order") and sending it."""
    rig = make_rig(orders_per_10s=5)
    ids = _send(rig, 5)
    rig.run_until(lambda: len(_open_at_exchange(rig)) == 4)
    last = ids[-1]
    done: list[Any] = []
    rig.adapter.cancel(
        CancelOnVenue(
            cl_ord_id="c-1", orig_cl_ord_id=last, symbol="BTC/USDT", side=Side.BUY,
            qty=D("0.01"),
        ),
        done.append,
    )  # fmt: skip
    rig.run_until(lambda: done, 10.0)
    assert last in rig.adapter.intents.withdrawn
    sent = rig.adapter.flows.sent
    acks: list[Any] = []
    rig.adapter.place(
        PlaceOrder(
            cl_ord_id=last, symbol="BTC/USDT", side=Side.BUY, qty=D("0.01"),
            order_type=OrdType.LIMIT, price=PRICES["BTC/USDT"], tif=TimeInForce.GTC,
        ),
        acks.append,
    )  # fmt: skip
    rig.adapter.flush()
    assert acks == [None]
    rig.run_until(lambda: not rig.adapter.flows.gates and not rig.adapter.tracker.execs, 20.0)
    # its CANCELLED again: the OMS has it already (the same exec id, not handed on twice)
    assert [e.text[:40] for e in rig.listener.execs if e.cl_ord_id == last] == [
        "withdrawn before it reached the exchange"
    ]
    assert last not in rig.adapter.tracker.live  # not taken on as a live order again
    assert last not in _open_at_exchange(rig) and rig.adapter.flows.sent == sent


def test_a_connect_during_a_short_hold_builds_no_exchange_until_it_is_over(
    make_rig: Callable[..., _Rig],
) -> None:
    """A 429 of the minute window holds every request (Retry-After 2 s here): a connect
    meanwhile waits for the hold's end before it builds an exchange, instead of building
    one, failing and closing it at each backoff; then the session comes up."""
    rig = make_rig()
    rig.run_until(lambda: rig.listener.ups, 10.0)
    rig.adapter.disconnect("test")
    rig.loop.run_until(lambda: rig.listener.downs and rig.adapter.is_idle, 10.0)
    built_in_hold: list[float] = []
    make = rig.adapter._make_exchange

    def recording(*args: Any) -> Any:
        built_in_hold.append(rig.adapter.rest.budget.hold_s())
        return make(*args)

    rig.adapter._make_exchange = recording
    rig.adapter.rest._read_answer(429, rig.url + "/api/v3/order", {"Retry-After": "2"}, "")
    assert rig.adapter.rest.budget.hold_s() > 1
    rig.adapter.connect()
    rig.loop.run_until(lambda: len(rig.listener.ups) == 2, 15.0)
    assert built_in_hold == [0.0]  # built once, after the hold
    assert len(rig.listener.downs) == 1  # the short hold ended no session
