"""The order flows against a stub exchange, each case found by the chaos run: the replace
(cancel + new) with the user-data stream's events arriving while the REST answers are in
flight (the OMS heard the old order cancelled, then refused the replace); a cancel whose
answer is lost (the OMS counts it as sent, and waited for it forever) and one acknowledged
before it went out; a replace's new order whose answer is lost (the OMS heard the order
cancelled while it rested at the exchange); a submit whose session ended before it went
out (rejected for an internal error, though never sent). The replace and lost-answer
fixes are main's (ccxtint); these tests hold them too."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt

from actors.connector.adapter import RequestFailed
from actors.connector.ccxt.adapter import _sent_once_done
from actors.connector.ccxt.errors import classify
from actors.connector.ccxt.flows import Flows, Pending
from actors.connector.ccxt.intents import Intent, IntentLog
from actors.connector.ccxt.tracker import Live, Tracker
from protocol.messages import (
    CancelOnVenue,
    ExecReport,
    OrdType,
    PlaceOrder,
    ReplaceOnVenue,
    Side,
    TimeInForce,
)
from tests.connector.ccxt import binance as bn
from tests.connector.ccxt.test_mapping import rest_order
from tests.log_stub import RecordingLog

D = Decimal
VENUE = "binance-local"


class _Exchange:
    """cancel_order / create_order answers; `during_cancel` runs before the cancel answers
    (the stream's event of the cancel overtaking the REST answer)."""

    def __init__(self, cancelled: dict[str, Any], created: dict[str, Any] | Exception) -> None:
        self.cancelled, self.created = cancelled, created
        self.during_cancel: Callable[[], None] = lambda: None
        self.cancel_failures: list[Exception] = []  # raised by the next cancels, in turn
        self.cancels = 0

    async def cancel_order(self, *_args: Any) -> dict[str, Any]:
        self.cancels += 1
        if self.cancel_failures:
            raise self.cancel_failures.pop(0)
        self.during_cancel()
        return self.cancelled

    async def create_order(self, *_args: Any) -> dict[str, Any]:
        if isinstance(self.created, Exception):
            raise self.created
        return self.created

    async def fetch_order(self, _id: Any, _symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("origClientOrderId") == "c1.r1" and isinstance(self.created, dict):
            return self.created
        return self.cancelled

    async def fetch_my_trades(self, *_args: Any) -> list[dict[str, Any]]:
        return []


class _Rest:
    def __init__(self, ex: Any) -> None:  # an exchange stub (here, test_positions_cut)
        self.ex = ex

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await fn(*args)

    def classify(self, exc: BaseException) -> Any:
        return classify(exc)

    def count(self, _kind: str) -> None:
        pass


def bare_flows(ex: Any, tracker: Tracker, intents: IntentLog, venue: str = VENUE) -> Flows:
    """`Flows` of `venue` over exchange stub `ex` (through `_Rest`) with no intake refusal,
    a session that must not end and no crash point: what these tests' flows run with."""
    return Flows(
        venue, _Rest(ex), tracker, intents, RecordingLog(),  # type: ignore[arg-type]
        intake_problem=lambda _r, _q: None, end_session=_never, crash_point=lambda _n: None,
    )  # fmt: skip


def _flows(tmp_path: Path, ex: _Exchange) -> tuple[Flows, IntentLog]:
    """Flows with c1 (0.1 BTC resting) live."""
    intents = IntentLog(tmp_path / "intents")
    tracker = Tracker(VENUE, intents, RecordingLog(), lambda: None)
    old = Intent(cl_ord_id="c1", symbol="BTC/USDT", side="BUY", qty="0.1")
    intents.add(old)
    tracker.live["c1"] = Live(old)
    flows = bare_flows(ex, tracker, intents)
    return flows, intents


def _replace_with(tmp_path: Path, ex: _Exchange) -> tuple[Tracker, list[ExecReport]]:
    """Replace c1 (0.1 BTC resting) by c1.r1 (0.1 at 49000); the stream reports the old
    order's cancel while the cancel's REST answer is on its way."""
    flows, intents = _flows(tmp_path, ex)
    tracker = flows.tracker

    def stream_event() -> None:  # what UserStream.watch_orders does with an order event
        intent = tracker.intent_for("c1", ex.cancelled)
        tracker.apply_order(intent, ex.cancelled, [])

    ex.during_cancel = stream_event
    request = ReplaceOnVenue(
        cl_ord_id="c1.r1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY,
        qty=D("0.1"), order_type=OrdType.LIMIT, price=D("49000"),
    )  # fmt: skip
    asyncio.run(flows.replace(request))
    reports = tracker.take()
    intents.close()
    return tracker, reports


async def _never(_reason: str) -> None:
    raise AssertionError("the session must not end")


def test_stream_cancel_of_a_replaced_order_is_not_reported_as_its_end(tmp_path: Path) -> None:
    """The old order's cancel, seen on the stream before the cancel's REST answer, is the
    replace's: the OMS hears accepted, then "replaced" (the new venue order), and never
    that the old order was cancelled."""
    cancelled = rest_order(status="CANCELED")
    created = rest_order(orderId=29, clientOrderId="c1.r1", price="49000.00000000")
    tracker, reports = _replace_with(tmp_path, _Exchange(cancelled, created))
    kinds = [(r.cl_ord_id, r.kind) for r in reports]
    assert ("c1", "cancelled") not in kinds, kinds
    assert ("c1.r1", "replaced") in kinds, kinds
    assert "c1" not in tracker.live and "c1.r1" in tracker.live


def test_replace_whose_new_order_answer_is_lost_finds_the_new_order(tmp_path: Path) -> None:
    """The new order's answer is lost (timeout): it is looked up by its client id, found
    on the book, and the OMS hears "replaced", not that the order was cancelled (it rests
    at the exchange as c1.r1)."""
    cancelled = rest_order(status="CANCELED")
    created = rest_order(orderId=29, clientOrderId="c1.r1", price="49000.00000000")
    ex = _Exchange(cancelled, created)
    lost = ccxt.RequestTimeout("no answer in 5.0 s")

    async def create_lost(*_args: Any) -> dict[str, Any]:
        raise lost

    ex.create_order = create_lost  # type: ignore[method-assign]
    tracker, reports = _replace_with(tmp_path, ex)
    kinds = [(r.cl_ord_id, r.kind) for r in reports]
    assert ("c1", "cancelled") not in kinds, kinds
    assert ("c1.r1", "replaced") in kinds, kinds
    assert "c1.r1" in tracker.live


def test_stream_cancel_is_reported_when_the_new_order_is_refused(tmp_path: Path) -> None:
    """The replace's new order refused (insufficient balance): the old order's cancel is
    the end of the order, reported once."""
    cancelled = rest_order(status="CANCELED")
    refused = bn.raised(400, {"code": -2010, "msg": "Account has insufficient balance."})
    _, reports = _replace_with(tmp_path, _Exchange(cancelled, refused))
    kinds = [(r.cl_ord_id, r.kind) for r in reports]
    assert kinds.count(("c1", "cancelled")) == 1, kinds
    assert not [k for k in kinds if k[1] == "replaced"], kinds


def test_cancel_whose_answer_is_lost_is_sent_again(tmp_path: Path) -> None:
    """A cancel answered 503 (not processed) is sent again: the order is cancelled at the
    exchange and the OMS hears it, instead of waiting on a cancel that never arrived."""
    ex = _Exchange(rest_order(status="CANCELED"), rest_order())
    ex.cancel_failures = [bn.raised(503, "Service Unavailable")] * 2
    flows, intents = _flows(tmp_path, ex)
    request = CancelOnVenue(
        cl_ord_id="c1.c1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=D("0.1")
    )
    asyncio.run(flows.cancel(request))
    kinds = [(r.cl_ord_id, r.kind) for r in flows.tracker.take()]
    intents.close()
    assert ex.cancels == 3
    assert kinds == [("c1", "accepted"), ("c1", "cancelled")], kinds


def test_cancel_refused_as_such_is_not_sent_again(tmp_path: Path) -> None:
    """A cancel the exchange refused (the order is gone: -2011) is not sent again; the
    order's state is looked up and the cancel is rejected."""
    ex = _Exchange(rest_order(status="FILLED", executedQty="0.10000000"), rest_order())
    ex.cancel_failures = [bn.raised(400, {"code": -2011, "msg": "Unknown order sent."})]
    flows, intents = _flows(tmp_path, ex)
    request = CancelOnVenue(
        cl_ord_id="c1.c1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=D("0.1")
    )
    asyncio.run(flows.cancel(request))
    kinds = [(r.cl_ord_id, r.kind) for r in flows.tracker.take()]
    intents.close()
    assert ex.cancels == 1
    assert kinds[-1] == ("c1.c1", "cancel_rejected"), kinds


def test_cancel_is_acknowledged_as_sent_only_once_its_flow_is_done() -> None:
    """The connector acknowledges a cancel once its flow is done, never before it went out:
    a flow cut short (its session ended, its connector terminated) is never acknowledged,
    so the OMS sends the cancel again after its next pass (chaos soak: SIGTERM of the
    connector between acknowledging a cancel and sending it left it PENDING_CANCEL)."""
    answers: list[RequestFailed | None] = []

    async def body() -> None:
        started = asyncio.Event()

        async def cut_short() -> None:
            started.set()
            await asyncio.Event().wait()

        task = asyncio.ensure_future(_sent_once_done(cut_short(), answers.append))
        await started.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert answers == []
        await _sent_once_done(asyncio.sleep(0), answers.append)

    asyncio.run(body())
    assert answers == [None]


def test_submit_after_the_session_ended_is_left_unsent_not_rejected(tmp_path: Path) -> None:
    """The order was acked as sent, then the session ended before its submit ran (the
    exchange object is gone): no REJECTED for an order that may be sent once the session
    is back, only "unsent" (the OMS does not count that resubmission); its intent stays
    live for the OMS's status query."""
    ex = _Exchange(rest_order(status="CANCELED"), rest_order())
    flows, intents = _flows(tmp_path, ex)
    flows.rest.ex = None
    order = PlaceOrder(
        cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=D("0.1"),
        order_type=OrdType.LIMIT, price=D("50000"), tif=TimeInForce.DAY,
    )  # fmt: skip
    pending = Pending(flows.tracker.live["c1"].intent, order, lambda _r: None, lookup_first=False)
    asyncio.run(flows.submit(pending))
    reports = flows.tracker.take()
    intents.close()
    assert [(r.kind, r.cl_ord_id) for r in reports] == [("unsent", "c1")]
    assert "c1" in flows.tracker.live


class _LookupExchange(_Exchange):
    """Lookups by client id answer with `lookups` in turn (an exception is raised); every
    create is counted."""

    def __init__(self, *lookups: Exception) -> None:
        super().__init__(rest_order(status="CANCELED"), rest_order())
        self.lookups, self.creates = list(lookups), 0

    async def fetch_order(self, _id: Any, _symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        raise self.lookups.pop(0)

    async def create_order(self, *_args: Any) -> dict[str, Any]:
        self.creates += 1
        return await super().create_order()


def _resend(flows: Flows) -> Pending:
    """The OMS's resubmission of c1 (its intent known here: looked up first)."""
    order = PlaceOrder(
        cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=D("0.1"),
        order_type=OrdType.LIMIT, price=D("50000"), tif=TimeInForce.DAY,
    )  # fmt: skip
    return Pending(flows.tracker.live["c1"].intent, order, lambda _r: None, lookup_first=True)


def test_a_resend_whose_lookup_is_inconclusive_is_reported_unsent(tmp_path: Path) -> None:
    """The exchange does not answer the lookup before a resend (a timeout, a 503): nothing
    is sent (it may be there already) and the OMS hears "unsent", so that resubmission does
    not count toward its `max_resubmits`; each occasion has its own exec id."""
    ex = _LookupExchange(ccxt.RequestTimeout("no answer"), ccxt.ExchangeNotAvailable("503"))
    flows, intents = _flows(tmp_path, ex)
    asyncio.run(flows.submit(_resend(flows)))
    asyncio.run(flows.submit(_resend(flows)))
    reports = flows.tracker.take()
    intents.close()
    assert ex.creates == 0
    assert [(r.kind, r.cl_ord_id, r.side) for r in reports] == [("unsent", "c1", Side.BUY)] * 2
    assert len({r.exec_id for r in reports}) == 2


def test_a_resend_the_exchange_says_it_never_saw_is_sent_not_reported_unsent(
    tmp_path: Path,
) -> None:
    """The lookup answers "no such order": the resend goes out, once, and no "unsent"."""
    ex = _LookupExchange(ccxt.OrderNotFound("-2013 Order does not exist."))
    flows, intents = _flows(tmp_path, ex)
    asyncio.run(flows.submit(_resend(flows)))
    reports = flows.tracker.take()
    intents.close()
    assert ex.creates == 1 and "unsent" not in [r.kind for r in reports]


def test_a_resend_while_a_submit_of_it_runs_is_reported_unsent(tmp_path: Path) -> None:
    """The OMS resends while the first submit of the client id is still running: the
    second is not sent (the first is its answer) and is reported "unsent"."""
    flows, intents = _flows(tmp_path, _LookupExchange())
    flows.inflight.add("c1")
    asyncio.run(flows.submit(_resend(flows)))
    reports = flows.tracker.take()
    intents.close()
    assert [r.kind for r in reports] == ["unsent"]


class _HangingLookup(_LookupExchange):
    async def fetch_order(self, _id: Any, _symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        await asyncio.Event().wait()  # never answers: the session ends first
        raise AssertionError("unreachable")


def test_a_resend_cancelled_with_its_session_before_it_went_out_is_reported_unsent(
    tmp_path: Path,
) -> None:
    """The session ends (its tasks cancelled) while the lookup before a resend waits:
    nothing went out, "unsent"; one cancelled while its create is on its way is not."""
    ex = _HangingLookup()
    flows, intents = _flows(tmp_path, ex)

    async def body() -> None:
        task = asyncio.create_task(flows.submit(_resend(flows)))
        while flows.lookups == 0:
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(body())
    assert [r.kind for r in flows.tracker.take()] == ["unsent"]
    sending = _resend(flows)
    sending.sending = True
    flows.inflight.clear()

    async def cancelled_while_sending() -> None:
        task = asyncio.create_task(flows.submit(sending))
        while flows.lookups == 1:
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(cancelled_while_sending())
    intents.close()
    assert flows.tracker.take() == []
