"""A ccxt positions answer whose balance may be AHEAD of its cut: fills the exchange made
before the balance read, of orders we answer for, that the poll after the read did not
queue. `Queries.positions` reads the balance, then looks up every live order
(`Flows.poll_live`) so that its fills the user-data stream has not delivered yet are
queued before the answer (and so are in the cut the connector stamps on it). An order
whose lookup failed (a timeout: `request_timeout_s = 1.0` on a loaded machine), whose
trades' fetch failed ("the next poll tries again"), or which is a replace's new order
held back until "replaced" is queued, had its fills left out: the answer claimed the cut
anyway and the heartbeat saw the venue ahead of the OMS by those fills (a false
`position_divergence`, the reverse of test_positions_cut.py's). Such an answer must name
no consistent cut; one whose orders were all confirmed still is compared at tolerance 0.

The same real classes as test_positions_cut.py (`Queries`, `Flows`, `Tracker`,
`Replaces`, the connector's `ExecSequencer`, the OMS's `ExecLog`, `position_diff`) over a
stub exchange that holds our orders and their trades; the stream is silent throughout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest

from actors.connector.adapter import NoConsistentCut, RequestFailed
from actors.connector.ccxt.intents import Intent, IntentLog
from actors.connector.ccxt.tracker import Live, Tracker
from protocol.messages import OrdType, PositionView, ReplaceOnVenue, Side
from tests.connector.ccxt import binance as bn
from tests.connector.ccxt.test_mapping import my_trade, rest_order
from tests.connector.ccxt.test_positions_cut import BTC, D, _Account, _Venue
from tests.connector.ccxt.test_replace_restart import NOT_FOUND

C1 = Intent(cl_ord_id="c1", symbol=BTC, side="BUY", qty="0.1")
REPLACE = ReplaceOnVenue(
    cl_ord_id="c1.r1", orig_cl_ord_id="c1", symbol=BTC, side=Side.BUY, qty=D("0.1"),
    order_type=OrdType.LIMIT, price=D("49000"),
)  # fmt: skip
Answer = list[PositionView] | NoConsistentCut[list[PositionView]]


class _Orders(_Account):
    """The exchange with our orders on it (`orders`: client id -> the fields of its GET
    /api/v3/order answer) and their trades; `fill` trades one: the balance moves, the
    stream says nothing. A request named in `failing` ("fetch_order c1",
    "fetch_my_trades") times out. A create (a replace's new order) is taken, trades
    `create_fill` at once, and its answer waits for `create_answer`."""

    def __init__(self, tracker: Tracker, trades_during_reads: int) -> None:
        super().__init__(tracker, trades_during_reads)
        self.orders: dict[str, dict[str, Any]] = {}
        self.my_trades: list[dict[str, Any]] = []
        self.failing: set[str] = set()
        self.create_fill = ""
        self.created = asyncio.Event()
        self.create_answer = asyncio.Event()

    def place(self, cl_ord_id: str, order_id: int, price: str = "50000.00000000") -> None:
        self.orders[cl_ord_id] = {"orderId": order_id, "clientOrderId": cl_ord_id, "price": price}

    def fill(self, cl_ord_id: str, qty: str) -> None:
        order = self.orders[cl_ord_id]
        px = D(order["price"])
        done = D(order.get("executedQty", "0")) + D(qty)
        order.update(executedQty=str(done), cummulativeQuoteQty=str(done * px),
                     status="PARTIALLY_FILLED")  # fmt: skip
        trade_id = 700 + len(self.my_trades)
        self.my_trades.append(my_trade(trade_id, qty, str(px), order["orderId"]))
        self.btc += D(qty)

    def _timeout(self, request: str) -> None:
        if request in self.failing:
            raise ccxt.RequestTimeout("no answer in 1.0 s")

    async def fetch_order(self, _id: Any, _symbol: str, params: dict[str, Any]) -> Any:
        cl_ord_id = params["origClientOrderId"]
        self._timeout(f"fetch_order {cl_ord_id}")
        if cl_ord_id not in self.orders:
            raise bn.raised(400, NOT_FOUND)
        return rest_order(**self.orders[cl_ord_id])

    async def fetch_my_trades(self, _s: str, _since: Any, _n: int, params: dict[str, Any]) -> Any:
        self._timeout("fetch_my_trades")
        rows = [t for t in self.my_trades if str(t["orderId"]) == str(params["orderId"])]
        return bn.parse_trades(rows)

    async def cancel_order(self, _id: Any, _symbol: str, params: dict[str, Any]) -> Any:
        self.orders[params["origClientOrderId"]]["status"] = "CANCELED"
        return rest_order(**self.orders[params["origClientOrderId"]])

    async def create_order(self, *_args: Any) -> Any:
        self.place(REPLACE.cl_ord_id, 29, price="49000.00000000")
        if self.create_fill:
            self.fill(REPLACE.cl_ord_id, self.create_fill)
        self.created.set()
        await self.create_answer.wait()
        return rest_order(**self.orders[REPLACE.cl_ord_id])


def _exchange(venue: _Venue) -> _Orders:
    assert isinstance(venue.account, _Orders)
    return venue.account


def with_c1(tmp_path: Path, account: type[_Orders]) -> _Venue:
    """c1 (buy 0.1 BTC at 50000, exchange order 28) is an order we answer for."""
    venue = _Venue(tmp_path, trades_during_reads=0, account=account)
    venue.intents.add(C1)
    venue.tracker.live["c1"] = Live(C1)
    _exchange(venue).place("c1", 28)
    return venue


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[_Venue]:
    venue = with_c1(tmp_path, _Orders)
    yield venue
    venue.intents.close()


async def _positions(venue: _Venue) -> tuple[Answer, int]:
    """The adapter's answer, and `exec_mark` when it came (the connector's cut)."""
    got: list[tuple[Any, int]] = []
    await venue.queries.positions(lambda result: got.append((result, venue.tracker.exec_mark)))
    [(result, mark)] = got
    assert not isinstance(result, RequestFailed), result
    return result, mark


def _unvouched(venue: _Venue, result: Answer, mark: int) -> str:
    """Why a plain answer is wrong: what the heartbeat would take for a divergence."""
    if isinstance(result, NoConsistentCut):
        return ""
    diff = venue.heartbeat_diff(result, mark)
    return f"a plain answer {result}: the heartbeat sees venue - OMS = {diff} at its cut"


def test_an_order_whose_lookup_failed_leaves_the_balance_unvouched(venue: _Venue) -> None:
    """c1 traded 0.01 before the balance read; its lookup after the read timed out, so
    that fill is not queued: the balance is ahead of the cut, the answer names none."""
    ex = _exchange(venue)
    ex.fill("c1", "0.01")
    ex.failing.add("fetch_order c1")
    result, mark = asyncio.run(_positions(venue))
    assert isinstance(result, NoConsistentCut), _unvouched(venue, result, mark)
    assert [(p.symbol, p.qty) for p in result.answer] == [(BTC, D("0.01"))]


def test_an_order_whose_trades_fetch_failed_leaves_the_balance_unvouched(
    venue: _Venue,
) -> None:
    """c1's lookup shows 0.01 filled, but fetching its trades timed out (logged, "the next
    poll tries again"): the fill is not queued, the answer names no cut. The next answer,
    its trades fetched, is compared at its cut and agrees."""
    ex = _exchange(venue)
    ex.fill("c1", "0.01")
    ex.failing.add("fetch_my_trades")
    result, mark = asyncio.run(_positions(venue))
    assert isinstance(result, NoConsistentCut), _unvouched(venue, result, mark)
    ex.failing.clear()
    result, mark = asyncio.run(_positions(venue))
    assert isinstance(result, list), result
    assert venue.heartbeat_diff(result, mark) == {}


def _during_replace(venue: _Venue, create_fill: str) -> tuple[Answer, int]:
    """Replace c1 by c1.r1: the new order is taken (and trades `create_fill` at once),
    and the positions answer is made while the create's answer is on its way; then the
    answer arrives and the replace runs to its end."""
    ex = _exchange(venue)
    ex.create_fill = create_fill

    async def run() -> tuple[Answer, int]:
        replace = asyncio.create_task(venue.flows.replace(REPLACE))
        await ex.created.wait()
        answer = await _positions(venue)
        ex.create_answer.set()
        await replace
        return answer

    return asyncio.run(run())


def test_a_replace_whose_new_order_filled_leaves_the_balance_unvouched(venue: _Venue) -> None:
    """The replace's new order traded 0.01 before the balance read; its fills are held back
    until "replaced" is queued (`Tracker.held`), which waits for the create's answer: the
    poll's lookup found the fill and could not queue it. The answer names no cut."""
    result, mark = _during_replace(venue, create_fill="0.01")
    assert isinstance(result, NoConsistentCut), _unvouched(venue, result, mark)
    kinds = [r.kind for r in venue.tracker.execs if r.cl_ord_id == "c1.r1"]
    assert kinds == ["replaced", "fill"], kinds  # after the answer: the replace's end


