"""Support for the ccxt venue's integration tests: a system with one ccxt venue on the
local exchange (`actors.exchangesim`, spawned by the supervisor), the connector's crash
points armed on demand, and one check that the OMS agrees with the exchange.

Ground truth is the exchange's own inspection (`python -m actors.exchangesim inspect
--json`, `tests.system_ops.inspect_exchange`); the OMS side is what it tells a client
(`list_orders`, `positions`) and what its journal holds (`check_journal_fills`).

The exchange: BTC/USDT at 60000.00 and ETH/USDT at 3000.00, standing still (no random
walk), asks at reference + 0.01 .. + 0.05 and bids at reference - 0.01 .. - 0.05, QUOTE_QTY
each, re-quoted every `liquidity_interval_s`: a buy resting at or above the best ask fills
up to the quoted quantity at each step. The account starts with 1000 of each base asset
and 1,000,000 USDT (the sim's defaults): `position_baseline` is 1000 per base asset.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from protocol import paths
from protocol.client import ExecutionClient
from protocol.domain import TERMINAL_STATUSES
from protocol.messages import OrderStatus, OrderView
from tests.helpers import SystemUnderTest, eventually
from tests.integration.oms_support import UNSETTLED, check_journal_fills
from tests.system_ops import inspect_exchange, journal_records

D = Decimal
VENUE = "bx-1"  # a hyphen: venue names allow it, ids and paths must cope
BTC, ETH = "BTC/USDT", "ETH/USDT"
KEY_ENV, SECRET_ENV = "TP_TEST_BX_KEY", "TP_TEST_BX_SECRET"
CREDS = {KEY_ENV: "k" * 64, SECRET_ENV: "s" * 64}
BASELINE = D(1000)  # the sim's starting balance of each base asset
QUOTE_QTY = "0.02"
CONNECTOR = f"connector.{VENUE}"
CRASH_POINTS = ("ccxt_after_intent_before_send", "ccxt_after_send_before_answer")

# Binance's order status -> the OMS's
_STATUS = {
    "NEW": OrderStatus.ACCEPTED,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELLED,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
_REQUEST_SUFFIX = re.compile(r"\.[cr]\d+$")  # actors.oms.orders.request_cl_ord_id


def venue_cfg(**over: Any) -> dict[str, Any]:
    """The ccxt venue on the local exchange; short timeouts, fast reconnects."""
    ccxt: dict[str, Any] = {
        "exchange": "binance",
        "api_key_env": KEY_ENV,
        "secret_env": SECRET_ENV,
        "symbols": [BTC, ETH],
        "position_baseline": {"BTC": str(BASELINE), "ETH": str(BASELINE)},
        "poll_interval_s": 0.2,
    } | over.pop("ccxt", {})
    sim: dict[str, Any] = {
        "reference_prices": {BTC: "60000.00", ETH: "3000.00"},
        "volatility_bps": 0.0,
        "quote_qty": QUOTE_QTY,
        "liquidity_interval_s": 0.25,
    } | over.pop("sim", {})
    return {
        "name": VENUE,
        "kind": "ccxt",
        "request_timeout_s": 1.0,
        "rate_limit_per_s": 500.0,
        "rate_burst": 100,
        "reconnect": {"initial_s": 0.02, "factor": 2.0, "max_s": 0.3, "jitter": 0.2},
        "ccxt": ccxt,
        "sim": sim,
    } | over


def overrides(**venue: Any) -> dict[str, Any]:
    """One ccxt venue; the position heartbeat compares every 0.5 s (a divergence of 6 fresh
    beats in a row would engage the kill-switch)."""
    return {
        "heartbeat": {
            "interval_s": 0.5,
            "venue_positions_interval_s": 0.5,
            "divergence_beats": 6,
            "engage_on_missing": False,
        },
        "oms": {"request_timeout_s": 2.0, "reconcile_retry_initial_s": 0.2},
        "risk": {"max_order_notional": "1000000000"},  # the exchange refuses a 2000 BTC sell
        "venues": [venue_cfg(**venue)],
    }


class CcxtSystem(SystemUnderTest):
    """The system with the ccxt venue; the connector's crash points are in the environment
    from the start but disarmed (their "fired" markers written) until `arm`."""

    def __init__(self, *, crash_at: Iterable[str] = CRASH_POINTS, **kwargs: Any) -> None:
        points = list(crash_at)
        env = {**CREDS, **(kwargs.pop("env", None) or {})}
        if points:
            env["TP_FAULT_CRASH_AT"] = ",".join(f"{CONNECTOR}:{p}" for p in points)
        kwargs.setdefault("overrides", overrides())
        # sim=False: no FIX simulator, so no FIX message logs are expected (tests/fixlogs.py)
        super().__init__(venues=(), sim=False, env=env, **kwargs)
        for p in points:
            marker = self.marker(p)
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("disarmed by the test\n")

    def marker(self, point: str) -> Path:
        return paths.crash_marker(self.state_dir, CONNECTOR, point)

    def arm(self, point: str) -> None:
        self.marker(point).unlink()


def running(system: CcxtSystem) -> Iterator[CcxtSystem]:
    """`system` started, and destroyed when the caller is done (a fixture's body:
    `yield from running(CcxtSystem(...))`)."""
    try:
        system.start(timeout_s=30.0)
        yield system
    finally:
        system.destroy()


def chain_head(cl_ord_id: str) -> str:
    """The first ClOrdID of an order's chain (a replace's is `<base>.r<n>`)."""
    return _REQUEST_SUFFIX.sub("", cl_ord_id)


@dataclass
class Comparison:
    """What the OMS says next to what the exchange holds; `problems` empty = they agree."""

    oms: dict[str, OrderView]
    exchange: dict[str, Any]
    oms_positions: dict[str, Decimal]
    problems: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return not self.problems

    def order(self, client_order_id: str) -> dict[str, Any]:
        """The exchange's order of `client_order_id` (KeyError: never seen)."""
        return next(o for o in self.exchange["orders"] if o["client_order_id"] == client_order_id)


