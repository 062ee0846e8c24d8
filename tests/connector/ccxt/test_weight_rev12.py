"""Review rev12 of rev6's fixes (the mass cancel refused during a hold, the replace's fence
epoch): defects proven against the real adapter and the simulated exchange (the rig of
test_weight_budget, the fetch hook of test_weight_rev6)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest

from actors.connector.adapter import RequestFailed
from actors.exchangesim import server as sim_server
from protocol.messages import OrdType, ReplaceOnVenue, Side, TimeInForce
from tests.connector.ccxt.test_weight_budget import PRICES, SYMBOLS, _Rig
from tests.connector.ccxt.test_weight_rev4 import _open_at_exchange, _send, make_rig
from tests.connector.ccxt.test_weight_rev6 import (
    Fetch,
    _execs_of,
    _hook_fetch,
    _mass_cancel_running,
)

__all__ = ["make_rig"]  # the fixture, shared with rev4

D = Decimal


def test_a_mass_cancel_whose_own_request_draws_a_minute_window_429_answers_in_time(
    make_rig: Callable[..., _Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """751d1fa refuses the mass cancel when a Retry-After hold runs as it starts. A hold
    that begins during its first pass (its own cancel_all_orders draws the 429, Retry-After
    30 s: the IP's minute window, waited out) is waited out in `Rest._weigh_in` by the
    retry, and by the next symbol's request: the answer comes ~30 s later, past risk's
    deadline (request_timeout_s + 1), and risk force-restarts the connector (whose new
    process has forgotten the hold) - what 751d1fa was meant to prevent."""
    monkeypatch.setattr(sim_server, "RETRY_AFTER_S", 30)
    rig = make_rig()
    ids = _send(rig, 1)
    rig.run_until(lambda: _open_at_exchange(rig) == set(ids), 10.0)
    drawn = [False]

    async def hook(inner: Fetch, url: str, method: str, headers: Any, body: Any) -> Any:
        if method == "DELETE" and urlsplit(url).path.endswith("/openOrders") and not drawn[0]:
            drawn[0] = True
            rig.server.faults.apply("rate_limit", 1)  # this request's answer: 429, 30 s
        return await inner(url, method, headers, body)

    _hook_fetch(rig, hook)
    done: list[Any] = []
    rig.adapter.mass_cancel(done.append)
    deadline_s = 5.0 + 1.0  # the rig's request_timeout_s + risk's margin
    started = time.monotonic()
    rig.loop.run_until(lambda: done or time.monotonic() - started > 2 * deadline_s, 40.0)
    assert drawn[0] and rig.adapter.rest.budget.hold_s() > 0  # the 429 came, the hold runs
    assert done, (
        f"no mass-cancel answer {2 * deadline_s:g} s after it began (risk's deadline: "
        f"{deadline_s:g} s); {rig.adapter.rest.budget.hold_s():.0f} s of the hold left"
    )


def test_a_replace_that_begins_while_the_mass_cancel_runs_sends_no_new_order_after_it(
    make_rig: Callable[..., _Rig],
) -> None:
    """e34b256 refuses a replace's new order when a mass cancel began after the replace
    did (`FENCE_EPOCH`: the `Fence.epoch` at its start). A ReplaceOnVenue that arrives
    while the mass cancel's first pass is out takes that mass cancel's epoch as its own:
    its cancel step goes out (not fenced), the mass cancel answers True and drops its
    fence (nothing at the gate or on the wire: a replace is not a `Gates` submit), then the
    cancel's answer arrives and the new order is sent - epoch unchanged - and rests."""
    rig = make_rig()
    ids = _send(rig, 1)
    rig.run_until(lambda: _open_at_exchange(rig) == set(ids) and not rig.adapter.flows.gates)
    mass_out, replace_cancelled, mass_answered = (asyncio.Event() for _ in range(3))

    async def hook(inner: Fetch, url: str, method: str, headers: Any, body: Any) -> Any:
        path = urlsplit(url).path
        if method == "DELETE" and path.endswith("/openOrders") and "BTCUSDT" in url:
            mass_out.set()  # the first pass is out until the replace's cancel is processed
            await asyncio.wait_for(replace_cancelled.wait(), 4.0)
        answer = await inner(url, method, headers, body)
        if method == "DELETE" and path.endswith("/api/v3/order"):
            replace_cancelled.set()
            await asyncio.wait_for(mass_answered.wait(), 4.0)  # its answer, delayed
        return answer

    _hook_fetch(rig, hook)
    done: list[Any] = []

    def answered(ok: Any) -> None:
        done.append(ok)
        mass_answered.set()

    rig.adapter.mass_cancel(answered)
    rig.run_until(mass_out.is_set, 10.0)
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
    rig.run_until(lambda: done, 20.0)
    assert done == [True]
    rig.run_until(lambda: _execs_of(rig, new) and not _mass_cancel_running(rig), 20.0)
    assert not _open_at_exchange(rig), (
        f"the replace's new order went out after the mass cancel answered: {_execs_of(rig, new)}"
    )


def test_a_mass_cancel_when_the_weight_budget_is_spent_uses_the_headroom_at_once(
    make_rig: Callable[..., _Rig],
) -> None:
    """The exchange says our IP used our whole budget this minute (`X-MBX-USED-WEIGHT-1M`
    4800 of 6000: another client on the IP, or a runaway order flow - when a kill switch is
    engaged). A cancel_all_orders (weight 1) would be taken. It waited at the weight gate
    until the minute freed room (~60 s), past risk's deadline (request_timeout_s + 1): risk
    force-restarted the connector, and the orders rested meanwhile. The kill switch's mass
    cancel may use the headroom up to the exchange's limit (the lead's policy): it
    cancels at once and answers True."""
    rig = make_rig()
    ids = _send(rig, 1)
    rig.run_until(lambda: _open_at_exchange(rig) == set(ids), 10.0)
    rest = rig.adapter.rest
    rest._read_answer(200, rig.url + "/api/v3/time", {"X-MBX-USED-WEIGHT-1M": "4800"}, "{}")
    assert rest.budget.wait_s(1) > 30
    done: list[Any] = []
    rig.adapter.mass_cancel(done.append)
    deadline_s = 5.0 + 1.0  # the rig's request_timeout_s + risk's margin
    started = time.monotonic()
    rig.loop.run_until(lambda: done or time.monotonic() - started > 2 * deadline_s, 40.0)
    resting = sorted(_open_at_exchange(rig))
    for task in rig.adapter._tasks:  # still waiting at the gate: ended with the test
        if task.get_name() == "mass_cancel":
            task.cancel()
    rig.loop.run_until(lambda: not _mass_cancel_running(rig), 10.0)
    assert done == [True], (
        f"no mass-cancel answer {2 * deadline_s:g} s after it began (risk's deadline: "
        f"{deadline_s:g} s): {done}; the orders rest: {resting}"
    )
    assert not resting
    assert rest.budget.wait_s(1) > 30  # others still keep to our budget


def test_a_mass_cancel_when_the_exchanges_whole_limit_is_spent_is_refused_at_once(
    make_rig: Callable[..., _Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the exchange's whole limit spent (6000 of 6000) nothing may go out, not even
    the kill switch's cancels: the mass cancel is refused at once ("rate limited ...", no
    request sent, nothing drawn from the exchange), not answered after a wait past risk's
    deadline; risk tries again every 0.5 s, and the first try after the minute freed
    room cancels."""
    rig = make_rig()
    ids = _send(rig, 1)
    rig.run_until(lambda: _open_at_exchange(rig) == set(ids), 10.0)
    rest = rig.adapter.rest
    rest._read_answer(200, rig.url + "/api/v3/time", {"X-MBX-USED-WEIGHT-1M": "6000"}, "{}")
    sent: list[str] = []

    async def hook(inner: Fetch, url: str, method: str, headers: Any, body: Any) -> Any:
        sent.append(f"{method} {urlsplit(url).path}")
        return await inner(url, method, headers, body)

    _hook_fetch(rig, hook)
    done: list[Any] = []
    rig.adapter.mass_cancel(done.append)
    rig.run_until(lambda: done and not _mass_cancel_running(rig), 5.0)
    assert len(done) == 1 and isinstance(done[0], RequestFailed), done
    assert "rate limited" in str(done[0]) and "6000" in str(done[0]), done[0]
    assert not [r for r in sent if r.startswith("DELETE")], sent
    assert _open_at_exchange(rig) == set(ids)
    later = time.monotonic() + rest.budget.window_s + 1.0  # the minute has passed
    monkeypatch.setattr(rest.budget, "_clock", lambda: later)
    rig.adapter.mass_cancel(done.append)  # risk's next try
    rig.run_until(lambda: len(done) == 2 and not _mass_cancel_running(rig), 10.0)
    assert done[1] is True
    assert not _open_at_exchange(rig)


def test_a_mass_cancel_has_every_symbols_cancel_out_at_once(
    make_rig: Callable[..., _Rig],
) -> None:
    """The first pass cancels the symbols one after the other, each waiting for the last
    one's answer: over a slow exchange (each cancel_all_orders answered in 3.5 s, under
    its timeout of 5 s: an exchange under stress, when kill switches fire) two symbols
    answer after ~7 s, past risk's deadline (request_timeout_s + 1 = 6 s), and risk
    force-restarts the connector although every request was answered in time; N symbols
    can take N request timeouts. Here each cancel's answer is held until every symbol's
    cancel is out (bounded: 3 s): one at a time, the second never goes out meanwhile.
    (Pre-existing: not one of rev6's fixes.)"""
    rig = make_rig()
    ids = _send(rig, 1)
    rig.run_until(lambda: _open_at_exchange(rig) == set(ids) and not rig.adapter.flows.gates)
    in_flight, most = [0], [0]
    all_out = asyncio.Event()

    async def hook(inner: Fetch, url: str, method: str, headers: Any, body: Any) -> Any:
        if not (method == "DELETE" and urlsplit(url).path.endswith("/openOrders")):
            return await inner(url, method, headers, body)
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        if in_flight[0] == len(SYMBOLS):
            all_out.set()
        try:
            with contextlib.suppress(TimeoutError):  # a slow answer
                await asyncio.wait_for(all_out.wait(), 3.0)
            return await inner(url, method, headers, body)
        finally:
            in_flight[0] -= 1

    _hook_fetch(rig, hook)
    done: list[Any] = []
    rig.adapter.mass_cancel(done.append)
    rig.run_until(lambda: done, 20.0)
    assert done == [True]
    assert not _open_at_exchange(rig)
    assert most[0] == len(SYMBOLS), "each symbol's cancel_all_orders waited for the one before"
