"""The ccxt venue against an exchange that answers what the connector did not expect,
through the real system (supervisor, OMS, the ccxt connector, the local exchange as real
processes): its times in microseconds (`timestamps_us`, Binance's timeUnit=MICROSECOND).
The connector built executions whose venue time (ns) msgpack cannot carry: an
OverflowError out of its loop turn, the connector dead after every restart (the poll
found the order again) and its fills never booked. Ends with the OMS equal to the
exchange's inspection, every trade once, the connector never restarted."""

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
from tests.system_ops import client, exchange_fault, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal
TOP_ASK = "60000.05"  # a buy here takes every level quoted at each step
LOW_BID = "59000.00"  # a buy here rests


@pytest.fixture(scope="module")
def sut() -> Iterator[CcxtSystem]:
    """Venue positions asked every 30 s (not 0.5): each answer polls the orders in flight,
    which would hide a stream that said nothing more."""
    config = overrides()
    config["heartbeat"]["venue_positions_interval_s"] = 30.0
    yield from running(CcxtSystem(crash_at=(), overrides=config))


@pytest.fixture(scope="module")
def c(sut: CcxtSystem) -> Iterator[ExecutionClient]:
    with client(sut) as ec:
        yield ec


def test_times_in_microseconds_lose_no_fill_and_kill_no_connector(
    sut: CcxtSystem, c: ExecutionClient
) -> None:
    """A resting order and one that fills step by step while the exchange gives its times
    in microseconds: both as at the exchange, every fill once, the connector not restarted."""
    pid = sut.pid_of(CONNECTOR)
    exchange_fault(sut, VENUE, "timestamps_us", "on")
    submit_when_open(c, VENUE, "BUY", "0.01", LOW_BID, client_order_id="us-rest", tif="GTC",
                     symbol=BTC)  # fmt: skip
    submit_when_open(c, VENUE, "BUY", "0.3", TOP_ASK, client_order_id="us-fill", tif="GTC",
                     symbol=BTC)  # fmt: skip
    eventually(lambda: c.get_order("us-fill").status is OrderStatus.FILLED, 20.0,
               message=lambda: f"{c.get_order('us-fill')}\n{sut.describe()}")  # fmt: skip
    final = settle(c, sut, ["us-rest", "us-fill"])
    assert final.oms["us-fill"].cum_qty == D("0.3")
    assert final.oms["us-rest"].status is OrderStatus.ACCEPTED
    fills_once(sut, final)
    assert sut.pid_of(CONNECTOR) == pid, "the connector was restarted"
    exchange_fault(sut, VENUE, "timestamps_us", "off")


def test_a_garbled_stream_frame_is_counted_and_the_stream_goes_on(
    sut: CcxtSystem, c: ExecutionClient
) -> None:
    """One user-data frame cut short (truncated JSON): it is counted and logged, and the
    frames after it are read. ccxt's receive loop died of the JSONDecodeError raised in its
    callback (no reconnect, no error to the watch): the stream said nothing more while the
    connector took it for up, and the order's fills came only with the REST safety-net
    poll (`poll_idle_s`, 30 s)."""
    since = sut.mark()
    exchange_fault(sut, VENUE, "garble_events", 1)
    submit_when_open(c, VENUE, "BUY", "0.01", LOW_BID, client_order_id="garbled-rest",
                     tif="GTC", symbol=BTC)  # fmt: skip
    sut.wait_event("ccxt_answer_unreadable", 10.0, since=since, source="stream_frame")
    submit_when_open(c, VENUE, "BUY", "0.6", TOP_ASK, client_order_id="garbled-walk",
                     tif="GTC", symbol=BTC)  # fmt: skip
    eventually(lambda: c.get_order("garbled-walk").status is OrderStatus.FILLED, 15.0,
               message=lambda: f"{c.get_order('garbled-walk')}\n{sut.describe()}")  # fmt: skip
    final = settle(c, sut, ["garbled-rest", "garbled-walk"])
    fills_once(sut, final)
    assert not sut.events("ccxt_stream_lost", since=since)


def test_a_replace_whose_cancel_a_proxy_answers_with_a_page(
    sut: CcxtSystem, c: ExecutionClient
) -> None:
    """A buy filling step by step is replaced; the exchange cancels it and the answer is
    an HTML page with a 200. Not known what the cancel did: the replace is refused, the
    order ends CANCELLED with what it filled, as at the exchange. The page read as an
    order that filled nothing: a new order for the whole quantity went out (more bought
    than the order's quantity)."""
    submit_when_open(c, VENUE, "BUY", "2", TOP_ASK, client_order_id="html-walk", tif="GTC",
                     symbol=BTC)  # fmt: skip
    eventually(lambda: c.get_order("html-walk").cum_qty > 0, 10.0)
    since = sut.mark()
    exchange_fault(sut, VENUE, "html_answer", 1)
    c.replace("html-walk", price=LOW_BID)
    sut.wait_event("sim_answer_html", 5.0, since=since)
    eventually(lambda: c.get_order("html-walk").status is OrderStatus.CANCELLED, 15.0,
               message=lambda: f"{c.get_order('html-walk')}\n{sut.describe()}")  # fmt: skip
    final = settle(c, sut, ["html-walk"])
    fills_once(sut, final)
    assert [o["client_order_id"] for o in final.exchange["orders"]
            if o["client_order_id"].startswith("html-walk")] == ["html-walk"]  # fmt: skip
    assert sut.events("ccxt_answer_unreadable", since=since, source="order")
