"""The ccxt connector against the simulated exchange's request limits (Binance's: weight
per IP over a rolling minute, 429 then a 418 ban): the real adapter (ccxt.pro binance)
and the real exchange server, both on the adapter's asyncio loop, with the user-data
stream refused so the REST poll carries everything. A poll costs the open orders of each
symbol, not a lookup per live order; under a low limit the connector never draws a 429
or a 418 and still reports an order cancelled behind its back; weight another client
spends on the IP is learned from the exchange's header."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from actors.connector.ccxt.adapter import CcxtAdapter
from actors.connector.ccxt.exchange import BACKGROUND_SHARE, Rest
from actors.connector.ccxt.poll import open_orders_plan
from actors.connector.ccxt.weight import WeightBudget
from actors.exchangesim.auth import Credentials
from actors.exchangesim.book import Exchange
from actors.exchangesim.errors import ApiError
from actors.exchangesim.faults import Faults
from actors.exchangesim.rest import RestApi
from actors.exchangesim.server import ExchangeServer
from actors.exchangesim.weights import limits_cfg, request_weight
from actors.exchangesim.wsapi import WsAnswer, WsApi, _error
from actors.venuesim.store import SimStore
from protocol.ccxt_config import CcxtCfg
from protocol.config import VenueCfg
from protocol.messages import OrdType, PlaceOrder, Side, TimeInForce
from tests.connector.fix.support import RecordingListener, TestLoop
from tests.exchangesim.rig import API_KEY, SECRET, sim_cfg

D = Decimal
VENUE = "bx"
KEY_ENV, SECRET_ENV = "TP_TEST_W_KEY", "TP_TEST_W_SECRET"
SYMBOLS = ("BTC/USDT", "ETH/USDT")
PRICES = {"BTC/USDT": D("40000"), "ETH/USDT": D("2000")}  # far below the asks: they rest


class _Quiet:
    def debug(self, event: str, **kw: Any) -> None: ...
    def info(self, event: str, **kw: Any) -> None: ...
    def warning(self, event: str, **kw: Any) -> None: ...
    def error(self, event: str, **kw: Any) -> None: ...


@dataclass
class _Rig:
    loop: TestLoop
    adapter: CcxtAdapter
    listener: RecordingListener
    server: ExchangeServer
    exchange: Exchange
    weights: list[int]  # the weight of every request the exchange took
    url: str

    def run_until(self, pred: Callable[[], Any], timeout_s: float = 30.0) -> None:
        """Turn the loop until `pred` holds; the exchange never refused a request."""

        def check() -> Any:
            assert not self.server.limiter.refused, self.server.limiter.refused
            return pred()

        self.loop.run_until(check, timeout_s)

    def weight_seen(self) -> int:
        """The request weight the exchange has counted so far (its own table)."""
        return sum(self.weights)


def _rig(
    tmp_path: Path, weight_per_min: int, poll_interval_s: float, **sim_kw: Any
) -> Iterator[_Rig]:
    loop, listener = TestLoop(), RecordingListener()
    ccfg = CcxtCfg(
        api_key_env=KEY_ENV, secret_env=SECRET_ENV, symbols=list(SYMBOLS),
        poll_interval_s=poll_interval_s, poll_idle_s=poll_interval_s,
    )  # fmt: skip
    vcfg = VenueCfg(
        name=VENUE, kind="ccxt", ccxt=ccfg, request_timeout_s=5.0, rate_limit_per_s=500.0,
        rate_burst=100,
    )  # fmt: skip
    url: list[str] = []
    adapter = CcxtAdapter(
        loop, listener, vcfg, store_dir=tmp_path / "store", log=_Quiet(),
        environ={KEY_ENV: API_KEY, SECRET_ENV: SECRET}, base_url=lambda: url[0],
    )  # fmt: skip
    loop.after_turn.append(adapter.flush)
    store = SimStore.open(tmp_path / "sim")
    sim = sim_cfg(request_weight_per_min=weight_per_min, volatility_bps=0.0, **sim_kw)
    exchange = Exchange(sim, store, seed=7)
    creds = Credentials(API_KEY, SECRET)

    def clock() -> int:
        return int(time.time() * 1000)

    ws = WsApi(creds, clock)

    def no_stream(text: str) -> WsAnswer:  # the user-data stream is down: REST carries all
        return WsAnswer(_error(None, ApiError(-1000, "stream unavailable in this test")))

    ws.handle = no_stream  # type: ignore[method-assign]
    server = ExchangeServer(RestApi(exchange, creds, clock, limits_cfg(sim)), ws, Faults())
    rig = _Rig(loop, adapter, listener, server, exchange, [], "")
    admit = server.limiter.admit

    def counting(ip: str, weight: int, now: float, now_ms: int) -> Any:
        verdict = admit(ip, weight, now, now_ms)
        if not verdict.status:
            rig.weights.append(weight)
        return verdict

    server.limiter.admit = counting  # type: ignore[method-assign]
    port = adapter.bridge.run_until_complete(server.start("127.0.0.1", 0), 10.0)
    url.append(f"http://127.0.0.1:{port}")
    rig.url = url[0]
    try:
        adapter.connect()
        rig.run_until(lambda: listener.ups, 20.0)
        yield rig
    finally:
        adapter.bridge.run_until_complete(server.close(), 10.0)
        adapter.close()
        store.close()


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Callable[..., _Rig]]:
    gens: list[Iterator[_Rig]] = []

    def make(weight_per_min: int = 6000, poll_interval_s: float = 0.05, **sim_kw: Any) -> _Rig:
        gen = _rig(tmp_path, weight_per_min, poll_interval_s, **sim_kw)
        gens.append(gen)
        return next(gen)

    yield make
    for gen in gens:
        gen.close()


def _place(rig: _Rig, n: int, first: int = 0) -> list[str]:
    """n resting limit buys over both symbols, each accepted by the exchange."""
    ids = []
    for i in range(first, first + n):
        symbol = SYMBOLS[i % 2]
        order = PlaceOrder(
            cl_ord_id=f"w-{i:03d}", symbol=symbol, side=Side.BUY, qty=D("0.01"),
            order_type=OrdType.LIMIT, price=PRICES[symbol], tif=TimeInForce.GTC,
        )  # fmt: skip
        rig.adapter.place(order, lambda _r: None)
        ids.append(order.cl_ord_id)
    rig.adapter.flush()
    accepted = lambda: {e.cl_ord_id for e in rig.listener.execs if e.kind == "accepted"}  # noqa: E731
    rig.run_until(lambda: set(ids) <= accepted())
    return ids


def test_open_orders_plan_picks_the_cheaper_way() -> None:
    assert open_orders_plan({"BTC/USDT"}, 1) is None  # one lookup (4) < open orders (6)
    assert open_orders_plan({"BTC/USDT", "ETH/USDT"}, 3) is None  # 12 <= 12
    assert open_orders_plan({"BTC/USDT", "ETH/USDT"}, 170) == ["BTC/USDT", "ETH/USDT"]
    many = {f"S{i}/USDT" for i in range(20)}  # 20 x 6 > 80: every symbol at once
    assert open_orders_plan(many, 170) == [None]


def test_budget_waits_for_the_window_and_holds_a_retry_after() -> None:
    now = [0.0]
    budget = WeightBudget(0.5, limit=100, clock=lambda: now[0])  # 50 a minute
    budget.take(40)
    assert budget.wait_s(10) == 0.0
    assert budget.wait_s(11) > 0  # in flight: it counts until answered
    now[0] = 5.0
    budget.done(40)  # leaves the window at 65 s
    budget.take(10)
    budget.done(10)
    now[0] = 30.0
    assert budget.wait_s(1) == pytest.approx(35.0)
    budget.learn([{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                   "limit": 200}])  # fmt: skip
    assert budget.budget == 100 and budget.wait_s(50) == 0.0
    budget.sync(90)  # the exchange counts 40 more than we did (another process on the IP)
    assert budget.used() == 90 and budget.wait_s(11) > 0
    budget.hold(7.0)
    assert budget.wait_s(1) == pytest.approx(7.0)


def test_the_kill_switchs_requests_may_use_the_headroom_up_to_the_limit() -> None:
    """`whole_limit` (the mass cancel's requests): up to the exchange's limit, not our
    budget; never beyond it, and never into a Retry-After."""
    now = [0.0]
    budget = WeightBudget(0.8, limit=100, clock=lambda: now[0])  # 80 a minute
    budget.sync(80)  # our budget is spent
    assert budget.wait_s(1) > 0
    assert budget.wait_s(20, whole_limit=True) == 0.0
    assert budget.wait_s(21, whole_limit=True) > 0  # past the limit
    budget.sync(100)
    assert budget.wait_s(1, whole_limit=True) == pytest.approx(60.0)
    now[0] = 61.0
    budget.hold(5.0)
    assert budget.wait_s(1, whole_limit=True) == pytest.approx(5.0)


def test_a_poll_of_many_live_orders_costs_the_open_orders_of_each_symbol(
    make_rig: Callable[..., _Rig],
) -> None:
    """40 live orders, stream down: a poll is one GET /api/v3/openOrders per symbol (6
    each), no lookup per order; an order cancelled behind the connector's back is then
    looked up alone (4) and reported cancelled."""
    rig = make_rig()
    _place(rig, 40)
    stream = rig.adapter.stream
    assert stream is not None and not stream.up
    polls, seen, requests = stream.polls, rig.weight_seen(), dict(rig.server.requests)
    rig.run_until(lambda: stream.polls >= polls + 6)
    lookups = rig.server.requests["GET /api/v3/order"] - requests.get("GET /api/v3/order", 0)
    per_poll = (rig.weight_seen() - seen) / (stream.polls - polls)
    assert lookups == 0
    open_orders = request_weight("GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"})
    assert per_poll <= 2 * open_orders * 7 / 6  # a poll in flight at either end
    o = rig.exchange.find_open("BTCUSDT", None, "w-000")
    rig.exchange.cancel("BTCUSDT", o, "by-hand", int(time.time() * 1000))
    rig.run_until(
        lambda: any(e.kind == "cancelled" and e.cl_ord_id == "w-000" for e in rig.listener.execs)
    )
    assert "w-000" not in rig.adapter.tracker.live
    info = rig.adapter.info()  # the connector's status shows its spending
    assert info["weight_budget"] == 4800 and 0 < info["weight_used"] <= 4800


def test_under_a_low_limit_the_connector_never_draws_a_429_and_stays_reconciled(
    make_rig: Callable[..., _Rig],
) -> None:
    """A 200-weight minute (budget 160): the start (exchangeInfo 20, time 1, account 20),
    12 orders and polls every 50 ms (12 weight each) would pass it within a second; the
    orders cancelled at the exchange are reported cancelled, the poll spends its share of
    the budget (half) and then waits while a new order still goes at once, and the
    exchange never answers 429 or 418."""
    rig = make_rig(weight_per_min=200)
    ids = _place(rig, 12)
    budget = rig.adapter.rest.budget
    assert budget.limit == 200  # learned from exchangeInfo
    now_ms = int(time.time() * 1000)
    for cl in ids[:2]:
        symbol = "BTCUSDT" if cl in ids[::2] else "ETHUSDT"
        rig.exchange.cancel(symbol, rig.exchange.find_open(symbol, None, cl), f"x{cl}", now_ms)
    cancelled = lambda: {e.cl_ord_id for e in rig.listener.execs if e.kind == "cancelled"}  # noqa: E731
    polls_share = budget.budget * BACKGROUND_SHARE
    rig.run_until(
        lambda: (
            set(ids[:2]) <= cancelled()
            and budget.waits > 0
            and rig.weight_seen() >= polls_share - 12
        )
    )
    assert rig.weight_seen() <= polls_share and budget.peak_seen <= polls_share
    _place(rig, 1, first=100)  # the poll waits for its share; a new order goes at once


def test_weight_another_client_spends_on_the_ip_is_learned_from_the_header(
    make_rig: Callable[..., _Rig],
) -> None:
    """Another client on the same IP spends 300 of a 400-weight minute: the connector
    learns it from `X-MBX-USED-WEIGHT-1M` and its poll (share 160 of its budget of 320)
    stops, instead of spending 160 of its own and drawing a 429."""
    rig = make_rig(weight_per_min=400)
    budget = rig.adapter.rest.budget

    async def other_client() -> None:
        async with aiohttp.ClientSession() as s:
            for _ in range(15):  # exchangeInfo: 20 each
                async with s.get(rig.url + "/api/v3/exchangeInfo") as r:
                    assert r.status == 200

    rig.adapter.bridge.run_until_complete(other_client(), 10.0)
    rig.run_until(lambda: budget.waits > 0 and budget.peak_seen >= 300)
    assert budget.used() >= 300


def test_a_retry_after_holds_every_request() -> None:
    """A 429's Retry-After (or a 418's) holds the budget: no request of any call goes out
    before it has passed."""
    vcfg = VenueCfg(
        name=VENUE, kind="ccxt",
        ccxt=CcxtCfg(api_key_env=KEY_ENV, secret_env=SECRET_ENV, symbols=["BTC/USDT"]),
    )  # fmt: skip
    rest = Rest(vcfg, _Quiet(), [])
    body = '{"code":-1003,"msg":"Too much request weight used"}'
    rest._read_answer(429, "http://x/api/v3/order", {"Retry-After": "7"}, body)
    assert rest.budget.wait_s(1) == pytest.approx(7.0, abs=0.5)
    rest._read_answer(200, "http://x/api/v3/time", {"X-MBX-USED-WEIGHT-1M": "33"}, "{}")
    assert rest.budget.used() == 33


def test_new_orders_wait_for_the_order_count_instead_of_drawing_1015(
    make_rig: Callable[..., _Rig],
) -> None:
    """The exchange takes 10 new orders in 10 s (ORDERS, from exchangeInfo; budget 8): 12
    orders at once are all accepted, the last ones after the first left the 10 s, and
    none is refused (-1015)."""
    rig = make_rig(orders_per_10s=10)
    assert rig.adapter.rest.orders.limit == 10
    _place(rig, 12)
    assert rig.adapter.rest.orders.waits > 0 or rig.adapter.rest.budget.waits > 0
