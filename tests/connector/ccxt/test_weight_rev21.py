"""Review rev21 of branch `weight4` (the merge of main's 'pending' / 'unsent' answers, the
mass cancel's gather and headroom): defects proven against the real adapter and the
simulated exchange (the rig of test_weight_budget, the fetch hook of test_weight_rev6)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from actors.connector.ccxt.exchange import NotSent, Rest
from protocol.ccxt_config import CcxtCfg
from protocol.config import VenueCfg
from protocol.messages import Side
from protocol.venue_messages import CancelOnVenue
from tests.connector.ccxt.test_weight_budget import KEY_ENV, SECRET_ENV, VENUE, _Quiet, _Rig
from tests.connector.ccxt.test_weight_rev4 import _open_at_exchange, _send, make_rig
from tests.connector.ccxt.test_weight_rev6 import (
    Fetch,
    _execs_of,
    _hook_fetch,
    _mass_cancel_running,
)

__all__ = ["make_rig"]  # the fixture, shared with rev4


def test_positions_asks_given_up_at_the_weight_gate_are_not_all_sent_later(
    make_rig: Callable[..., _Rig],
) -> None:
    """The weight budget is spent for the next ~7 s (another client on the IP, or our own
    burst). The heartbeat asks the venue's positions every beat while a divergence waits
    for confirmation (every 0.5 s in the chaos harness); its connector request times out
    after request_timeout_s (5 s here), and the connector's task keeps waiting at the
    gate: nothing bounds or joins them. Once the minute frees room, every one of them
    reads the balance (GET /api/v3/account, weight 20) and polls, for answers nobody
    waits for: the budget is spent again on abandoned requests, and the OMS's status
    queries and cancels wait behind them (a851195 lifted the sim's limit of
    test_ccxt_unsent_resubmit because of this). At most one balance read should go out
    for asks that waited together (joined), or none for asks past their caller's time."""
    rig = make_rig(poll_interval_s=60.0)  # the stream-down poll out of the way
    ids = _send(rig, 1)
    rig.run_until(lambda: _open_at_exchange(rig) == set(ids) and not rig.adapter.flows.gates)
    budget = rig.adapter.rest.budget
    free_in_s = 7.0  # past request_timeout_s (5 s): every caller below has given up
    spent = budget.budget - budget.used()
    budget._done.appendleft((time.monotonic() - budget.window_s + free_in_s, spent))
    budget._done_sum += spent
    assert budget.wait_s(20) > 5.0
    reads: list[float] = []

    async def hook(inner: Fetch, url: str, method: str, headers: Any, body: Any) -> Any:
        if method == "GET" and urlsplit(url).path.endswith("/api/v3/account"):
            reads.append(time.monotonic())
        return await inner(url, method, headers, body)

    _hook_fetch(rig, hook)
    asks, answers = 10, list[Any]()  # 5 s of the harness's beats
    for _ in range(asks):
        rig.adapter.positions(answers.append)
    rig.run_until(lambda: budget.waits, 5.0)
    waiting = sum(t.get_name() == "positions" for t in rig.adapter._tasks)
    rig.run_until(lambda: len(answers) == asks, 30.0)  # the room freed: all went
    assert len(reads) <= 1, (
        f"{waiting} positions asks waited at the gate past their caller's timeout, and "
        f"{len(reads)} balance reads (weight {20 * len(reads)}) went out for them once the "
        f"minute freed room"
    )


