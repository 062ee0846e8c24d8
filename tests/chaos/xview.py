"""A simulated exchange's ground truth (`python -m actors.exchangesim inspect --json`) as
the checker's venue view, the shape the FIX venue simulator's inspection has: one order
per OMS order (a chain of ClOrdIDs), its status, quantities and fills, and positions.

Pure: `exchange_view(inspection, baseline)` is unit-tested with hand-made inspections.

- **Chains.** The exchange knows one order per client id; the OMS's replace is cancel +
  new, so an OMS order is the exchange order under its ClOrdID (the client order id)
  followed by those under its replace ids (`<head>.r<n>`), in the exchange's order id
  order. The chain's status is its last order's, in the OMS's words (NEW is ACCEPTED, or
  PARTIALLY_FILLED once the chain has filled); its quantity the last order's plus what the
  earlier ones filled (the connector sends a replace's remainder); its fills every trade
  of every order of the chain, with the connector's exec ids
  (`<symbol>:<order id>:t<trade id>`, `actors.connector.ccxt.intents.Intent.id_scope`).
- **Ids per symbol.** Binance (and the sim) number orders and trades per symbol, so an
  exchange order is (symbol, order id): a chain's `order_id` and `exchange_order_ids` are
  ``<symbol>:<order id>``, unique at the venue as the checker takes them.
- **Duplicates.** Binance (and the sim) accept a client id again once the first order with
  it is finished: a client id on two exchange orders is listed in `duplicate_client_ids`
  (the checker decides whether it was a legitimate resubmit).
- **Rejects** are the exchange's refusals of new orders (`refusals` of the inspection: it
  keeps no order for them), in the FIX venue view's shape: the client id, the Binance
  code and message as `text`; a duplicate open client id ("Duplicate order sent.") is
  OrdRejReason 6 (duplicate), as a FIX venue says it. Each carries what was refused
  (symbol, side, qty) and `after_order`: the exchange already had an order under that
  client id (the refused one was a send of it again).
- **Positions** are what the connector reports: per symbol, the base asset's balance
  minus the starting balance (`baseline`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from actors.exchangesim.errors import DUPLICATE_ORDER

_SUFFIX = re.compile(r"^(?P<head>.+)\.[rc]\d+$")
_STATUS = {
    "NEW": "ACCEPTED",
    "PARTIALLY_FILLED": "PARTIALLY_FILLED",
    "FILLED": "FILLED",
    "CANCELED": "CANCELLED",
    "PENDING_CANCEL": "PENDING_CANCEL",
    "EXPIRED": "EXPIRED",
    "EXPIRED_IN_MATCH": "EXPIRED",
    "REJECTED": "REJECTED",
}


def chain_head(client_id: str) -> str:
    """The OMS ClOrdID a client id belongs to: itself, or the head of a `.r<n>` / `.c<n>`."""
    m = _SUFFIX.match(client_id)
    return m.group("head") if m else client_id


def _status(binance: str, cum: Decimal) -> str:
    status = _STATUS.get(binance, binance)
    if status == "ACCEPTED" and cum > 0:
        return "PARTIALLY_FILLED"
    return status


def exchange_view(
    inspection: Mapping[str, Any], baseline: Mapping[str, Any], symbols: list[str]
) -> dict[str, Any]:
    """The checker's view of an exchange (see the module doc); `inspection` is the sim's
    inspect output, `baseline` the starting balance per asset, `symbols` the venue's."""
    trades: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for t in inspection.get("trades", []):
        trades[_venue_id(t)].append(t)
    # a chain's orders are of one symbol: in its order id order
    orders = sorted(inspection.get("orders", []), key=lambda o: int(o["order_id"]))
    seen: dict[str, int] = defaultdict(int)
    chains: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for o in orders:
        cl = str(o["client_order_id"])
        seen[cl] += 1
        chains[chain_head(cl)].append(o)
    return {
        "venue": inspection.get("venue"),
        "orders": [_chain(members, trades) for members in chains.values()],
        "positions": _positions(inspection, baseline, symbols),
        "duplicate_client_ids": sorted(cl for cl, n in seen.items() if n > 1),
        "rejects": [_reject(r, orders) for r in inspection.get("refusals", [])],
        "balances": inspection.get("balances", {}),
        "traded": inspection.get("positions", {}),
    }


def _reject(refusal: Mapping[str, Any], orders: list[Mapping[str, Any]]) -> dict[str, Any]:
    cl = str(refusal["client_order_id"])
    reject: dict[str, Any] = {
        "cl_ord_id": cl,
        "code": int(refusal["code"]),
        "text": f"{refusal['msg']} ({refusal['code']})",
        "time_ms": refusal.get("time_ms"),
        "symbol": refusal.get("symbol"),
        "side": refusal.get("side"),
        "qty": refusal.get("qty"),
        "after_order": _after_order(refusal, cl, orders),
    }
    if (reject["code"], refusal["msg"]) == DUPLICATE_ORDER:
        reject["ord_rej_reason"] = 6
    return reject


def _after_order(refusal: Mapping[str, Any], cl: str, orders: list[Mapping[str, Any]]) -> bool:
    """Did the exchange already hold an order under `cl` when it refused this one (a send
    of the client id after the exchange took it)? The sim records its newest order id under
    the client id (`prior_order_id`); an older log without it: an order created no later."""
    if "prior_order_id" in refusal:
        return refusal["prior_order_id"] is not None
    at = int(refusal.get("time_ms") or 0)
    return any(
        str(o["client_order_id"]) == cl and int(o.get("created_ms") or 0) <= at for o in orders
    )


def _venue_id(order_or_trade: Mapping[str, Any]) -> str:
    """An exchange order's id at the venue: ``<symbol>:<order id>`` (ids are per symbol)."""
    return f"{order_or_trade['symbol']}:{order_or_trade['order_id']}"


def _chain(
    members: list[Mapping[str, Any]], trades: Mapping[str, list[Mapping[str, Any]]]
) -> dict[str, Any]:
    last = members[-1]
    fills = [
        {
            "exec_id": f"{_venue_id(o)}:t{t['trade_id']}",
            "qty": str(t["qty"]),
            "px": str(t["price"]),
        }
        for o in members
        for t in trades.get(_venue_id(o), [])
    ]
    cum = sum((Decimal(str(o["filled_qty"])) for o in members), Decimal(0))
    earlier = sum((Decimal(str(o["filled_qty"])) for o in members[:-1]), Decimal(0))
    notional = sum((Decimal(f["qty"]) * Decimal(f["px"]) for f in fills), Decimal(0))
    return {
        "order_id": _venue_id(members[0]),
        "exchange_order_ids": [_venue_id(o) for o in members],
        "cl_ord_ids": [str(o["client_order_id"]) for o in members],
        "symbol": last["symbol"],
        "side": last["side"],
        "status": _status(str(last["status"]), cum),
        "exchange_status": last["status"],
        "order_qty": str(Decimal(str(last["qty"])) + earlier),
        "cum_qty": str(cum),
        "avg_px": str(notional / cum) if cum else "0",
        "fills": fills,
    }


def _positions(
    inspection: Mapping[str, Any], baseline: Mapping[str, Any], symbols: list[str]
) -> dict[str, dict[str, str]]:
    balances = inspection.get("balances", {})
    out: dict[str, dict[str, str]] = {}
    for symbol in symbols:
        base = symbol.split("/")[0]
        total = Decimal(str(balances.get(base, {}).get("total", baseline.get(base, 0))))
        out[symbol] = {"net_qty": str(total - Decimal(str(baseline.get(base, 0))))}
    return out
