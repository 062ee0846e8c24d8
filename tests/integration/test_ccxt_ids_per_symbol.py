"""Two symbols' orders and trades under one id, through the real processes: the local
exchange numbers orders and trades per symbol as Binance does (ccxt issue #26092), so on
a fresh exchange BTC/USDT's first order and ETH/USDT's first order are both order 1, and
their first trades both trade 1. Each order's every event reaches the OMS from the
connector (the exec ids name the symbol): none dropped as the other symbol's and left to
reconciliation, no fill inferred."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from protocol.client import ExecutionClient
from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.ccxt_support import BTC, ETH, VENUE, CcxtSystem, fills_once, running, settle
from tests.system_ops import client, journal_records, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal
S = OrderStatus


@pytest.fixture
def sut() -> Iterator[CcxtSystem]:
    yield from running(CcxtSystem())


def _submit(c: ExecutionClient, coid: str, symbol: str, qty: str, price: str | None) -> None:
    tif = "GTC" if price is not None else "IOC"
    submit_when_open(c, VENUE, "BUY", qty, price, client_order_id=coid, tif=tif, symbol=symbol)


def _status(c: ExecutionClient, coid: str, status: OrderStatus) -> None:
    eventually(lambda: c.get_order(coid).status is status, 10.0,
               message=lambda: f"{coid}: {c.get_order(coid)}")  # fmt: skip


def test_two_symbols_orders_and_trades_under_one_id(sut: CcxtSystem) -> None:
    """b-1 (BTC/USDT) and e-1 (ETH/USDT) rest, both exchange order 1; e-1 is cancelled,
    then b-1: the OMS hears accepted and cancelled of each from the connector (under
    ``<symbol>:1:new`` / ``:cancelled``). Market buys bm / em (both order 2, first trade 1 in
    each symbol) fill: each exchange trade is one journalled fill, none inferred."""
    with client(sut) as c:
        _submit(c, "b-1", BTC, "0.01", "59000.00")
        _status(c, "b-1", S.ACCEPTED)
        _submit(c, "e-1", ETH, "0.1", "2900.00")
        _status(c, "e-1", S.ACCEPTED)
        c.cancel("e-1")
        _status(c, "e-1", S.CANCELLED)
        c.cancel("b-1")
        _status(c, "b-1", S.CANCELLED)
        _submit(c, "bm", BTC, "0.01", None)
        _submit(c, "em", ETH, "0.01", None)
        _status(c, "bm", S.FILLED)
        _status(c, "em", S.FILLED)
        final = settle(c, sut, ["b-1", "e-1", "bm", "em"])
    ids = {coid: (final.order(coid)["symbol"], final.order(coid)["order_id"]) for coid in final.oms}
    assert ids == {"b-1": (BTC, "1"), "e-1": (ETH, "1"), "bm": (BTC, "2"), "em": (ETH, "2")}
    first_trades = {t["symbol"]: t["trade_id"] for t in reversed(final.exchange["trades"])}
    assert first_trades == {BTC: 1, ETH: 1}  # the fills collide too
    events: dict[str, list[str]] = {}
    for r in journal_records(sut):
        data = r.get("data") or {}
        if r["kind"] == "record" and data.get("kind") == "event" and data.get("exec_id"):
            events.setdefault(data["id"], []).append(data["exec_id"])
    assert events["b-1"] == [f"{BTC}:1:new", f"{BTC}:1:cancelled"], events
    assert events["e-1"] == [f"{ETH}:1:new", f"{ETH}:1:cancelled"], events
    fills_once(sut, final)  # one fill per exchange trade, none "recon:"
