"""Never sent twice: a create whose answer was lost (a timeout) can still reach the
exchange until its recvWindow has passed (`Flows.unseen_after_s`). A resend right after
it is looked up ("no such order": the first is still on its way) and was sent at once, a
second order of the same client id; the connector trusted "no such order" only after the
window at its start (`trust_unseen_at`), not after a create of its own (found by a
review, rev3). Now a resend waits out its own create's window too (`Flows.sent_at`)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import ccxt

from actors.connector.adapter import RequestFailed, StatusResult
from actors.connector.ccxt.flows import Pending
from actors.connector.ccxt.queries import Queries
from protocol.messages import OrdType, PlaceOrder, QueriedOrder, Side, TimeInForce
from tests.connector.ccxt.test_flows import VENUE, D, _Exchange, _flows, _Log
from tests.connector.ccxt.test_mapping import rest_order

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
    flows._note_sent("old")
    assert flows.unseen_proof_in_s("other") <= 0.0
    assert flows.unseen_proof_in_s("old") > 59.0
    flows.sent_at["old"] -= 61.0  # sent 61 s ago
    flows._note_sent("c1")
    assert list(flows.sent_at) == ["c1"]
    intents.close()


def test_a_status_query_does_not_call_unseen_an_order_whose_create_may_still_arrive(
    tmp_path: Path,
) -> None:
    """The OMS's status query: "no such order" within the window of the order's create is
    no answer (the query fails, the OMS asks again later), not "never seen" (on which the
    OMS resubmits it, or with the kill switch engaged rejects it as never sent, and then
    the create lands and rests)."""
    ex = _SlowExchange()
    flows, intents = _flows(tmp_path, ex)
    flows.unseen_after_s = 60.0
    asyncio.run(flows.submit(_pending(flows, lookup_first=False)))  # its answer lost
    queries = Queries(VENUE, None, flows, _Log())  # type: ignore[arg-type]
    asked = [QueriedOrder(cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY)]
    answers: list[Any] = []
    asyncio.run(queries.order_status(asked, answers.append))
    assert isinstance(answers[-1], RequestFailed), answers[-1]
    flows.sent_at["c1"] -= 61.0  # the window passed: now it is proof
    asyncio.run(queries.order_status(asked, answers.append))
    assert isinstance(answers[-1], StatusResult) and answers[-1].unknown == ["c1"]
    intents.close()
