"""A replace judges the exchange's "no such order" for its new order by when the lookup
went out (the exchange read it after that), never by when its answer came back (review
rev16, F2): a late answer to a lookup read while the new order's create could still land
must not settle the replace as refused (the old order reported cancelled, the replace
refused, while the new order may come to rest at the exchange).

The clock the connector reads (`time` of flows.py and replace.py) is the test's: it
stands still except where the test moves it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import ccxt
import pytest

from actors.connector.ccxt import flows as flows_mod
from actors.connector.ccxt import replace as replace_mod
from tests.connector.ccxt import binance as bn
from tests.connector.ccxt.test_flows import _Exchange
from tests.connector.ccxt.test_mapping import rest_order
from tests.connector.ccxt.test_replace_restart import NOT_FOUND, _killed_mid_replace
from tests.connector.ccxt.test_replace_settle import REQUEST, _flows, _kinds, _with_c1


class _Clock:
    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now

    def time_ns(self) -> int:
        return time.time_ns()


class _LateAnswers(_Exchange):
    """c1 is cancelled; the exchange reads a lookup of c1.r1 at once ("no such order")
    and its answer takes `answer_s` to come back; a create takes `create_s` and its
    answer is lost."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__(rest_order(status="CANCELED"), ccxt.RequestTimeout("unused"))
        self.clock = clock
        self.answer_s = self.create_s = 0.0
        self.read_at: list[float] = []

    async def create_order(self, *_args: Any) -> dict[str, Any]:
        self.clock.now += self.create_s
        raise ccxt.RequestTimeout("no answer in 5.0 s")

    async def fetch_order(self, _id: Any, _symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("origClientOrderId") != "c1.r1":
            return self.cancelled
        self.read_at.append(self.clock.now)
        self.clock.now += self.answer_s
        raise bn.raised(400, NOT_FOUND)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    clock = _Clock()
    monkeypatch.setattr(flows_mod, "time", clock)
    monkeypatch.setattr(replace_mod, "time", clock)
    monkeypatch.setattr(replace_mod, "LOOKUP_DELAYS_S", (0.0, 0.0, 0.0))
    return clock


def test_a_late_answer_to_a_lookup_read_within_the_new_order_s_window_settles_nothing(
    tmp_path: Path, clock: _Clock
) -> None:
    """The new order's create answer is lost after 5 s; the lookup is read 5 s after the
    create went out (its window: 6 s), its "no such order" back 2 s later: the replace is
    unsettled (the poll decides), the old order's cancel not reported as its end."""
    ex = _LateAnswers(clock)
    ex.create_s, ex.answer_s = 5.0, 2.0
    flows, intents = _flows(tmp_path, ex)
    flows.unseen_after_s = 6.0
    _with_c1(flows, intents)
    sent = clock.now
    asyncio.run(flows.replace(REQUEST))
    kinds = _kinds(flows)
    intents.close()
    (read_at,) = ex.read_at
    assert read_at < sent + flows.unseen_after_s <= clock.now
    assert "c1.r1" in flows.tracker.unsettled, kinds
    assert ("c1", "cancelled") not in kinds, kinds
    assert set(flows.tracker.live) == {"c1", "c1.r1"}


def test_a_late_answer_to_a_settling_lookup_read_before_it_counts_settles_nothing(
    tmp_path: Path, clock: _Clock
) -> None:
    """After a restart (its requests may land until `trust_unseen_at`), the poll's lookup
    of the cut-off replace's new order is read 1 s before that, its "no such order" back
    2 s later: the replace stays unsettled (refused it was, while its new order could
    still land)."""
    _killed_mid_replace(tmp_path)
    ex = _LateAnswers(clock)
    ex.answer_s = 2.0
    flows, intents = _flows(tmp_path, ex)
    flows.trust_unseen_at = clock.now + 1.0
    asyncio.run(flows.poll_live())
    kinds = _kinds(flows)
    intents.close()
    (read_at,) = ex.read_at
    assert read_at < flows.trust_unseen_at <= clock.now
    assert [k for k in kinds if k[1] != "accepted"] == [], kinds
    assert "c1.r1" in flows.tracker.unsettled
