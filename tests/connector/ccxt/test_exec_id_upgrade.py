"""Across the upgrade to symbol-scoped ccxt exec ids (`Intent.id_scope`): an order the
connector has no live intent of (its intent finished before a restart, or an order placed
by hand) is taken as the exchange has it (`Tracker.intent_for`). If an older build
reported it, the OMS holds its executions under the unscoped ids: re-read under scoped
ones (the OMS's status query after the restart, open orders, the stream), a partial fill
was applied a second time. Such an order is one created before this build first opened
the intent log (`IntentLog.scoped_since_ms`); one created after, or on an install that
starts with this build, is scoped."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt

from actors.connector.ccxt import intents as il
from actors.connector.ccxt.execs import fill_execs, order_execs, ws_fill_exec
from actors.connector.ccxt.flows import Pending
from actors.connector.ccxt.intents import Intent, IntentLog
from actors.connector.ccxt.tracker import Live, Tracker
from actors.oms.order_book import OrderBook
from protocol.messages import (
    CancelOnVenue,
    OrdType,
    PlaceOrder,
    RiskVerdict,
    Side,
    SubmitOrder,
    TimeInForce,
)
from tests.connector.ccxt import binance as bn
from tests.connector.ccxt.test_flows import bare_flows
from tests.connector.ccxt.test_mapping import my_trade, rest_order, ws_trade
from tests.log_stub import RecordingLog

D = Decimal
VENUE = "bx"
C1 = Intent(cl_ord_id="c1", symbol="BTC/USDT", side="BUY", qty="0.1")
PARTIAL_CANCELLED = {"status": "CANCELED", "executedQty": "0.04000000",
                     "cummulativeQuoteQty": "2000.00000000"}  # fmt: skip


def _older_builds_log(directory: Path, *records: list[Any]) -> None:
    """An intent log as a build before the scope wrote it: its snapshot has no
    `scoped_since_ms`, its intents no `id_format`."""
    directory.mkdir(parents=True)
    body = b"".join(il._record(r) for r in records)
    (directory / "intents.log").write_bytes(il._MAGIC + il._record(["s", [], []]) + body)


def _oms_with(cl_ord_id: str) -> OrderBook:
    book = OrderBook()
    submit = SubmitOrder(
        client_order_id=cl_ord_id, venue=VENUE, symbol="BTC/USDT", side=Side.BUY,
        qty=D("0.1"), order_type=OrdType.LIMIT, price=D(50000),
    )  # fmt: skip
    assert book.submit(submit, 1).applied
    assert book.risk_verdict(RiskVerdict(client_order_id=cl_ord_id, approved=True), 2).applied
    return book


def test_a_finished_older_builds_order_read_again_after_the_upgrade_counts_once(
    tmp_path: Path,
) -> None:
    """The older build reported c1's ``28:new`` and fill ``28:t5`` (0.04), then c1 was
    cancelled and its intent finished (its ``28:cancelled`` still in the exec outbox at
    the upgrade). After it the OMS's status query reads c1 again, with its trades: the same
    ids, so nothing counts twice (scoped, ``BTC/USDT:28:t5`` made the OMS's cum 0.08)."""
    directory = tmp_path / "intents"
    old = {k: v for k, v in asdict(C1).items() if k != "id_format"}
    _older_builds_log(directory, ["p", old], ["v", "c1", "28"], ["d", ["c1"]])
    trades = bn.parse_trades([my_trade(5, "0.04", "50000")])
    book = _oms_with("c1")
    said = order_execs(VENUE, rest_order(status="PARTIALLY_FILLED", executedQty="0.04000000",
                                         cummulativeQuoteQty="2000.00000000"),
                       scope="", cl_ord_id="c1", order_qty=D("0.1"))  # fmt: skip
    said += fill_execs(VENUE, trades, scope="", cl_ord_id="c1", venue_order_id="28",
                       order_qty=D("0.1"))  # fmt: skip
    assert [r.exec_id for r in said] == ["28:new", "28:t5"]
    assert all(book.apply_exec(r, 3).applied for r in said)

    tracker = Tracker(VENUE, IntentLog(directory), RecordingLog(), lambda: None)
    assert "c1" not in tracker.live and "c1" in tracker.intents.finished
    order = rest_order(**PARTIAL_CANCELLED)
    tracker.apply_order(tracker.intent_for("c1", order), order, trades)
    again = tracker.take()
    assert [r.exec_id for r in again] == ["28:new", "28:t5", "28:cancelled"]
    for report in again:
        book.apply_exec(report, 4)
    c1 = book.get("c1")
    assert c1 is not None and c1.cum_qty == D("0.04")
    assert book.position(VENUE, "BTC/USDT").qty == D("0.04")


def test_an_order_placed_by_hand_before_the_upgrade_keeps_its_ids_on_every_source(
    tmp_path: Path,
) -> None:
    """c1 has no intent (placed by hand): the older build reported its fills unscoped,
    and so does this build, by REST and by the stream alike; an order placed by hand after
    the upgrade is scoped."""
    directory = tmp_path / "intents"
    _older_builds_log(directory)
    log = IntentLog(directory)
    assert 0 < log.scoped_since_ms <= time.time() * 1000
    tracker = Tracker(VENUE, log, RecordingLog(), lambda: None)
    partial = rest_order(status="PARTIALLY_FILLED", executedQty="0.04000000",
                         cummulativeQuoteQty="2000.00000000")  # fmt: skip
    trades = bn.parse_trades([my_trade(5, "0.04", "50000")])
    tracker.apply_order(tracker.intent_for("c1", partial), partial, trades)
    _, [ws] = bn.ws_feed([ws_trade(6, "0.01", "0.05", "50000", "2500")])
    assert ws["order"] == "28"
    intent = tracker.intent_for("c1", ws)  # as `UserStream.watch_trades`
    report = ws_fill_exec(VENUE, ws, scope=intent.id_scope, cl_ord_id="c1", order_qty=D("0.1"))
    assert report is not None
    tracker.queue([report])
    assert [r.exec_id for r in tracker.take()] == ["28:new", "28:t5", "28:t6"]

    later = log.scoped_since_ms + 1000
    fresh = rest_order(orderId=29, clientOrderId="h2", time=later, workingTime=later)
    tracker.apply_order(tracker.intent_for("h2", fresh), fresh, [])
    assert [r.exec_id for r in tracker.take()] == ["BTC/USDT:29:new"]
    log.close()
    assert IntentLog(directory).scoped_since_ms == later - 1000  # kept across restarts


def test_on_an_install_that_starts_with_this_build_every_order_is_scoped(
    tmp_path: Path,
) -> None:
    """No older build ever reported an order here: one placed by hand long ago is scoped."""
    log = IntentLog(tmp_path / "intents")
    assert log.scoped_since_ms == 0
    tracker = Tracker(VENUE, log, RecordingLog(), lambda: None)
    order = rest_order(clientOrderId="h1")
    tracker.apply_order(tracker.intent_for("h1", order), order, [])
    assert [r.exec_id for r in tracker.take()] == ["BTC/USDT:28:new"]
    log.close()
    assert IntentLog(tmp_path / "intents").scoped_since_ms == 0


class _Exchange:
    """Order 28 of BTC/USDT (h1, placed by hand before the upgrade, 0.04 filled as trade
    5): its cancel answers as Binance's DELETE does (no creation time), a lookup as GET."""

    def __init__(self) -> None:
        self.lookups = 0

    async def cancel_order(self, *_args: Any) -> dict[str, Any]:
        raw = {k: v for k, v in rest_order_raw(**PARTIAL_CANCELLED).items()
               if k not in ("time", "updateTime", "workingTime", "isWorking")}  # fmt: skip
        return bn.parse_order({**raw, "origClientOrderId": "h1", "clientOrderId": "x1",
                               "transactTime": int(time.time() * 1000)})  # fmt: skip

    async def fetch_order(self, *_args: Any) -> dict[str, Any]:
        self.lookups += 1
        return rest_order(clientOrderId="h1", **PARTIAL_CANCELLED)

    async def fetch_my_trades(self, *_args: Any) -> list[dict[str, Any]]:
        return bn.parse_trades([my_trade(5, "0.04", "50000")])


def rest_order_raw(**fields: Any) -> dict[str, Any]:
    raw: dict[str, Any] = dict(rest_order(clientOrderId="h1")["info"])
    raw.update(fields)
    return raw


def test_cancelling_an_order_placed_by_hand_before_the_upgrade_counts_its_fill_once(
    tmp_path: Path,
) -> None:
    """h1, placed by hand and adopted, filled 0.04 (``28:t5``) before the upgrade. After
    it the OMS cancels h1: Binance's cancel answer does not say when the order was made, so
    the connector looks it up for that, and reports the fill under the id the OMS has
    (taken as made now, ``BTC/USDT:28:t5`` counted the 0.04 twice)."""
    directory = tmp_path / "intents"
    _older_builds_log(directory)
    intents = IntentLog(directory)
    tracker = Tracker(VENUE, intents, RecordingLog(), lambda: None)
    ex = _Exchange()
    flows = bare_flows(ex, tracker, intents, venue=VENUE)
    request = CancelOnVenue(
        cl_ord_id="x1", orig_cl_ord_id="h1", symbol="BTC/USDT", side=Side.BUY, qty=D("0.1")
    )
    asyncio.run(flows.cancel(request))
    reports = tracker.take()
    assert [r.exec_id for r in reports] == ["28:new", "28:t5", "28:cancelled"]
    assert ex.lookups == 1
    intents.close()


class _NeverSaw(_Exchange):
    """c1 was never placed (the older build's create never went out): the lookup before
    the resend says so, the create answers order 28 made now."""

    def __init__(self) -> None:
        super().__init__()
        self.made_ms = int(time.time() * 1000) + 5

    async def fetch_order(self, *_args: Any) -> dict[str, Any]:
        raise ccxt.OrderNotFound("-2013 Order does not exist.")

    async def create_order(self, *_args: Any) -> dict[str, Any]:
        return rest_order(time=self.made_ms, workingTime=self.made_ms)


def test_an_older_builds_intent_this_build_sends_gets_the_ids_its_order_keeps(
    tmp_path: Path,
) -> None:
    """c1's intent is an older build's (no `id_format`), its order never reached the
    exchange; after the upgrade the OMS resends it and this build places it. Its ids are
    the ones the order keeps after its intent is gone (made after the upgrade: scoped): kept
    unscoped while live, they changed when a restart left it with no intent."""
    directory = tmp_path / "intents"
    old = {k: v for k, v in asdict(C1).items() if k != "id_format"}
    _older_builds_log(directory, ["p", old])
    intents = IntentLog(directory)
    tracker = Tracker(VENUE, intents, RecordingLog(), lambda: None)
    tracker.live["c1"] = Live(intents.live["c1"])
    ex = _NeverSaw()
    flows = bare_flows(ex, tracker, intents, venue=VENUE)
    order = PlaceOrder(
        cl_ord_id="c1", symbol="BTC/USDT", side=Side.BUY, qty=D("0.1"),
        order_type=OrdType.LIMIT, price=D("50000"), tif=TimeInForce.GTC,
    )  # fmt: skip
    flows.unseen_after_s = 0.0
    asyncio.run(flows.submit(Pending(tracker.live["c1"].intent, order, lambda _r: None,
                                     lookup_first=True)))  # fmt: skip
    live_ids = [r.exec_id for r in tracker.take()]
    intents.close()

    again = IntentLog(directory)  # a restart
    assert again.live["c1"].id_format == il.ID_FORMAT  # written before the create went out
    again.done("c1")  # c1 ended; then a restart, and the OMS's status query reads it
    again.close()
    restarted = Tracker(VENUE, IntentLog(directory), RecordingLog(), lambda: None)
    made = rest_order(time=ex.made_ms, workingTime=ex.made_ms)
    restarted.apply_order(restarted.intent_for("c1", made), made, [])
    assert live_ids == [r.exec_id for r in restarted.take()] == ["BTC/USDT:28:new"]
    restarted.intents.close()
