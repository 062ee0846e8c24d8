"""The OMS's per-outcome metrics: counted as before, the labelled children looked up once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from actors.oms import outcome_metrics
from actors.runtime import metrics
from actors.runtime.tally import TURN
from protocol.messages import OrderStatus


def _outcome(status: OrderStatus, fill: bool = False) -> Any:
    order = SimpleNamespace(venue="simQ", status=status, ts_ack_ns=2_000_000, ts_created_ns=1,
                            external=False)  # fmt: skip
    return SimpleNamespace(order=order, fill_qty=1 if fill else None, records=())


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_outcomes_are_counted_and_labels_are_looked_up_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every outcome counts (orders by status, fills, ack latency), written when the loop
    turn's tally is flushed; prometheus_client's `labels()` (a build and a lock per call)
    runs once per label set, not per outcome."""
    calls: list[dict[str, str]] = []
    labels = metrics.ORDERS.labels

    def counting(**kw: str) -> Any:
        calls.append(kw)
        return labels(**kw)

    monkeypatch.setattr(metrics.ORDERS, "labels", counting)
    accepted = _sample("tradepulse_orders_total", venue="simQ", status="ACCEPTED")
    fills = _sample("tradepulse_fills_total", venue="simQ")
    latencies = _sample("tradepulse_order_latency_seconds_count", venue="simQ")
    for _ in range(3):
        outcome_metrics.count(_outcome(OrderStatus.ACCEPTED))
    outcome_metrics.count(_outcome(OrderStatus.FILLED, fill=True))
    assert _sample("tradepulse_orders_total", venue="simQ", status="ACCEPTED") == accepted
    TURN.flush()
    assert _sample("tradepulse_orders_total", venue="simQ", status="ACCEPTED") == accepted + 3
    assert _sample("tradepulse_fills_total", venue="simQ") == fills + 1
    assert _sample("tradepulse_order_latency_seconds_count", venue="simQ") == latencies + 3
    assert calls == [{"venue": "simQ", "status": "ACCEPTED"}, {"venue": "simQ", "status": "FILLED"}]
