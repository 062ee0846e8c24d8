"""Binance numbers orders and trades per symbol (ccxt issue #26092: two symbols' orders
with one id in real trading), so the ccxt connector's exec ids name the order's symbol
(`Intent.id_scope`): the tracker's seen-set and the exec outbox's pending and acked ids
are venue-wide, and an unscoped ``28:new`` of ETH/USDT was dropped as BTC/USDT's. An order
whose intent an older build wrote keeps the unscoped ids the OMS already holds."""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.connector.ccxt import intents as il
from actors.connector.ccxt.execs import fill_execs, order_execs
from actors.connector.ccxt.intents import Intent, IntentLog
from actors.connector.ccxt.tracker import Live, Tracker
from actors.connector.ledger import FillLedger
from actors.connector.outbox import ExecOutbox
from actors.oms.order_book import OrderBook
from protocol.messages import OrdType, RiskVerdict, Side, SubmitOrder
from tests.connector.ccxt import binance as bn
from tests.connector.ccxt.test_mapping import my_trade, rest_order
from tests.log_stub import RecordingLog

D = Decimal
VENUE = "bx"
BTC_C1 = Intent(cl_ord_id="c1", symbol="BTC/USDT", side="BUY", qty="0.1")
ETH_E1 = Intent(cl_ord_id="e1", symbol="ETH/USDT", side="BUY", qty="0.1")


def _tracker(directory: Path, *intents: Intent) -> Tracker:
    log = IntentLog(directory)
    tracker = Tracker(VENUE, log, RecordingLog(), lambda: None)
    for intent in intents:
        log.add(intent)
        tracker.live[intent.cl_ord_id] = Live(intent)
    return tracker


def rest_order_raw(**fields: Any) -> dict[str, Any]:
    """`rest_order`'s raw Binance answer (order 28 of BTCUSDT, c1), `fields` changed."""
    raw: dict[str, Any] = dict(rest_order()["info"])
    raw.update(fields)
    return raw


def _eth(order: dict[str, Any]) -> dict[str, Any]:
    """Order 28 of ETH/USDT (`rest_order`'s fields otherwise)."""
    return {**order, "symbol": "ETHUSDT", "clientOrderId": "e1"}


def _eth_trade(trade_id: int, qty: str, price: str) -> dict[str, Any]:
    return {**my_trade(trade_id, qty, price), "symbol": "ETHUSDT"}


def test_two_symbols_orders_under_one_id_are_each_reported_once(tmp_path: Path) -> None:
    """BTC/USDT order 28 rests, ETH/USDT order 28 is cancelled, then BTC's is cancelled:
    all four events reach the outbox, each acked on its own (unscoped, only c1's accepted
    and e1's cancelled came out; the other two waited for reconciliation)."""
    tracker = _tracker(tmp_path / "intents", BTC_C1, ETH_E1)
    tracker.apply_order(BTC_C1, rest_order(), [])
    tracker.apply_order(ETH_E1, bn.parse_order(_eth(rest_order_raw(status="CANCELED"))), [])
    tracker.apply_order(BTC_C1, rest_order(status="CANCELED"), [])
    reports = tracker.take()
    assert [(r.cl_ord_id, r.kind, r.exec_id) for r in reports] == [
        ("c1", "accepted", "BTC/USDT:28:new"),
        ("e1", "accepted", "ETH/USDT:28:new"),
        ("e1", "cancelled", "ETH/USDT:28:cancelled"),
        ("c1", "cancelled", "BTC/USDT:28:cancelled"),
    ]
    outbox = ExecOutbox(tmp_path / "outbox", fsync=False)
    assert outbox.add(reports[:1]) == reports[:1]
    assert outbox.ack(["BTC/USDT:28:new"]) == ["BTC/USDT:28:new"]  # acked, remembered
    assert outbox.add(reports) == reports[1:]  # ETH's 28:new is not taken for BTC's
    assert list(outbox.pending) == [r.exec_id for r in reports[1:]]
    outbox.close()


