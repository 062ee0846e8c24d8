"""Review rev6 of branch `weight`'s round-2 fixes (mass-cancel fence, the mass cancel not
held behind a submit on the wire, minute-window holds waited out, withdrawn ids): defects
proven against the real adapter and the simulated exchange (the rig of test_weight_budget).
Network delays are simulated at the client: a wrapper of the ccxt exchange's `fetch`
holds a request on its way to the exchange, or its answer on the way back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from actors.connector.ccxt.intents import Intent, IntentLog
from protocol.messages import ExecReport, OrdType, PlaceOrder, ReplaceOnVenue, Side, TimeInForce
from tests.connector.ccxt.test_weight_budget import PRICES, _Rig
from tests.connector.ccxt.test_weight_rev4 import _open_at_exchange, _send, make_rig

__all__ = ["make_rig"]  # the fixture, shared with rev4

D = Decimal
Fetch = Callable[[str, str, Any, Any], Awaitable[Any]]


def _hook_fetch(rig: _Rig, hook: Callable[[Fetch, str, str, Any, Any], Awaitable[Any]]) -> None:
    """Every HTTP request of the session's exchange goes through `hook(inner, url, method,
    headers, body)` (below the weight gate: what the hook holds is on the wire)."""
    ex = rig.adapter.rest.ex
    inner: Fetch = ex.fetch

    async def fetch(url: str, method: str = "GET", headers: Any = None, body: Any = None) -> Any:
        return await hook(inner, url, method, headers, body)

    ex.fetch = fetch


async def _until(pred: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def _mass_cancel_running(rig: _Rig) -> bool:
    return any(t.get_name() == "mass_cancel" for t in rig.adapter._tasks)


def _order(cl_ord_id: str, symbol: str = "BTC/USDT") -> PlaceOrder:
    return PlaceOrder(
        cl_ord_id=cl_ord_id, symbol=symbol, side=Side.BUY, qty=D("0.01"),
        order_type=OrdType.LIMIT, price=PRICES[symbol], tif=TimeInForce.GTC,
    )  # fmt: skip


def _execs_of(rig: _Rig, cl_ord_id: str) -> list[ExecReport]:
    return [e for e in rig.listener.execs if e.cl_ord_id == cl_ord_id]


def test_a_submit_that_lands_during_the_mass_cancels_first_pass_is_cancelled(
    make_rig: Callable[..., _Rig],
) -> None:
    """A create is on the wire when the kill switch's mass cancel starts (two symbols).
    The network delays it: it reaches the exchange just after cancel_all_orders(BTC), and
    its answer (the order rests) comes back while cancel_all_orders(ETH) is out. When the
    first pass is over no submit is at the gate or on the wire any more, so the mass cancel
    decides there is nothing to cancel again: it answered True and the order rests."""
    rig = make_rig()
    btc_cancelled, create_answered = asyncio.Event(), asyncio.Event()
    slow = "m-000"

    async def hook(inner: Fetch, url: str, method: str, headers: Any, body: Any) -> Any:
        path = urlsplit(url).path
        if method == "POST" and path.endswith("/api/v3/order"):  # delayed on its way
            await asyncio.wait_for(btc_cancelled.wait(), 4.0)
            try:
                return await inner(url, method, headers, body)
            finally:
                create_answered.set()
        if method == "DELETE" and path.endswith("/openOrders"):
            if "ETHUSDT" in url:  # out while the create's answer comes back and is applied
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(create_answered.wait(), 3.0)
                await _until(lambda: slow not in rig.adapter.flows.gates, 3.0)
            try:
                return await inner(url, method, headers, body)
            finally:
                if "BTCUSDT" in url:
                    btc_cancelled.set()
        return await inner(url, method, headers, body)

    _hook_fetch(rig, hook)
    acks: list[Any] = []
    rig.adapter.place(_order(slow), acks.append)
    rig.adapter.flush()
    rig.run_until(lambda: rig.adapter.rest.fence.orders_on_wire == 1, 10.0)  # its create is out
    done: list[Any] = []
    rig.adapter.mass_cancel(done.append)
    rig.run_until(lambda: done, 20.0)
    assert done == [True]
    rig.run_until(lambda: not _mass_cancel_running(rig), 20.0)
    assert [e.kind for e in _execs_of(rig, slow)][:1] == ["accepted"]  # it did land
    assert slow not in _open_at_exchange(rig), (
        "the mass cancel answered True and is over; the submit that was on the wire rests"
    )


def test_a_replace_in_its_cancel_step_sends_no_new_order_after_the_mass_cancel(
    make_rig: Callable[..., _Rig],
) -> None:
    """A replace's cancel step (DELETE /api/v3/order) is processed by the exchange, its
    answer is still on the way back when the kill switch's mass cancel runs. Nothing is at
    the gate or on the wire as a new-order POST, so the mass cancel cancels (nothing),
    answers True and drops its fence; then the cancel's answer arrives and the replace
    sends its new order, which rests after the mass cancel."""
    rig = make_rig()
    ids = _send(rig, 1)
    rig.run_until(lambda: _open_at_exchange(rig) == set(ids), 10.0)
    mass_answered = asyncio.Event()

    async def hook(inner: Fetch, url: str, method: str, headers: Any, body: Any) -> Any:
        answer = await inner(url, method, headers, body)
        if method == "DELETE" and urlsplit(url).path.endswith("/api/v3/order"):
            await asyncio.wait_for(mass_answered.wait(), 4.0)  # its answer, delayed
        return answer

    _hook_fetch(rig, hook)
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
    rig.run_until(lambda: not _open_at_exchange(rig), 10.0)  # the cancel step is processed
    done: list[Any] = []

    def answered(ok: Any) -> None:
        done.append(ok)
        mass_answered.set()

    rig.adapter.mass_cancel(answered)
    rig.run_until(lambda: done, 20.0)
    assert done == [True]
    rig.run_until(lambda: _execs_of(rig, new) and not _mass_cancel_running(rig), 20.0)
    assert not _open_at_exchange(rig), (
        f"the replace's new order went out after the mass cancel answered: {_execs_of(rig, new)}"
    )


def test_a_mass_cancel_during_a_minute_window_hold_answers_before_risks_deadline(
    make_rig: Callable[..., _Rig],
) -> None:
    """A 429 of the IP's minute window (Retry-After 30 s) is now waited out. The kill
    switch's mass cancel meanwhile sleeps in the hold (`Rest._pace`) and answers only after
    it: risk's deadline is request_timeout_s + 1 (6 s); one timeout and risk force-restarts
    the connector, whose new process has forgotten the hold and sends at once into the
    429 window (the road to a 418 ban). The answer must come within the deadline (refused
    while the hold runs is an answer; risk retries it)."""
    rig = make_rig()
    ids = _send(rig, 1)
    rig.run_until(lambda: _open_at_exchange(rig) == set(ids), 10.0)
    rest = rig.adapter.rest
    rest._read_answer(429, rig.url + "/api/v3/order", {"Retry-After": "30"}, "")
    assert rest.budget.hold_s() > 25
    done: list[Any] = []
    rig.adapter.mass_cancel(done.append)
    deadline_s = 5.0 + 1.0  # the rig's request_timeout_s + risk's margin
    started = time.monotonic()
    rig.loop.run_until(lambda: done or time.monotonic() - started > 2 * deadline_s, 40.0)
    assert done, (
        f"no mass-cancel answer {2 * deadline_s:g} s into a 30 s hold "
        f"(risk's deadline: {deadline_s:g} s); {rest.budget.hold_s():.0f} s of the hold left"
    )


def test_a_new_order_placed_during_a_minute_window_hold_keeps_its_bound(
    make_rig: Callable[..., _Rig],
) -> None:
    """e30fcb2: "a shorter 429 holds every request while new orders keep their bound at
    the gate (max_order_wait_s)". A new order placed while the hold runs sleeps the whole
    hold in `Rest.call`'s `_pace` (no bound there: it applies in `_weigh_in` only, whose
    clock starts after `_pace`), then goes out: acked to the OMS as sent, it reaches the
    exchange up to max_hold_s (65 s) later instead of being REJECTED 'not sent' at its
    bound (here 2 s; the hold 8 s)."""
    rig = make_rig()
    rest = rig.adapter.rest
    rest.max_order_wait_s = 2.0
    rest._read_answer(429, rig.url + "/api/v3/order", {"Retry-After": "8"}, "")
    late = "h-000"
    acks: list[Any] = []
    rig.adapter.place(_order(late), acks.append)
    rig.adapter.flush()
    assert acks == [None]
    rig.loop.run_until(lambda: _execs_of(rig, late), 30.0)
    first = _execs_of(rig, late)[0]
    assert (first.kind, first.text[:9]) == ("rejected", "not sent:"), (
        f"sent after waiting the whole hold past its bound: {first.kind} {first.text!r}"
    )


def test_a_failed_cancel_of_what_landed_after_the_mass_cancel_answered_is_tried_again(
    make_rig: Callable[..., _Rig],
) -> None:
    """87c9707 answers the mass cancel (True) before the submits on the wire are over, and
    cancels whichever landed in a second pass. A create on the wire lands after the answer;
    the second cancel_all_orders draws one 503 (not processed). Nothing tries it again and
    risk, told True, never sends another: the order rests with only a log line
    (`ccxt_mass_cancel_after_wire accepted=False`). Before, the mass cancel cancelled after
    the wire and a failure was its answer (False: risk retries)."""
    rig = make_rig()
    mass_answered = asyncio.Event()
    btc_cancels = [0]
    slow = "f-000"

    async def hook(inner: Fetch, url: str, method: str, headers: Any, body: Any) -> Any:
        path = urlsplit(url).path
        if method == "POST" and path.endswith("/api/v3/order"):  # lands after the answer
            await asyncio.wait_for(mass_answered.wait(), 4.0)
        if method == "DELETE" and path.endswith("/openOrders") and "BTCUSDT" in url:
            btc_cancels[0] += 1
            if btc_cancels[0] == 2:  # the second pass's: one 503, not processed
                rig.server.faults.apply("http_5xx", 1)
        return await inner(url, method, headers, body)

    _hook_fetch(rig, hook)
    acks: list[Any] = []
    rig.adapter.place(_order(slow), acks.append)
    rig.adapter.flush()
    rig.run_until(lambda: rig.adapter.rest.fence.orders_on_wire == 1, 10.0)
    done: list[Any] = []

    def answered(ok: Any) -> None:
        done.append(ok)
        mass_answered.set()

    rig.adapter.mass_cancel(answered)
    rig.run_until(lambda: done, 20.0)
    assert done == [True]
    rig.run_until(lambda: not _mass_cancel_running(rig), 20.0)
    assert btc_cancels[0] >= 2  # the second pass ran (and drew its 503)
    assert slow not in _open_at_exchange(rig), (
        "the second pass's cancel failed once; the order that landed rests, risk was told True"
    )


def test_a_resend_of_an_order_withdrawn_and_still_live_after_a_restart_is_answered(
    make_rig: Callable[..., _Rig], tmp_path: Path
) -> None:
    """The withdrawal's 'w' record is in the intent log but not its 'd' (a replace's
    `sync(done=False)` wrote the turn's buffer, then kill -9 before the turn's flush; the
    OMS never got the CANCELLED either). After the restart the intent is live and
    withdrawn: the OMS's resend of its PlaceOrder is acked, then `Flows.submit` returns
    at 'was withdrawn' and says nothing. The OMS hears no final state (its status query
    says never seen, its resend is dropped again) until the intent is dropped as unseen
    (INTENT_UNSEEN_S, 10 min)."""
    gone = "g-000"
    log = IntentLog(tmp_path / "store")
    log.add(Intent(gone, "BTC/USDT", "BUY", "0.01"))
    log.sync()
    log.withdraw(gone)  # Flows.withdraw: 'w' to the buffer, then forget: 'd' to done_buf
    log.done(gone)
    log.sync(done=False)  # the replace's sync in the same turn
    log.close()  # (kill -9: the 'd' never written)
    rig = make_rig()
    assert gone in rig.adapter.tracker.live and gone in rig.adapter.intents.withdrawn
    acks: list[Any] = []
    rig.adapter.place(_order(gone), acks.append)
    rig.adapter.flush()
    assert acks == [None]

    def submits() -> list[str]:
        return [t.get_name() for t in rig.adapter._tasks if t.get_name().startswith("submit")]

    rig.run_until(lambda: not submits() and not rig.adapter.tracker.execs, 20.0)
    assert gone not in _open_at_exchange(rig)  # not sent: good
    assert _execs_of(rig, gone), "the resend was acked and then nothing: no final state"
