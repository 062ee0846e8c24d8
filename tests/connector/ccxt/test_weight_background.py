"""Background requests (the poll) and the order flow sharing the request-weight budget: a
background request kept back by its share for long goes before new foreground work, and
the stream-down ping is not background (an order flow above half the budget must not
keep it back)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from actors.connector.ccxt import weight
from actors.connector.ccxt.exchange import BACKGROUND_SHARE
from actors.connector.ccxt.weight import BACKGROUND_PATIENCE_S, BACKGROUND_RECHECK_S, WeightBudget
from tests.connector.ccxt.test_weight_budget import _Rig, _rig


def test_an_overdue_background_request_goes_before_new_foreground_work() -> None:
    """Budget 100, 95 spent by the order flow: the poll's request (6, background) waits;
    once it has waited BACKGROUND_PATIENCE_S a new foreground request (5, which would
    fit) leaves it room, and when the window frees it goes first."""
    now = [0.0]
    budget = WeightBudget(1.0, 100, clock=lambda: now[0])
    budget.take(95)
    budget.done(95)
    assert budget.wait_s(5) == 0.0  # the order flow's room, nothing waits
    while now[0] < BACKGROUND_PATIENCE_S + 0.1:  # the poll asks, held by its share
        now[0] += BACKGROUND_RECHECK_S / 2
        assert budget.wait_s(6, BACKGROUND_SHARE) > 0
    assert budget.wait_s(5) > 0, "new foreground work went before the overdue poll"
    now[0] = 60.0  # the 95 left the window
    assert budget.wait_s(6, BACKGROUND_SHARE) == 0.0
    budget.take(6)
    assert budget.wait_s(5) == 0.0


def test_a_background_request_that_stopped_asking_holds_nothing_back() -> None:
    """An overdue background request that no longer asks (its poll cut short) leaves no
    reserve behind."""
    now = [0.0]
    budget = WeightBudget(1.0, 100, clock=lambda: now[0])
    budget.take(95)
    budget.done(95)
    while now[0] < BACKGROUND_PATIENCE_S + 0.1:
        now[0] += BACKGROUND_RECHECK_S / 2
        budget.wait_s(6, BACKGROUND_SHARE)
    now[0] += 3 * BACKGROUND_RECHECK_S
    assert budget.wait_s(5) == 0.0


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


def test_the_stream_down_ping_goes_with_the_budget_above_half(
    make_rig: Callable[..., _Rig], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another client on the IP spends 240 of the 320 budget (more than the background
    half): the ping (GET /api/v3/time, weight 1) still goes, as foreground, not after
    background patience (made endless here)."""
    monkeypatch.setattr(weight, "BACKGROUND_PATIENCE_S", 1e9)
    rig = make_rig(weight_per_min=400)

    async def other_client() -> None:
        async with aiohttp.ClientSession() as s:
            for _ in range(12):  # exchangeInfo: 20 each
                async with s.get(rig.url + "/api/v3/exchangeInfo") as r:
                    await r.read()

    rig.adapter.bridge.run_until_complete(other_client(), 10.0)
    budget = rig.adapter.rest.budget
    rig.run_until(lambda: budget.used() >= 240, 10.0)  # a ping's answer told it
    pings = rig.weights.count(1)
    rig.run_until(lambda: rig.weights.count(1) >= pings + 3, 10.0)
    assert not rig.listener.downs