def test_a_replace_whose_new_order_has_not_traded_keeps_the_cut(venue: _Venue) -> None:
    """A replace in flight whose new order has not traded leaves nothing out: the answer
    names its cut, and venue and OMS agree at it."""
    result, mark = _during_replace(venue, create_fill="")
    assert isinstance(result, list), result
    assert venue.heartbeat_diff(result, mark) == {}


def test_a_replace_left_unsettled_whose_new_order_is_not_known_leaves_it_unvouched(
    tmp_path: Path,
) -> None:
    """A replace cut short by a restart (both intents live: `Tracker.unsettled`): the poll
    settles it by looking up the new order, which traded 0.01 before the balance read.
    That lookup timed out: the fill is not queued, the answer names no cut."""
    log = IntentLog(tmp_path / "intents")
    log.add(C1)
    log.add(Intent(cl_ord_id="c1.r1", symbol=BTC, side="BUY", qty="0.1", orig_cl_ord_id="c1"))
    log.sync()
    log.close()
    venue = _Venue(tmp_path, trades_during_reads=0, account=_Orders)
    try:
        assert set(venue.tracker.unsettled) == {"c1.r1"}
        ex = _exchange(venue)
        ex.place("c1", 28)
        ex.orders["c1"]["status"] = "CANCELED"
        ex.place("c1.r1", 29, price="49000.00000000")
        ex.fill("c1.r1", "0.01")
        ex.failing.add("fetch_order c1.r1")
        result, mark = asyncio.run(_positions(venue))
        assert isinstance(result, NoConsistentCut), _unvouched(venue, result, mark)
    finally:
        venue.intents.close()