def test_two_symbols_trades_under_one_id_are_both_fills(tmp_path: Path) -> None:
    """Trade 5 of BTC/USDT order 28 and trade 5 of ETH/USDT order 28 are two fills, for
    the tracker and the connector's fill ledger (unscoped, one was dropped and
    reconciliation inferred it at a guessed price)."""
    tracker = _tracker(tmp_path / "intents", BTC_C1, ETH_E1)
    partial = {"status": "PARTIALLY_FILLED", "executedQty": "0.04000000",
               "cummulativeQuoteQty": "2000.00000000"}  # fmt: skip
    btc = rest_order(**partial)
    eth = bn.parse_order(_eth(rest_order_raw(**partial)))
    tracker.apply_order(BTC_C1, btc, bn.parse_trades([my_trade(5, "0.04", "50000")]))
    tracker.apply_order(ETH_E1, eth, bn.parse_trades([_eth_trade(5, "0.04", "50000")]))
    reports = tracker.take()
    fills = [(r.cl_ord_id, r.exec_id, r.last_qty) for r in reports if r.kind == "fill"]
    assert fills == [("c1", "BTC/USDT:28:t5", D("0.04")), ("e1", "ETH/USDT:28:t5", D("0.04"))]
    ledger = FillLedger(tmp_path / "ledger")  # the connector's fill ledger dedups by id too
    assert ledger.add(reports) == 2
    assert {(p.symbol, p.qty) for p in ledger.view(VENUE)} == {
        ("BTC/USDT", D("0.04")), ("ETH/USDT", D("0.04"))
    }  # fmt: skip
    ledger.close()


def _oms_with_c1() -> OrderBook:
    """The OMS's book with c1 (buy 0.1 BTC/USDT at 50000) sent to the venue."""
    book = OrderBook()
    submit = SubmitOrder(
        client_order_id="c1", venue=VENUE, symbol="BTC/USDT", side=Side.BUY, qty=D("0.1"),
        order_type=OrdType.LIMIT, price=D(50000),
    )  # fmt: skip
    assert book.submit(submit, 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id="c1", approved=True), 2).applied
    return book


def test_an_older_builds_order_keeps_its_ids_and_no_fill_counts_twice(tmp_path: Path) -> None:
    """c1's intent was written by a build before the scope (no `id_format` in the record),
    which handed the OMS ``28:new`` and fill ``28:t5`` (0.04). After the upgrade the
    connector re-reads c1 and its trades: the same ids again, all duplicates at the OMS
    (scoped, the 0.04 would count twice and the accepted be refused). An order placed
    after the upgrade is scoped."""
    directory = tmp_path / "intents"
    IntentLog(directory).close()
    old = {k: v for k, v in asdict(BTC_C1).items() if k != "id_format"}
    with (directory / "intents.log").open("ab") as f:
        f.write(il._record(["p", old]) + il._record(["v", "c1", "28"]))

    partial = {"status": "PARTIALLY_FILLED", "executedQty": "0.04000000",
               "cummulativeQuoteQty": "2000.00000000"}  # fmt: skip
    trades = bn.parse_trades([my_trade(5, "0.04", "50000")])
    book = _oms_with_c1()
    before = order_execs(VENUE, rest_order(**partial), scope="", cl_ord_id="c1",
                         order_qty=D("0.1"))  # fmt: skip
    before += fill_execs(VENUE, trades, scope="", cl_ord_id="c1", venue_order_id="28",
                         order_qty=D("0.1"))  # fmt: skip
    assert [r.exec_id for r in before] == ["28:new", "28:t5"]  # what the older build said
    assert all(book.apply_exec(r, 3).applied for r in before)

    tracker = Tracker(VENUE, IntentLog(directory), RecordingLog(), lambda: None)
    intent = tracker.live["c1"].intent
    tracker.apply_order(intent, rest_order(**partial), trades)
    again = tracker.take()
    outcomes = [book.apply_exec(r, 4) for r in again]
    order = book.get("c1")
    assert order is not None and order.cum_qty == D("0.04")
    assert book.position(VENUE, "BTC/USDT").qty == D("0.04")
    assert [(r.exec_id, o.kind) for r, o in zip(again, outcomes, strict=True)] == [
        ("28:new", "duplicate"), ("28:t5", "duplicate")
    ]  # fmt: skip
    assert intent.id_format == 0 and intent.venue_order_id == "28"

    new = Intent(cl_ord_id="c2", symbol="BTC/USDT", side="BUY", qty="0.1")
    tracker.intents.add(new)
    tracker.intents.sync()
    assert IntentLog(directory).live["c2"].id_format == il.ID_FORMAT  # persisted with it
    tracker.apply_order(new, rest_order(orderId=29, clientOrderId="c2"), [])
    assert [r.exec_id for r in tracker.take()] == ["BTC/USDT:29:new"]