def compare(
    c: ExecutionClient,
    sut: SystemUnderTest,
    acked: Iterable[str] = (),
    *,
    cli: bool = False,
) -> Comparison:
    """Check the OMS against the exchange:

    - each client order id at most once at the exchange (a resend after "never seen" is
      once there too: the first never arrived);
    - every acknowledged order known to the OMS and, unless REJECTED, at the exchange; a
      REJECTED one never reached it;
    - every exchange order belongs to an OMS order (by its chain head), and an open one is
      an open OMS order's current ClOrdID (none left behind by a replace);
    - per OMS order: settled (no pending, no UNKNOWN), status equal to the exchange's
      order under its current ClOrdID (NEW after a partly filled replaced order:
      PARTIALLY_FILLED), cum qty equal to the sum over its chain's exchange
      orders (a replace is cancel + new);
    - OMS positions equal the exchange's balances minus the starting balances.
    """
    views = {v.client_order_id: v for v in c.list_orders(VENUE)}
    data = inspect_exchange(sut, VENUE, cli=cli)
    cmp = Comparison(views, data, {p.symbol: p.qty for p in c.positions(VENUE) if p.qty})
    counts = Counter(o["client_order_id"] for o in data["orders"])
    cmp.problems += [f"{n} exchange orders with client id {i}" for i, n in counts.items() if n > 1]
    by_head: dict[str, list[dict[str, Any]]] = {}
    for o in data["orders"]:
        by_head.setdefault(chain_head(o["client_order_id"]), []).append(o)
    oms_heads = {chain_head(v.cl_ord_id): v for v in views.values()}
    for head in by_head:
        if head not in oms_heads:
            cmp.problems.append(f"exchange order {head} unknown to the OMS")
    current_ids = {v.cl_ord_id for v in views.values() if v.status not in TERMINAL_STATUSES}
    for o in data["orders"]:
        if o["is_open"] and o["client_order_id"] not in current_ids:
            cmp.problems.append(f"open exchange order {o['client_order_id']}: no open OMS order")
    for coid in acked:
        if coid not in views:
            cmp.problems.append(f"acked {coid} unknown to the OMS")
    for coid, view in views.items():
        chain = by_head.get(chain_head(view.cl_ord_id), [])
        if view.status in UNSETTLED:
            cmp.problems.append(f"{coid} still {view.status.value}")
            continue
        if view.status is OrderStatus.REJECTED:
            if chain:
                cmp.problems.append(f"{coid}: OMS REJECTED, at the exchange {chain}")
            continue
        current = [o for o in chain if o["client_order_id"] == view.cl_ord_id]
        if not current:
            cmp.problems.append(f"{coid} ({view.status.value}) not at the exchange")
            continue
        status = _STATUS.get(current[0]["status"])
        cum = sum((D(o["filled_qty"]) for o in chain), D(0))
        if status is OrderStatus.ACCEPTED and cum:
            status = OrderStatus.PARTIALLY_FILLED
        if status is not view.status:
            cmp.problems.append(f"{coid}: status {view.status.value} != {current[0]['status']}")
        if view.cum_qty != cum:
            cmp.problems.append(f"{coid}: cum {view.cum_qty} != exchange {cum}")
    held = exchange_positions(data)
    if cmp.oms_positions != held:
        cmp.problems.append(f"positions: OMS {cmp.oms_positions} != exchange {held}")
    return cmp


