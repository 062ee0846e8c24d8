"""The OMS's order metrics for one applied outcome: orders by status, fills, and the
submit -> venue acknowledgement latency (`tradepulse_order_latency_seconds`).

An outcome with a fill counts one (`tradepulse_fills_total`), whether reported by the venue
or inferred from its state: a reconciliation's missed fill, a status report's catch-up,
an adopted order's fills before its adoption (`actors.oms.adoption`): each one exec id. An
adoption (or an outside replace's report) that also placed unmatched fills on its order
counts each of them too (`_exec_ids`).

Every outcome of every order passes here: the labelled children are looked up once per
label set and kept (prometheus_client's `labels()` builds and locks on each call: half of
this module's cost). The label sets are bounded: venues x statuses. The updates go to the
loop turn's tally (`actors.runtime.tally`): written once per turn, not once per outcome."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.oms.orders import Outcome
from actors.runtime import metrics
from actors.runtime.tally import TURN
from protocol.messages import OrderStatus

_orders: dict[tuple[str, OrderStatus], Any] = {}
_fills: dict[str, Any] = {}
_latency: dict[str, Any] = {}


def count(outcome: Outcome) -> None:
    order = outcome.order
    assert order is not None
    venue, status = order.venue, order.status
    child = _orders.get((venue, status))
    if child is None:
        child = _orders[(venue, status)] = metrics.ORDERS.labels(venue=venue, status=status.value)
    TURN.inc(child)
    if outcome.fill_qty and outcome.fill_qty > 0:  # (a bust's is negative: no fill)
        fills = _fills.get(venue) or _fills.setdefault(venue, metrics.FILLS.labels(venue=venue))
        TURN.inc(fills, _exec_ids(outcome))
    if status is OrderStatus.ACCEPTED and order.ts_ack_ns and order.ts_created_ns:
        if order.ts_ack_ns >= order.ts_created_ns and not order.external:
            latency = _latency.get(venue) or _latency.setdefault(
                venue, metrics.ORDER_LATENCY.labels(venue=venue)
            )
            TURN.observe(latency, (order.ts_ack_ns - order.ts_created_ns) / 1e9)


def _exec_ids(outcome: Outcome) -> int:
    """The exec ids an outcome with a fill counts: one, except where it placed unmatched
    fills (an adoption, an outside replace): each ``fill`` record, and an adoption's
    inferred fill (if the adopted state had one)."""
    records = outcome.records
    if len(records) < 2:
        return 1
    new = records[0]["kind"] == "new"
    inferred = 1 if new and Decimal(records[0]["order"]["cum_qty"]) else 0
    return inferred + sum(1 for r in records if r["kind"] == "fill")
