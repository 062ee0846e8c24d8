"""An order with more trades than one GET /api/v3/myTrades answer carries (1000 at most).
Binance answers `symbol + orderId` with the order's MOST RECENT trades (its docs: "If fromId
is set, it will get trades >= that fromId. Otherwise most recent trades are returned"), as
the local exchange does. The connector fetched one page: an order of 1,100 trades whose
fills it had to read over REST (its create answer lost, the user-data stream down, a
restart) was reported as 1,000 fills whose cum_qty left out the oldest 100 trades (cum
1.0 of 1.1 bought, every cum 0.1 short) and no end: each poll fetched the same page again,
for good, and every positions answer named no consistent cut. Now the pages are read from
the order's first trade on (`fromId`), until one comes back short."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.connector.ccxt.intents import Intent, IntentLog
from actors.connector.ccxt.tracker import Live, Tracker
from tests.connector.ccxt.test_flows import bare_flows
from tests.exchangesim.rig import client, run, running, sim_cfg
from tests.log_stub import RecordingLog

D = Decimal
VENUE = "binance-local"
LEVELS = 1100  # one trade per level of the market maker's ladder swept


def test_an_order_with_more_trades_than_a_page_has_every_fill_once(tmp_path: Path) -> None:
    """A market buy of 1.1 BTC sweeps 1,100 levels of 0.001 at the local exchange (1,100
    trades). Its fills read over REST, by a lookup by client id: every trade once, in trade
    order, each cum_qty exact, the last 1.1 (FILLED), and the order forgotten (final)."""
    sim = sim_cfg(quote_qty=D("0.001"), quote_levels=LEVELS, volatility_bps=0.0)

    async def body() -> tuple[Tracker, list[Any], int]:
        async with running(tmp_path / "sim", sim) as rig, client(rig) as ex:
            await ex.load_markets()
            placed = await ex.create_order(
                "BTC/USDT", "market", "buy", 1.1, None,
                {"clientOrderId": "c1", "newOrderRespType": "ACK"},
            )  # fmt: skip
            trades = [t for t in rig.exchange.trades if t.oid == int(placed["id"])]
            intents = IntentLog(tmp_path / "intents")
            try:
                tracker = Tracker(VENUE, intents, RecordingLog(), lambda: None)
                intent = Intent(cl_ord_id="c1", symbol="BTC/USDT", side="BUY", qty="1.1")
                intents.add(intent)
                tracker.live["c1"] = Live(intent)
                flows = bare_flows(ex, tracker, intents)
                assert await flows.lookup(intent) is True
                return tracker, tracker.take(), len(trades)
            finally:
                intents.close()

    tracker, reports, traded = run(body(), timeout_s=120.0)
    assert traded == LEVELS, traded
    fills = [r for r in reports if r.kind == "fill"]
    assert len(fills) == LEVELS, len(fills)
    assert len({f.exec_id for f in fills}) == LEVELS
    assert sum((f.last_qty for f in fills), D(0)) == D("1.1")
    running_cum = D(0)
    for f in fills:
        running_cum += f.last_qty
        assert f.cum_qty == running_cum, (f.exec_id, f.cum_qty, running_cum)
    assert fills[-1].ord_status.value == "FILLED" and fills[-1].leaves_qty == 0
    assert "c1" not in tracker.live, "the order is final: forgotten, not polled again"


class _SamePage:
    """An exchange answering every myTrades request with the same full page."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def fetch_my_trades(self, _s: str, _since: Any, n: int, params: dict[str, Any]) -> Any:
        self.requests.append(params)
        return [{"id": str(i), "order": "9"} for i in range(1, n + 1)]


def test_an_exchange_repeating_a_page_is_not_read_for_good(tmp_path: Path) -> None:
    """fromId past the page's last trade answered with the same page again: an error (the
    poll tries again later), not a loop reading the same page for good."""
    ex = _SamePage()
    intents = IntentLog(tmp_path / "intents")
    tracker = Tracker(VENUE, intents, RecordingLog(), lambda: None)
    flows = bare_flows(ex, tracker, intents)
    try:
        with pytest.raises(ValueError, match="fromId 1001 answered trades up to 1000"):
            run(flows.order_trades("BTC/USDT", "9"))
    finally:
        intents.close()
    assert ex.requests == [
        {"orderId": "9"}, {"orderId": "9", "fromId": 0}, {"orderId": "9", "fromId": 1001},
    ]  # fmt: skip
