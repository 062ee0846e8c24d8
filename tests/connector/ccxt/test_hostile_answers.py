"""Answers a broken or hostile exchange can give, through the ccxt connector's real classes
(`Tracker`, `Flows`, `Queries`, `Rest`) over stub exchanges: each is refused with a clear
error, counted (`tradepulse_venue_answers_unreadable`) and logged, or read as far as it
can be, and nothing waits for good. Found by an adversarial pass (session 21): a time in
microseconds made an execution the wire cannot carry; a Retry-After of 1e9 s held every
request of the venue; an unreadable order answer left a status query and a cancel
unanswered, an unbounded balance of an asset we do not trade a positions request."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import pytest
from prometheus_client import REGISTRY

from actors.connector.adapter import RequestFailed, StatusResult
from actors.connector.ccxt import exchange
from actors.connector.ccxt import execs as cx
from actors.connector.ccxt.adapter import _sent_once_done
from actors.connector.ccxt.exchange import Rest, guard_stream_frames
from actors.connector.ccxt.flows import Pending
from actors.connector.ccxt.queries import Queries
from actors.connector.exec_batch import exec_messages
from actors.runtime.tally import TURN
from protocol.ccxt_config import CcxtCfg
from protocol.codec import Sender
from protocol.config import VenueCfg
from protocol.messages import (
    CancelOnVenue,
    OrdType,
    PlaceOrder,
    QueriedOrder,
    Side,
    TimeInForce,
)
from tests.connector.ccxt import binance as bn
from tests.connector.ccxt.test_flows import _Exchange, _flows
from tests.connector.ccxt.test_mapping import my_trade, rest_order, ws_trade
from tests.exchangesim.rig import client, run, running
from tests.log_stub import RecordingLog

D = Decimal
VENUE = "binance-local"
US = 1_700_000_000_000_000  # 2023-11-14 in microseconds: read as ms, the year 55,843


def _unreadable(source: str) -> float:
    TURN.flush()
    labels = {"venue": VENUE, "source": source}
    return REGISTRY.get_sample_value("tradepulse_venue_answers_unreadable_total", labels) or 0.0


def test_times_in_microseconds_still_make_executions_the_wire_carries(tmp_path: Path) -> None:
    """An exchange set to microseconds (Binance's timeUnit=MICROSECOND) gives order and
    trade times ~1000 times too large: as ns they overflowed msgpack's 64 bits, so the
    connector could send no execution of that turn (OverflowError out of its loop turn,
    again after every restart). The fill goes on, its venue time not known (0)."""
    ex = _Exchange(rest_order(), rest_order())
    flows, intents = _flows(tmp_path, ex)
    order = rest_order(
        status="FILLED", executedQty="0.10000000", cummulativeQuoteQty="5000.00000000",
        time=US, updateTime=US,
    )  # fmt: skip
    trade = bn.parse_trades([dict(my_trade(7, "0.1", "50000"), time=US)])
    flows.tracker.apply_order(flows.tracker.live["c1"].intent, order, trade)
    reports = flows.tracker.take()
    intents.close()
    sender = Sender("connector.bx", 1)
    for message, _carried in exec_messages(VENUE, reports):
        assert sender.encode(message)  # raised OverflowError
    assert [r.kind for r in reports] == ["accepted", "fill"]
    assert reports[1].venue_ts_ns == 0 and 0 < reports[0].venue_ts_ns < 2**63


@pytest.mark.parametrize("said", ["999999999", "9" * 400])  # 31 years; inf as a float
def test_an_absurd_retry_after_holds_the_venue_s_requests_at_most_max_hold_s(
    said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 429 whose Retry-After is absurd (or garbled past a float's range): the request is
    held MAX_HOLD_S at most, then sent again, and answered. It held every request of the
    venue for the exchange's word (the session stayed up, nothing went out)."""
    monkeypatch.setattr(exchange, "MAX_HOLD_S", 0.2, raising=False)
    log = RecordingLog()
    rest = Rest(VenueCfg(name="bx"), log, [])
    calls: list[int] = []

    async def fetch_time() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise ccxt.DDoSProtection(f"binance 429 Too Many Requests Retry-After: {said}")
        return 1_700_000_000_000

    async def body() -> int:
        return int(await asyncio.wait_for(rest.call(fetch_time), 10.0))

    assert asyncio.run(body()) == 1_700_000_000_000 and len(calls) == 2
    [fields] = log.events("ccxt_rate_limited")
    assert fields["hold_s"] == 0.2 and fields["capped"] is True


def test_a_status_query_with_an_unreadable_answer_is_answered(tmp_path: Path) -> None:
    """One order's answer names a status ccxt does not know: the query is answered (as a
    failed lookup), the answer counted and logged. The ValueError left the query's gather
    and no answer ever came (the OMS's reconciliation waited on it)."""
    ex = _Exchange(rest_order(status="PENDING_NEW"), rest_order())
    flows, intents = _flows(tmp_path, ex)
    flows.tracker.log = log = RecordingLog()
    ccfg = CcxtCfg(api_key_env="K", secret_env="S", symbols=["BTC/USDT"])
    queries = Queries(VENUE, ccfg, flows, log)
    got: list[StatusResult | RequestFailed] = []
    before = _unreadable("status")
    ask = QueriedOrder(cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY)
    asyncio.run(queries.order_status([ask], got.append))
    intents.close()
    [answer] = got
    assert isinstance(answer, RequestFailed) and "unreadable" in str(answer), answer
    assert _unreadable("status") - before >= 1
    assert "ccxt_answer_unreadable" in log.names()


def test_a_cancel_whose_answer_is_unreadable_is_done(tmp_path: Path) -> None:
    """The cancel's answer carries a filled quantity past a Decimal's bounds: the cancel's
    flow ends (the OMS hears it was sent) and the answer is counted. The ValueError ended
    the flow before it acked: the order stayed PENDING_CANCEL until the OMS resent."""
    ex = _Exchange(rest_order(status="CANCELED", executedQty="1E+400"), rest_order())
    flows, intents = _flows(tmp_path, ex)
    before = _unreadable("order")
    request = CancelOnVenue(
        cl_ord_id="x1", orig_cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=D("0.1")
    )
    acked: list[RequestFailed | None] = []
    asyncio.run(_sent_once_done(flows.cancel(request), acked.append))
    intents.close()
    assert acked == [None] and ex.cancels == 1
    assert _unreadable("order") - before == 1


class _Account:
    def __init__(self, rows: list[dict[str, str]] | str) -> None:
        self.rows = rows

    async def fetch_balance(self) -> dict[str, Any]:
        if isinstance(self.rows, str):  # an answer body as it came, through ccxt's parser
            exchange = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
            exchange.set_markets(bn.rest().markets, bn.rest().currencies)
            exchange.privateGetAccount = lambda params=None: self.rows
            parsed: dict[str, Any] = exchange.fetch_balance()
            return parsed
        return bn.fetch_balance({"balances": self.rows})


def _positions(tmp_path: Path, rows: list[dict[str, str]] | str) -> Any:
    ex = _Exchange(rest_order(), rest_order())
    flows, intents = _flows(tmp_path, ex)
    flows.tracker.forget("c1")  # nothing live: the balance alone
    flows.rest.ex = _Account(rows)
    ccfg = CcxtCfg(api_key_env="K", secret_env="S", symbols=["BTC/USDT"])
    got: list[Any] = []
    asyncio.run(Queries(VENUE, ccfg, flows, RecordingLog()).positions(got.append))
    intents.close()
    [answer] = got
    return answer


def test_an_unbounded_balance_of_an_asset_we_do_not_trade_is_not_read(tmp_path: Path) -> None:
    """An airdrop of 1e20 units of a token in the account: positions are answered from the
    assets of our symbols. Every row was read, the token's was out of a Decimal's bounds,
    and the positions request was never answered."""
    answer = _positions(tmp_path, [
        {"asset": "BTC", "free": "1.5", "locked": "0.5"},
        {"asset": "JUNK", "free": "100000000000000000000", "locked": "0"},
    ])  # fmt: skip
    assert [(p.symbol, p.qty) for p in answer] == [("BTC/USDT", D("2.0"))]


@pytest.mark.parametrize(
    "body", ["<html><body>502 Bad Gateway</body></html>", '{"balances": [{"asset": "BT', ""]
)
def test_a_balance_answer_that_is_no_account_is_refused_not_read_as_zero(
    tmp_path: Path, body: str
) -> None:
    """A proxy's HTML page, a truncated or an empty body with a 200: ccxt makes it a
    balance of nothing (its `info` the text). It was read as zero of every asset (0 BTC
    here; minus a baseline of 1000 BTC, a position of -1000): a divergence from the OMS
    the heartbeat counts toward the kill-switch. Refused (answered), counted."""
    before = _unreadable("balance")
    answer = _positions(tmp_path, body)
    assert isinstance(answer, RequestFailed) and "unreadable balance" in str(answer), answer
    assert _unreadable("balance") - before == 1


def test_an_unreadable_balance_of_ours_is_refused(tmp_path: Path) -> None:
    """Our own asset's balance out of bounds: refused (answered), counted."""
    before = _unreadable("balance")
    answer = _positions(tmp_path, [{"asset": "BTC", "free": "1E+400", "locked": "0"}])
    assert isinstance(answer, RequestFailed) and "unreadable balance" in str(answer)
    assert _unreadable("balance") - before == 1


def test_a_trade_id_seen_again_with_other_terms_is_refused_counted_and_logged(
    tmp_path: Path,
) -> None:
    """The user-data stream says trade 1 of order 28 twice, 0.05 and then 0.07: the first
    is the fill, the second is refused, counted and logged (it was dropped as a repeat
    without a word: a venue rewriting a trade went unseen). A plain repeat (the same
    terms, Binance's at-least-once delivery) stays silent."""
    ex = _Exchange(rest_order(), rest_order())
    flows, intents = _flows(tmp_path, ex)
    flows.tracker.log = log = RecordingLog()
    said = [("0.05", "2500"), ("0.05", "2500"), ("0.07", "3500")]  # each as watch_my_trades
    trades = [bn.ws_feed([ws_trade(1, qty, qty, "50000", quote)])[1][-1] for qty, quote in said]
    before = _unreadable("fill_conflict")
    for trade in trades:
        report = cx.ws_fill_exec(VENUE, trade, scope="", cl_ord_id="c1", order_qty=D("0.1"))
        assert report is not None
        flows.tracker.queue([report])
    intents.close()
    assert [(r.exec_id, r.last_qty) for r in flows.tracker.take()] == [("28:t1", D("0.05"))]
    assert _unreadable("fill_conflict") - before == 1
    [fields] = log.events("ccxt_answer_unreadable")
    assert fields["source"] == "fill_conflict" and "0.07" in fields["error"]


def test_a_stream_frame_cut_short_is_refused_and_the_next_ones_read(tmp_path: Path) -> None:
    """A user-data frame cut short (the exchange sim's garble_events): with the guard, it
    goes to the callback and the next event reaches watch_orders. ccxt's receive loop died
    of the JSONDecodeError: no frame was read again, no watch ever resolved."""

    async def body() -> list[BaseException]:
        refused: list[BaseException] = []
        async with running(tmp_path) as rig, client(rig) as ex, client(rig) as other:
            await asyncio.gather(ex.load_markets(), other.load_markets())
            guard_stream_frames(ex, refused.append)
            watch = asyncio.ensure_future(ex.watch_orders())
            deadline = time.monotonic() + 10.0
            while not rig.server.subscribers:
                assert time.monotonic() < deadline, "never subscribed"
                await asyncio.sleep(0.02)
            rig.faults.apply("garble_events", 1)
            await other.create_order("BTC/USDT", "limit", "buy", 0.01, 40000)  # NEW: garbled
            await other.create_order("BTC/USDT", "limit", "buy", 0.02, 40000)
            got = await asyncio.wait_for(watch, 10.0)
            assert [o["amount"] for o in got] == [0.02]
        return refused

    [error] = run(body())
    assert "JSON" in type(error).__name__ or "unexpected end" in str(error), error


def _parsed_order(body: str) -> dict[str, Any]:
    """An order call's answer body as it came (200), through ccxt binance's parser."""
    parsed: dict[str, Any] = bn.rest().parse_order(body)
    return parsed


def test_a_create_answered_by_a_proxy_page_is_looked_up(tmp_path: Path) -> None:
    """The create is answered 200 with an HTML page (ccxt: an order of nothing): the
    outcome is not known, so the order is looked up by client id (found: accepted). It
    was read as an unreadable answer and nothing more: no lookup, the OMS left waiting
    for its own timeout."""
    page = _parsed_order("<html><body>502 Bad Gateway</body></html>")
    ex = _Exchange(rest_order(), page)
    asked: list[str] = []

    async def fetch_order(_id: Any, _symbol: str, params: dict[str, Any]) -> dict[str, Any]:
        asked.append(params["origClientOrderId"])
        return rest_order()

    ex.fetch_order = fetch_order  # type: ignore[method-assign]
    flows, intents = _flows(tmp_path, ex)
    order = PlaceOrder(
        cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=D("0.1"),
        order_type=OrdType.LIMIT, price=D("50000"), tif=TimeInForce.GTC,
    )  # fmt: skip
    intent = flows.tracker.live["c1"].intent
    asyncio.run(flows.submit(Pending(intent, order, lambda _e: None, False)))
    kinds = [r.kind for r in flows.tracker.take()]
    intents.close()
    assert asked == ["c1"] and kinds == ["accepted"], (asked, kinds)


def test_a_lookup_answered_by_a_proxy_page_is_not_known_not_found(tmp_path: Path) -> None:
    """A lookup before a resend answered 200 with a truncated body: not known now, so the
    resend is reported unsent (the OMS takes it back). It counted as "found, reported":
    nothing sent, nothing said."""
    ex = _Exchange(_parsed_order('{"symbol":"BTCUSDT","orderId":28,"clie'), rest_order())
    flows, intents = _flows(tmp_path, ex)
    order = PlaceOrder(
        cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=D("0.1"),
        order_type=OrdType.LIMIT, price=D("50000"), tif=TimeInForce.GTC,
    )  # fmt: skip
    intent = flows.tracker.live["c1"].intent
    asyncio.run(flows.submit(Pending(intent, order, lambda _e: None, True)))
    kinds = [r.kind for r in flows.tracker.take()]
    intents.close()
    assert kinds == ["unsent"], kinds


@pytest.mark.parametrize(
    "field", [{"executedQty": "-0.05000000"}, {"origQty": "-1"}, {"price": "-50000"}]
)
def test_an_order_with_a_negative_quantity_or_price_is_refused(
    tmp_path: Path, field: dict[str, str]
) -> None:
    """A snapshot with a negative filled quantity, amount or price: refused, counted; it
    went on as executions with a negative cum_qty (or a negative order quantity)."""
    ex = _Exchange(rest_order(), rest_order())
    flows, intents = _flows(tmp_path, ex)
    before = _unreadable("order")
    order = rest_order(status="CANCELED", **field)
    flows.tracker.apply_order(flows.tracker.live["c1"].intent, order, [])
    reports = flows.tracker.take()
    intents.close()
    assert reports == [] and _unreadable("order") - before == 1, reports


def test_a_429_without_retry_after_holds_the_backoff() -> None:
    """A 429 that names no Retry-After: held the backoff's first step (0.5 s), then sent
    again and answered."""
    log = RecordingLog()
    rest = Rest(VenueCfg(name="bx"), log, [])
    calls: list[float] = []

    async def fetch_time() -> int:
        calls.append(time.monotonic())
        if len(calls) == 1:
            raise ccxt.RateLimitExceeded('binance {"code":-1003,"msg":"Too many requests."}')
        return 1_700_000_000_000

    async def body() -> int:
        return int(await asyncio.wait_for(rest.call(fetch_time), 10.0))

    assert asyncio.run(body()) == 1_700_000_000_000
    assert calls[1] - calls[0] >= 0.5
    [fields] = log.events("ccxt_rate_limited")
    assert fields == {"hold_s": 0.5, "capped": False}


def test_a_mass_cancel_with_an_unreadable_order_in_its_answer_is_answered(
    tmp_path: Path,
) -> None:
    """The kill-switch's mass cancel: the exchange's answer lists an order of someone else
    with an amount out of bounds. The mass cancel is answered (done) and that order
    counted; the ValueError left the flow and the kill-switch never heard back."""
    foreign = rest_order(clientOrderId="web_1", orderId=77, origQty="1E+400", status="CANCELED")

    class _All:
        async def cancel_all_orders(self, _symbol: str) -> list[dict[str, Any]]:
            return [foreign]

    ex = _Exchange(rest_order(), rest_order())
    flows, intents = _flows(tmp_path, ex)
    flows.rest.ex = _All()
    ccfg = CcxtCfg(api_key_env="K", secret_env="S", symbols=["BTC/USDT"])
    before = _unreadable("order")
    got: list[bool] = []
    asyncio.run(Queries(VENUE, ccfg, flows, RecordingLog()).mass_cancel(got.append))
    intents.close()
    assert got == [True] and _unreadable("order") - before == 1
