"""Review rev16 (branch `pend`): the status query judges "no such order" by the time its
answer is read, not by the time the exchange read the lookup.

`Queries.order_status` asks `Flows.may_arrive` once the lookup's answer is back. A lookup
the exchange reads while a create of ours may still land proves nothing, however late its
answer comes back: the create may land right after the exchange read the lookup. When the
answer comes back after the create's window has ended (a slow answer: more than the 1 s
margin past the recvWindow, an exchange under load, the connector's loop busy), the id is
answered `unknown` ("never seen"): the OMS resubmits it or, with the kill switch engaged (a
venue stopped, a trading window closed), rejects it as never sent while it rests at the
exchange - the hole `pending` is meant to close.

The clock the connector reads (`flows.time`) is the test's: it stands still except where
the test moves it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import ccxt
import pytest

from actors.connector.adapter import StatusResult
from actors.connector.ccxt import flows as flows_mod
from actors.connector.ccxt.queries import Queries
from protocol.messages import QueriedOrder, Side
from tests.connector.ccxt.test_flows import VENUE, _flows
from tests.connector.ccxt.test_resend_window import _pending, _SlowExchange
from tests.log_stub import RecordingLog

RECV_WINDOW_S = 5.0
WINDOW_S = RECV_WINDOW_S + 1.0  # the adapter's `unseen_after_s`


class _Clock:
    """`time` as flows.py reads it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time_ns(self) -> int:
        return time.time_ns()


class _SlowAnswer(_SlowExchange):
    """The create's answer is lost; a lookup is read by the exchange at once ("no such
    order": the create is still on its way) and its answer takes `answer_s` to come back."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self.clock = clock
        self.answer_s = 0.0
        self.read_at: list[float] = []

    async def fetch_order(self, _id: Any, _symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        self.read_at.append(self.clock.now)  # the exchange reads the lookup now
        self.clock.now += self.answer_s  # its answer on the way back
        raise ccxt.OrderNotFound("-2013 Order does not exist.")


def test_no_such_order_read_within_the_window_is_not_never_seen_when_its_answer_is_late(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = _Clock()
    monkeypatch.setattr(flows_mod, "time", clock)
    monkeypatch.setattr(flows_mod, "LOOKUP_DELAYS_S", (0.0, 0.0, 0.0))
    ex = _SlowAnswer(clock)
    flows, intents = _flows(tmp_path, ex)
    flows.unseen_after_s, flows.trust_unseen_at = WINDOW_S, 0.0  # started long ago
    asyncio.run(flows.submit(_pending(flows, lookup_first=False)))  # c1's answer lost
    sent = flows.sent_at["c1"]
    # the OMS's status query, 4 s after the create went out: the create may land until
    # sent + recvWindow (5 s); the exchange reads the lookup now, the answer takes 2.5 s
    clock.now = sent + 4.0
    ex.answer_s, ex.read_at = 2.5, []
    queries = Queries(VENUE, None, flows, RecordingLog())  # type: ignore[arg-type]
    answers: list[Any] = []
    asked = [QueriedOrder(cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY)]
    asyncio.run(queries.order_status(asked, answers.append))
    intents.close()
    (answer,) = answers
    assert isinstance(answer, StatusResult), answer
    (read_at,) = ex.read_at
    assert read_at < sent + RECV_WINDOW_S  # the exchange read it while c1 could still land
    assert (answer.pending, answer.unknown) == (["c1"], []), (
        f"lookup read {read_at - sent:.1f} s after the create, its answer read "
        f"{clock.now - sent:.1f} s after it: answered {answer}"
    )
