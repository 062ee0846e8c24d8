"""Never sent twice: a create whose answer was lost (a timeout) can still reach the
exchange until its recvWindow has passed (`Flows.unseen_after_s`). A resend right after
it is looked up ("no such order": the first is still on its way) and was sent at once, a
second order of the same client id; the connector trusted "no such order" only after the
window at its start (`trust_unseen_at`), not after a create of its own (found by a
review, rev3). Now a resend waits out its own create's window too (`Flows.sent_at`),
counted from the create's last attempt: one held by the rate limit (a 429's Retry-After)
or sent again goes out later than the call began (review rev9)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import ccxt
import pytest

from actors.connector.ccxt.exchange import Rest
from actors.connector.ccxt.flows import Pending
from protocol.config import VenueCfg
from protocol.messages import OrdType, PlaceOrder, Side, TimeInForce
from tests.connector.ccxt.test_flows import D, _Exchange, _flows
from tests.connector.ccxt.test_mapping import rest_order
from tests.log_stub import RecordingLog

WINDOW_S = 0.5  # recvWindow + 1 s (10.0 + 1 in production use; short here)


class _SlowExchange(_Exchange):
    """The create's answer is lost (timeout); lookups say "no such order" (the create is
    still queued there)."""

    def __init__(self) -> None:
        super().__init__(rest_order(status="CANCELED"), rest_order())
        self.created_at: list[float] = []

    async def create_order(self, *_args: Any) -> dict[str, Any]:
        self.created_at.append(time.monotonic())
        raise ccxt.RequestTimeout("no answer in 5.0 s")

    async def fetch_order(self, _id: Any, _symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        raise ccxt.OrderNotFound("-2013 Order does not exist.")


def _pending(flows: Any, *, lookup_first: bool) -> Pending:
    order = PlaceOrder(
        cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=D("0.1"),
        order_type=OrdType.LIMIT, price=D("50000"), tif=TimeInForce.DAY,
    )  # fmt: skip
    intent = flows.tracker.live["c1"].intent
    return Pending(intent, order, lambda _r: None, lookup_first=lookup_first)


def test_a_resend_waits_out_the_window_of_a_create_whose_answer_was_lost(tmp_path: Path) -> None:
    ex = _SlowExchange()
    flows, intents = _flows(tmp_path, ex)
    flows.unseen_after_s, flows.trust_unseen_at = WINDOW_S, 0.0  # started long ago

    async def body() -> None:
        await flows.submit(_pending(flows, lookup_first=False))  # answer lost, then "no such"
        await flows.submit(_pending(flows, lookup_first=True))  # the OMS's resubmission

    asyncio.run(body())
    intents.close()
    first, *again = ex.created_at
    assert len(again) == 1, again  # looked up once the window passed, then sent
    assert again[0] - first >= WINDOW_S, again[0] - first


def test_the_creates_remembered_are_only_those_within_the_window(tmp_path: Path) -> None:
    """Another client id is not held by a create of this one, and a create older than the
    window is forgotten (the memory stays bounded by the send rate times the window)."""
    flows, intents = _flows(tmp_path, _SlowExchange())
    flows.unseen_after_s = 60.0
    flows.note_sent("old")
    assert flows.unseen_proof_in_s("other") <= 0.0
    assert flows.unseen_proof_in_s("old") > 59.0
    flows.sent_at["old"] -= 61.0  # sent 61 s ago
    flows.note_sent("c1")
    assert list(flows.sent_at) == ["c1"]
    intents.close()


class _RateLimited(_Exchange):
    """The first create is refused with a 429 (Retry-After: 1 s), every later one is lost
    (timeout); lookups say "no such order"."""

    def __init__(self) -> None:
        super().__init__(rest_order(status="CANCELED"), rest_order())
        self.created_at: list[float] = []

    async def create_order(self, *_args: Any) -> dict[str, Any]:
        self.created_at.append(time.monotonic())
        if len(self.created_at) == 1:
            raise ccxt.RateLimitExceeded("binance 429 Too Many Requests Retry-After: 1")
        raise ccxt.RequestTimeout("no answer in 5.0 s")

    async def fetch_order(self, _id: Any, _symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        raise ccxt.OrderNotFound("-2013 Order does not exist.")


def test_the_window_runs_from_the_create_s_last_attempt_not_from_before_the_rate_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create held 1 s by a 429 and then lost: a resend waits out the window from when
    the create last went out, so it never goes out while that one may still arrive."""
    monkeypatch.setattr("actors.connector.ccxt.flows.LOOKUP_DELAYS_S", (0.0, 0.0, 0.0))
    ex = _RateLimited()
    flows, intents = _flows(tmp_path, ex)
    rest = Rest(VenueCfg(name="bx"), RecordingLog(), [])
    rest.ex = ex
    flows.rest = rest
    flows.unseen_after_s, flows.trust_unseen_at = WINDOW_S, 0.0

    async def body() -> None:
        await flows.submit(_pending(flows, lookup_first=False))  # 429, again, answer lost
        await flows.submit(_pending(flows, lookup_first=True))  # the OMS's resubmission

    asyncio.run(body())
    intents.close()
    refused, lost, *again = ex.created_at
    assert lost - refused >= 1.0  # the 429's hold
    assert len(again) == 1, again
    assert again[0] - lost >= WINDOW_S, f"resent {again[0] - lost:.3f} s after the lost create"
