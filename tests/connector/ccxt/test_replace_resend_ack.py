"""Review of 81e7831 (a ccxt replace acknowledged once its flow is done): the OMS sends a
replace again when its first ack did not come within `oms.request_timeout_s` (a slow
exchange: the flow's cancel alone may take the venue's `request_timeout_s`, 5 s by default
as the OMS's, plus 429 holds), after the pass that timeout starts. `Replaces.replace`
returns at once for a replace whose flow runs (`inflight`), so `_sent_once_done` acks the
resend while the first flow's cancel may not have reached the exchange. The OMS never sends
an acknowledged request again (`actors.oms.link_sent`): a kill -9 of the connector then
(the next incarnation has no intent of the new order, the old order rests unchanged) leaves
the order PENDING_REPLACE for good, the defect 81e7831 fixed for the first send."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from actors.connector.adapter import RequestFailed
from actors.connector.ccxt.adapter import _sent_once_done
from tests.connector.ccxt.test_flows import _Exchange, _flows
from tests.connector.ccxt.test_mapping import rest_order
from tests.connector.ccxt.test_replace_settle import REQUEST, _created

YIELDS = 200  # loop turns given to the resend's flow (it needs no I/O to finish on main)


def test_a_replace_sent_again_while_its_flow_runs_is_not_acked_before_that_flow_is_done(
    tmp_path: Path,
) -> None:
    """The first flow's cancel is on its way, not yet processed by the exchange; the OMS
    sends the same replace again. Its ack must wait for the first flow (the cancel and the
    new order answered): acked now, a kill -9 before the cancel lands loses the replace
    while the OMS counts it sent."""
    ex = _Exchange(rest_order(status="CANCELED"), _created())
    arrive = asyncio.Event()  # the first cancel reaches the exchange
    processed = [0]

    async def slow_cancel(*_args: Any) -> dict[str, Any]:
        ex.cancels += 1  # sent
        await arrive.wait()
        processed[0] += 1  # the exchange cancelled the old order
        return ex.cancelled

    ex.cancel_order = slow_cancel  # type: ignore[method-assign]
    flows, intents = _flows(tmp_path, ex)
    first_acks: list[RequestFailed | None] = []
    resend_acks: list[RequestFailed | None] = []
    acked_when_processed: list[int] = []

    def resend_acked(answer: RequestFailed | None) -> None:
        resend_acks.append(answer)
        acked_when_processed.append(processed[0])

    async def body() -> None:
        first = asyncio.create_task(_sent_once_done(flows.replace(REQUEST), first_acks.append))
        while not ex.cancels:
            await asyncio.sleep(0)
        resend = asyncio.create_task(_sent_once_done(flows.replace(REQUEST), resend_acked))
        for _ in range(YIELDS):
            if resend.done():
                break
            await asyncio.sleep(0)
        arrive.set()
        await asyncio.wait_for(asyncio.gather(first, resend), 5.0)

    asyncio.run(body())
    intents.close()
    assert first_acks == [None]
    assert resend_acks == [None]
    assert acked_when_processed == [1], (
        "the resent replace was acknowledged while the first flow's cancel had not been "
        "processed: a kill -9 now leaves the order PENDING_REPLACE for good"
    )
    assert ex.cancels == 1  # one flow: the resend starts no second cancel + new


def test_a_replace_sent_again_is_not_acked_when_the_first_flow_is_cut_short(
    tmp_path: Path,
) -> None:
    """The first flow is cancelled (its session ended) while its cancel is on its way: the
    resend that waited for it is not acknowledged either (the OMS sends it again after its
    next pass), and it starts no flow of its own."""
    ex = _Exchange(rest_order(status="CANCELED"), _created())
    never = asyncio.Event()

    async def stuck_cancel(*_args: Any) -> dict[str, Any]:
        ex.cancels += 1
        await never.wait()
        return ex.cancelled

    ex.cancel_order = stuck_cancel  # type: ignore[method-assign]
    flows, intents = _flows(tmp_path, ex)
    acks: list[RequestFailed | None] = []

    async def body() -> tuple[bool, bool]:
        first = asyncio.create_task(_sent_once_done(flows.replace(REQUEST), acks.append))
        while not ex.cancels:
            await asyncio.sleep(0)
        resend = asyncio.create_task(_sent_once_done(flows.replace(REQUEST), acks.append))
        for _ in range(20):
            await asyncio.sleep(0)
        first.cancel()
        await asyncio.wait([first, resend], timeout=5.0)
        return first.cancelled(), resend.cancelled()

    assert asyncio.run(body()) == (True, True)
    intents.close()
    assert acks == [] and ex.cancels == 1