def exchange_positions(data: Mapping[str, Any]) -> dict[str, Decimal]:
    """Per symbol, the base asset's balance minus the starting balance (non-zero ones)."""
    out: dict[str, Decimal] = {}
    for symbol in (BTC, ETH):
        total = D(data["balances"].get(symbol.split("/")[0], {}).get("total", BASELINE))
        if total != BASELINE:
            out[symbol] = total - BASELINE
    return out


def settle(
    c: ExecutionClient,
    sut: SystemUnderTest,
    acked: Iterable[str] = (),
    timeout_s: float = 20.0,
    *,
    cli: bool = False,
) -> Comparison:
    """Wait until the OMS agrees with the exchange (`compare`, reading the exchange's state
    in-process: the inspection's own function); `cli`: then check once more against the
    inspection CLI's output (a process start: once per module is enough)."""
    ids = list(acked)
    last: list[Comparison] = []

    def agreed() -> Comparison | None:
        cmp = compare(c, sut, ids)
        last[:] = [cmp]
        return cmp if cmp else None

    eventually(
        agreed, timeout_s, interval_s=0.1,
        message=lambda: f"OMS != exchange: {last[0].problems[:10] if last else '?'}\n"
        + sut.describe(),
    )  # fmt: skip
    final = compare(c, sut, ids, cli=True) if cli else last[0]
    assert final, final.problems
    return final


def fills_once(sut: SystemUnderTest, final: Comparison) -> None:
    """The journal's fills: exec ids unique and adding up to the OMS's cum (every order),
    and for each order as many fills as the exchange has trades (each trade applied once,
    none folded into a reconciliation's missed fill)."""
    records = journal_records(sut)
    check_journal_fills(sut, final.oms, records)
    fills: dict[str, list[str]] = {}
    for r in records:
        if r["kind"] == "record" and r["data"]["kind"] == "fill":
            fills.setdefault(r["data"]["id"], []).append(r["data"]["exec_id"])
    for coid, view in final.oms.items():
        head = chain_head(view.cl_ord_id)
        trades = [t for o in final.exchange["orders"] if chain_head(o["client_order_id"]) == head
                  for t in o["trade_ids"]]  # fmt: skip
        ids = fills.get(coid, [])
        assert len(ids) == len(trades), (coid, ids, trades)
        assert not [i for i in ids if i.startswith("recon:")], (coid, ids)
