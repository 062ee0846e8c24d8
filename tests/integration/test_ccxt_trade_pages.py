"""An order with more trades than one myTrades answer carries (1,000), through the real
system (supervisor, OMS, the ccxt connector, the local exchange as real processes). The
local exchange quotes 1,100 levels of 0.001 BTC: a buy of 1.1 at the top level sweeps them
all (1,100 trades). The connector is killed -9 after the create went out, before its
answer: the stream's events of those trades die with it, so the next incarnation reads the
fills over REST (a lookup by client id, then the order's trades). Binance, and the local
exchange, answer `orderId` alone with the order's newest 1,000 trades: the OMS got 1,000
fills (trades 101..1100, each cum 0.1 short), and its reconciliation folded the oldest 100
trades into one made-up fill (`recon:pages:1.10000000`, at an implied price) while the
connector fetched the same page at every poll. Now every trade once, FILLED 1.1."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from protocol.client import ExecutionClient
from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.ccxt_support import (
    BTC,
    CONNECTOR,
    VENUE,
    CcxtSystem,
    fills_once,
    overrides,
    running,
    settle,
)
from tests.system_ops import client, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal
LEVELS = 1100
CUT = "ccxt_after_send_before_answer"


@pytest.fixture(scope="module")
def sut() -> Iterator[CcxtSystem]:
    """1,100 levels of 0.001 quoted; re-quoted every 5 s (not 0.25: each step walks them)."""
    sim = {"quote_qty": "0.001", "quote_levels": LEVELS, "liquidity_interval_s": 5.0}
    yield from running(CcxtSystem(crash_at=(CUT,), overrides=overrides(sim=sim)))


@pytest.fixture(scope="module")
def c(sut: CcxtSystem) -> Iterator[ExecutionClient]:
    with client(sut) as ec:
        yield ec


def test_an_order_of_more_trades_than_a_page_read_after_a_kill9(
    sut: CcxtSystem, c: ExecutionClient
) -> None:
    since = sut.mark()
    sut.arm(CUT)
    top = D("60000.00") + D("0.01") * LEVELS  # the highest ask quoted
    submit_when_open(c, VENUE, "BUY", "1.1", str(top), client_order_id="pages", tif="GTC",
                     symbol=BTC)  # fmt: skip
    sut.wait_event("injected_crash", 10.0, since=since, point=CUT)
    sut.wait_event("actor_ready", 15.0, since=since, child=CONNECTOR)
    eventually(lambda: c.get_order("pages").status is OrderStatus.FILLED, 30.0,
               message=lambda: f"{c.get_order('pages')}\n{sut.describe()}")  # fmt: skip
    final = settle(c, sut, ["pages"], timeout_s=30.0)
    assert final.oms["pages"].cum_qty == D("1.1")
    assert len(final.order("pages")["trade_ids"]) == LEVELS
    fills_once(sut, final)
