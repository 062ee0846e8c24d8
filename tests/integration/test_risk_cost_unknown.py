"""Risk's daily loss after a cold start took positions of unknown cost, through the real
system: a ccxt venue (`actors.exchangesim`) gives balances, no average price, so the
opening positions are at avg_px 0 (`actors.oms.cost_basis`). Risk keeps its own realised
P&L for `risk.max_daily_loss` (`actors.risk.exposure`): closing such a position must not
count P&L against a cost of 0, as the OMS's `positions` view does not, and that must hold
across a kill -9 of risk and of the OMS (both rebuild)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from protocol.client import ExecutionClient
from protocol.exceptions import RiskRejected
from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.ccxt_support import BTC, ETH, VENUE, CcxtSystem, overrides, running
from tests.system_ops import client, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal
QTY = "0.02"  # the venue's opening position of each symbol: + for BTC, - for ETH
LOW_BID = "59000.00"  # a BTC buy here rests
ETH_FEE = D("0.00002")  # the close of the short, a buy of 0.02 ETH: its fee, in ETH


def _cfg() -> dict[str, Any]:
    """Balances 1000 BTC and 1000 ETH against baselines 999.98 and 1000.02: the cold start
    opens long 0.02 BTC and short 0.02 ETH, both of unknown cost; a daily loss of 50 is
    the limit (closing the short against a cost of 0 counts 0.02 * ~3000 = 60). The
    exchange charges its default commission (0.1% of the asset received)."""
    cfg = overrides(ccxt={"position_baseline": {"BTC": "999.98", "ETH": "1000.02"}})
    cfg["risk"] |= {"max_daily_loss": "50"}
    return cfg


@pytest.fixture
def sut() -> Iterator[CcxtSystem]:
    yield from running(CcxtSystem(overrides=_cfg(), run_args=["--cold"], crash_at=()))


def _exposure(sut: CcxtSystem) -> dict[str, dict[str, Any]] | None:
    """Risk's own positions by symbol (None: not answering, or not rebuilt yet)."""
    try:
        reply = sut.control("exposure", timeout_s=2.0)
    except Exception:  # noqa: BLE001 - restarting: not answering yet
        return None
    if reply.status != "ok":
        return None
    return {p["symbol"]: p for p in reply.data["positions"]}


def _risk_closed(sut: CcxtSystem) -> dict[str, dict[str, Any]] | None:
    """Risk's positions once both closes are in: BTC flat, ETH short by the buy's fee
    (0.1% of 0.02 ETH, paid in ETH: the exchange's balance)."""
    seen = _exposure(sut)
    if seen is None or {s: D(p["qty"]) for s, p in seen.items()} != {BTC: 0, ETH: -ETH_FEE}:
        return None
    return seen


def _pnl_is_the_fees_only(sut: CcxtSystem, seen: dict[str, dict[str, Any]], why: str) -> None:
    """Risk's realised P&L is the OMS's: the BTC sell's USDT fee, nothing on ETH (its fee
    was paid in ETH, its position given up at no cost) and nothing against a cost of 0."""
    oms = {p["symbol"]: p for p in sut.control("positions").data["positions"]}
    fee = D(oms[BTC]["fees"]["USDT"])
    assert 0 < fee < 2, (why, oms)  # 0.1% of 0.02 * ~60000
    want = {BTC: -fee, ETH: D(0)}
    assert {s: D(p["realized_pnl"]) for s, p in seen.items()} == want, (why, seen)
    assert {s: D(p["realized_pnl"]) for s, p in oms.items()} == want, (why, oms)


def _market(c: ExecutionClient, coid: str, symbol: str, side: str) -> None:
    submit_when_open(c, VENUE, side, QTY, None, client_order_id=coid, tif="IOC", symbol=symbol)
    eventually(lambda: c.get_order(coid).status is OrderStatus.FILLED, 10.0,
               message=lambda: f"{coid}: {c.get_order(coid)}")  # fmt: skip


def _probe(c: ExecutionClient, coid: str) -> None:
    """A resting buy risk must approve (no limit near): RiskRejected says why not."""
    view = submit_when_open(c, VENUE, "BUY", "0.001", LOW_BID, client_order_id=coid,
                            tif="GTC", symbol=BTC)  # fmt: skip
    assert view.client_order_id == coid


def test_closing_opening_positions_of_unknown_cost_counts_no_pnl_at_risk(
    sut: CcxtSystem,
) -> None:
    """Closing the unknown-cost short (a buy of 0.02 ETH at ~3000.01) and long (a sell of
    0.02 BTC at ~59999.99) realises nothing at risk but the fees: its exposure shows the
    OMS's realised P&L (the sell's USDT fee on BTC, 0 on ETH) and position (ETH short by
    the buy's ETH fee), and an order after them is approved. Before the
    fix risk counted them against a cost of 0: a loss of ~60 on the short (over
    max_daily_loss 50: every new order refused `daily_loss`, trading halted for nothing)
    and a gain of ~1200 on the long (hiding real losses of that size from the limit). The
    same after kill -9 of risk (rebuilt from the OMS) and of the OMS (replayed)."""
    sut.wait_event("cold_start", 30.0, actor="oms", step="reconciled")
    opening = eventually(lambda: _exposure(sut), 15.0, message="risk's exposure")
    assert {s: D(p["qty"]) for s, p in opening.items()} == {BTC: D(QTY), ETH: -D(QTY)}
    with client(sut) as c:
        _market(c, "close-short", ETH, "BUY")
        eventually(lambda: D((_exposure(sut) or {}).get(ETH, {}).get("qty", 1)) == -ETH_FEE, 10.0)
        try:
            _probe(c, "probe-1")
        except RiskRejected as exc:
            pytest.fail(f"refused after closing the unknown-cost short: {exc.reason}")
        _market(c, "close-long", BTC, "SELL")
        seen = eventually(lambda: _risk_closed(sut), 10.0, message="risk closed")
        _pnl_is_the_fees_only(sut, seen, "live")

        for actor in ("risk", "oms"):
            since, pid = sut.mark(), sut.pid_of(actor)
            os.kill(pid, signal.SIGKILL)
            sut.wait_event("actor_ready", 20.0, since=since, child=actor)
            sut.wait_event("exposure_rebuilt", 20.0, since=since, actor="risk")
            seen = eventually(lambda: _risk_closed(sut), 15.0, message="risk closed")
            _pnl_is_the_fees_only(sut, seen, actor)
            _probe(c, f"probe-{actor}")