def test_a_cancel_after_the_minute_turns_does_not_wait_behind_given_up_positions_asks(
    make_rig: Callable[..., _Rig],
) -> None:
    """What the asks above cost a trading desk: our budget (480 of a 600 limit) is spent;
    200 of it leaves the window at T (~7 s), the rest ~48 s later. 25 positions asks wait
    at the gate meanwhile; their callers gave up at 5 s. At T they wake together and their
    balance reads (and their polls' lookups) take the freed 200, for answers nobody waits
    for. A cancel of a resting
    order sent just after T then waits at the gate until the next weight leaves the window
    (~48 s): the order rests and can fill meanwhile. It should go out at once (the room
    freed at T was there for it)."""
    rig = make_rig(poll_interval_s=60.0)
    ids = _send(rig, 1)
    rig.run_until(lambda: _open_at_exchange(rig) == set(ids) and not rig.adapter.flows.gates)
    budget = rig.adapter.rest.budget
    budget.limit = 600  # budget 480 (the exchange's own limit stays 6000: never a 429)
    freed = 200  # at T: room for 10 balance reads (weight 20)
    rest = budget.budget - budget.used() - freed
    now = time.monotonic()
    budget._done.appendleft((now - budget.window_s + 55.0, rest))  # before ours (answered
    budget._done.appendleft((now - budget.window_s + 7.0, freed))  # ~2 s ago): in order
    budget._done_sum += rest + freed
    assert budget.used() == budget.budget
    reads: list[float] = []

    async def hook(inner: Fetch, url: str, method: str, headers: Any, body: Any) -> Any:
        if method == "GET" and urlsplit(url).path.endswith("/api/v3/account"):
            reads.append(time.monotonic())
        return await inner(url, method, headers, body)

    _hook_fetch(rig, hook)
    for _ in range(25):
        rig.adapter.positions(lambda _r: None)
    # T: the given-up asks (their balance reads, then their polls' lookups) take the room
    rig.run_until(
        lambda: (
            time.monotonic() - now > 7.2
            and (budget.used() >= budget.budget or not _asks_at_the_gate(rig))
        ),
        20.0,
    )
    acks: list[Any] = []
    rig.adapter.cancel(
        CancelOnVenue(
            cl_ord_id="c-1", orig_cl_ord_id=ids[0], symbol="BTC/USDT", side=Side.BUY,
            qty=Decimal("0.01"),
        ),
        acks.append,
    )  # fmt: skip
    sent_at = time.monotonic()
    rig.loop.run_until(lambda: acks or time.monotonic() - sent_at > 10.0, 20.0)
    resting = _open_at_exchange(rig)
    for task in rig.adapter._tasks:  # still waiting at the gate: ended with the test
        if task.get_name().startswith(("cancel", "positions")):
            task.cancel()
    assert acks and not resting, (
        f"the cancel still waits at the gate 10 s after it was sent: {len(reads)} balance "
        f"reads of given-up asks took the room freed at T (weight used {budget.used()} of "
        f"{budget.budget}); resting: {sorted(resting)}"
    )


def _asks_at_the_gate(rig: _Rig) -> bool:
    return any(t.get_name() == "positions" for t in rig.adapter._tasks)


def test_a_new_order_waiting_at_the_gate_when_its_session_ends_is_reported_unsent(
    make_rig: Callable[..., _Rig],
) -> None:
    """main's promise (flows.py's docstring, `actors.oms.resubmit_unsent`): a submit that
    sends nothing because its session ended first or meanwhile says so ("unsent"), so the
    OMS queues it again / takes the resubmission back. After the merge `Pending.sending`
    is set before `create_order` is called, and the create may then wait at the weight
    gate (the ORDERS count, up to max_order_wait_s; a minute-window Retry-After, up to
    65 s). A session that ends meanwhile cancels it there (never sent) and nothing is
    reported: the OMS holds it as sent until its timeout, UNKNOWN, a status query after
    the reconnect and a resubmission counted toward max_resubmits."""
    rig = make_rig(orders_per_10s=5)  # ORDERS budget 4 per 10 s
    ids = _send(rig, 5)
    rig.run_until(lambda: len(_open_at_exchange(rig)) == 4)
    waiting = ids[4]
    assert waiting in rig.adapter.flows.inflight and rig.adapter.rest.orders_waiting == 1
    rig.adapter.disconnect("operator: venue disconnect")
    rig.run_until(lambda: rig.listener.downs and not rig.adapter.flows.inflight, 10.0)
    assert waiting not in _open_at_exchange(rig)  # never sent
    kinds = [e.kind for e in _execs_of(rig, waiting)]
    assert "unsent" in kinds, (
        f"{waiting} waited at the gate when the session ended and was never sent; the OMS "
        f"heard {kinds or 'nothing'}"
    )