def test_orders_all_confirmed_keep_the_cut_and_a_real_difference_shows(venue: _Venue) -> None:
    """c1 traded 0.01 (the poll queues it), and the account traded 0.01 by hand (no order
    of ours): every order confirmed, the answer names its cut and the heartbeat sees the
    venue 0.01 BTC ahead, at tolerance 0."""
    ex = _exchange(venue)
    ex.fill("c1", "0.01")
    ex.trade("0.01", reported=False)
    result, mark = asyncio.run(_positions(venue))
    assert isinstance(result, list), result
    assert venue.heartbeat_diff(result, mark) == {BTC: D("0.01")}


def test_an_answer_we_cannot_read_is_compared(venue: _Venue) -> None:
    """c1's lookup answer is unreadable (`ccxt_answer_unreadable`): no poll will read its
    fills, so the OMS lacks them for good and the difference is real. It is no doubt the
    next poll resolves: the answer names its cut and the heartbeat sees it (a human
    looks), instead of every answer going uncompared while c1 lives."""
    ex = _exchange(venue)
    ex.fill("c1", "0.01")

    async def unreadable(_id: Any, _symbol: str, _params: dict[str, Any]) -> Any:
        order = rest_order(**ex.orders["c1"])
        order["info"]["executedQty"] = ["0.01"]
        return order

    ex.fetch_order = unreadable  # type: ignore[method-assign]
    result, mark = asyncio.run(_positions(venue))
    assert isinstance(result, list), result
    assert venue.heartbeat_diff(result, mark) == {BTC: Decimal("0.01")}
