"""The OMS's order metrics for one applied outcome: orders by status, fills, and the
submit -> venue acknowledgement latency (`tradepulse_order_latency_seconds`)."""

from __future__ import annotations

from actors.oms.orders import Outcome
from actors.runtime import metrics
from protocol.messages import OrderStatus


def count(outcome: Outcome) -> None:
    order = outcome.order
    assert order is not None
    metrics.ORDERS.labels(venue=order.venue, status=order.status.value).inc()
    if outcome.fill_qty:
        metrics.FILLS.labels(venue=order.venue).inc()
    if order.status is OrderStatus.ACCEPTED and order.ts_ack_ns and order.ts_created_ns:
        if order.ts_ack_ns >= order.ts_created_ns and not order.external:
            metrics.ORDER_LATENCY.labels(venue=order.venue).observe(
                (order.ts_ack_ns - order.ts_created_ns) / 1e9
            )
