"""The OMS's status query and a create that may still arrive: "no such order" for a client
id whose create of ours went out within its recvWindow (`Flows.unseen_proof_at`), or whose
flow may still send one (a submit, a replace between its cancel and its new order), is
answered `pending`, not `unknown` ("never seen", on which the OMS resubmits it, or with the
kill switch engaged rejects it as never sent while the create then lands and rests). The
start's window holds only ids with an intent here. Failing the whole query instead stalled
the venue's reconciliation (reverted in 5bba4b4): `pending` leaves the other orders judged."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import ccxt
import pytest

from actors.connector.adapter import StatusResult
from actors.connector.ccxt import replace as replace_mod
from actors.connector.ccxt.flows import Flows
from actors.connector.ccxt.queries import Queries
from protocol.messages import OrderStatus, OrdType, QueriedOrder, ReplaceOnVenue, Side
from tests.connector.ccxt.test_flows import VENUE, D, _Exchange, _flows
from tests.connector.ccxt.test_mapping import rest_order
from tests.connector.ccxt.test_resend_window import _pending, _SlowExchange
from tests.log_stub import RecordingLog


def _status(flows: Flows, *ids: str) -> StatusResult:
    queries = Queries(VENUE, None, flows, RecordingLog())  # type: ignore[arg-type]
    asked = [QueriedOrder(cl_ord_id=cl, symbol="BTC/USDT", side=Side.BUY) for cl in ids]
    answers: list[Any] = []
    asyncio.run(queries.order_status(asked, answers.append))
    (answer,) = answers
    assert isinstance(answer, StatusResult), answer
    return answer


def test_a_query_within_a_create_s_window_answers_pending_and_after_it_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """c1's create went out and its answer was lost: within its window "no such order" is
    `pending`; once the window has passed it is proof, `unknown`."""
    monkeypatch.setattr("actors.connector.ccxt.flows.LOOKUP_DELAYS_S", (0.0, 0.0, 0.0))
    flows, intents = _flows(tmp_path, _SlowExchange())
    flows.unseen_after_s, flows.trust_unseen_at = 60.0, 0.0  # started long ago
    asyncio.run(flows.submit(_pending(flows, lookup_first=False)))  # its answer lost
    within = _status(flows, "c1")
    assert (within.pending, within.unknown) == (["c1"], [])
    flows.sent_at["c1"] -= 61.0  # the window passed
    after = _status(flows, "c1")
    intents.close()
    assert (after.pending, after.unknown) == ([], ["c1"])


class _Unknown(_Exchange):
    async def fetch_order(self, *_a: Any) -> dict[str, Any]:
        raise ccxt.OrderNotFound("-2013 Order does not exist.")


def test_after_a_start_only_an_id_with_an_intent_is_pending(tmp_path: Path) -> None:
    """Just after the connector's start: c1 has an intent here (a create of it sent by the
    previous incarnation may still arrive): `pending`. q9 has none (never sent by any
    incarnation: the intent is persisted before the create): `unknown` at once."""
    flows, intents = _flows(tmp_path, _Unknown(rest_order(), rest_order()))
    flows.unseen_after_s = 60.0
    flows.trust_unseen_at = time.monotonic() + 60.0  # this connector has just started
    answer = _status(flows, "c1", "q9")
    intents.close()
    assert (answer.pending, answer.unknown) == (["c1"], ["q9"])


class _ReplaceLost(_Exchange):
    """c1 is cancelled by the replace; the new order's (c1.r1) answer is lost and the
    exchange has no such order yet (it is on its way)."""

    def __init__(self) -> None:
        super().__init__(rest_order(status="CANCELED"), ccxt.RequestTimeout("no answer"))

    async def fetch_order(self, _id: Any, _symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("origClientOrderId") == "c1.r1":
            raise ccxt.OrderNotFound("-2013 Order does not exist.")
        return self.cancelled


_REPLACE = ReplaceOnVenue(
    cl_ord_id="c1.r1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY,
    qty=D("0.1"), order_type=OrdType.LIMIT, price=D("49000"),
)  # fmt: skip


def test_a_query_after_a_replace_whose_new_order_was_lost_answers_it_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old order c1 is CANCELED by the replace, its new order c1.r1 may still arrive:
    c1 is answered as it is, c1.r1 `pending` (the OMS skips the order this pass instead of
    marking it CANCELLED while c1.r1 then rests at the exchange)."""
    monkeypatch.setattr(replace_mod, "LOOKUP_DELAYS_S", (0.0, 0.0, 0.0))
    flows, intents = _flows(tmp_path, _ReplaceLost())
    flows.unseen_after_s, flows.trust_unseen_at = 60.0, 0.0
    asyncio.run(flows.replace(_REPLACE))
    answer = _status(flows, "c1", "c1.r1")
    intents.close()
    assert [(o.cl_ord_id, o.status) for o in answer.orders] == [("c1", OrderStatus.CANCELLED)]
    assert (answer.pending, answer.unknown) == (["c1.r1"], [])


class _AskedDuringTheCancel(_ReplaceLost):
    """The OMS's status query reaches the exchange after it cancelled c1 for the replace,
    before the replace's new order went out (no window of its own yet)."""

    def __init__(self) -> None:
        super().__init__()
        self.flows: Flows | None = None
        self.answers: list[StatusResult] = []

    async def cancel_order(self, *_args: Any) -> dict[str, Any]:
        assert self.flows is not None
        queries = Queries(VENUE, None, self.flows, RecordingLog())  # type: ignore[arg-type]
        asked = [QueriedOrder(cl_ord_id=cl, symbol="BTC/USDT", side=Side.BUY) for cl in ("c1.r1",)]
        await queries.order_status(asked, self.answers.append)  # type: ignore[arg-type]
        return self.cancelled


def test_a_query_between_a_replace_s_cancel_and_its_new_order_answers_it_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """c1.r1 is not sent yet, but its replace runs and sends it: `pending`, not `unknown`."""
    monkeypatch.setattr(replace_mod, "LOOKUP_DELAYS_S", (0.0, 0.0, 0.0))
    ex = _AskedDuringTheCancel()
    flows, intents = _flows(tmp_path, ex)
    flows.unseen_after_s, flows.trust_unseen_at = 60.0, 0.0
    ex.flows = flows
    asyncio.run(flows.replace(_REPLACE))
    intents.close()
    (answer,) = ex.answers
    assert (answer.pending, answer.unknown) == (["c1.r1"], [])