def test_an_order_the_mass_cancel_withdraws_at_the_orders_gate_gets_one_final_report(
    make_rig: Callable[..., _Rig],
) -> None:
    """An order waits for the ORDERS count (`Rest._weigh_in`: `asyncio.wait_for` of the
    fence event). The mass cancel raises its fence (the event is set) and withdraws the
    order in the same step (its task cancelled, CANCELLED "withdrawn ... mass cancel"
    queued). On Python 3.11 `wait_for` swallows a cancel that comes while the awaited
    event completes: the submit goes on, finds the fence and is `NotSent` - a second final
    report, REJECTED "not sent: a mass cancel runs", for the order the OMS already has
    CANCELLED (refused there as a transition from a final state). One final report only."""
    rig = make_rig(orders_per_10s=5)  # ORDERS budget 4 per 10 s
    ids = _send(rig, 5)
    rig.run_until(lambda: len(_open_at_exchange(rig)) == 4)
    assert rig.adapter.rest.orders_waiting == 1  # ids[4] waits for the count
    done: list[Any] = []
    rig.adapter.mass_cancel(done.append)
    rig.run_until(lambda: done and not _mass_cancel_running(rig) and not rig.adapter._pending)
    rig.run_until(lambda: not rig.adapter.flows.inflight and not rig.adapter.flows.gates)
    assert done == [True] and not _open_at_exchange(rig)
    finals = [(e.kind, e.text) for e in _execs_of(rig, ids[4])]
    assert len(finals) == 1, f"{ids[4]} (never sent) was reported {finals}"


def test_a_418_with_an_absurd_retry_after_ends_the_session_instead_of_raising() -> None:
    """A 418 whose Retry-After is a huge finite number (malformed: "1e300", 20 digits):
    `Rest._hold` formats the ban's end with `time.gmtime(time.time() + seconds)`, which
    raises (OverflowError / OSError) inside ccxt's `on_rest_response`, after the hold and
    `_held_until` are set but before `on_long_hold`: the request fails with a non-ccxt
    error (classified "internal"/"unknown": a create is looked up), and the session stays
    up while every request is refused `RateHeld` - the venue not DOWN, the OMS sending
    orders that can never go out. The ban should end the session (as any 418 does)."""
    vcfg = VenueCfg(
        name=VENUE, kind="ccxt",
        ccxt=CcxtCfg(api_key_env=KEY_ENV, secret_env=SECRET_ENV, symbols=["BTC/USDT"]),
    )  # fmt: skip
    rest = Rest(vcfg, _Quiet(), [])
    ended: list[str] = []
    rest.on_long_hold = ended.append
    rest._read_answer(418, "http://x/api/v3/order", {"Retry-After": "1e300"}, "")
    assert len(ended) == 1, ended


def test_a_request_waiting_at_the_gate_goes_within_request_timeout_and_not_after() -> None:
    """rev21 #1's bound, both sides: a cancel or status query (not a new order) that waits
    at the gate for less than request_timeout_s goes once room frees (its caller still
    waits); one the room is not free for by then is not sent (`NotSent`, as a timeout)."""
    vcfg = VenueCfg(
        name=VENUE, kind="ccxt", request_timeout_s=1.0,
        ccxt=CcxtCfg(api_key_env=KEY_ENV, secret_env=SECRET_ENV, symbols=["BTC/USDT"]),
    )  # fmt: skip

    def gate_after(free_in_s: float) -> str:
        rest = Rest(vcfg, _Quiet(), [])
        budget = rest.budget
        budget._done.append((time.monotonic() - budget.window_s + free_in_s, budget.budget))
        budget._done_sum += budget.budget
        try:
            asyncio.run(rest._weigh_in(4, 0))
        except NotSent as exc:
            return str(exc)
        return "went"

    assert gate_after(0.3) == "went"
    assert gate_after(30.0).startswith("not sent: waited 1 s")
