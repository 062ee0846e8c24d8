"""Memory that does not grow with orders: the real system (supervisor, fork server, OMS,
risk, heartbeat, a FIX connector and its venue simulator) under market orders: after a
warm-up that fills every bounded structure, 10,000 more orders grow no process's RSS by more
than a few MiB (OMS: 2,000 recent terminal orders, risk:
the verdict cache, the venue: 5,000 ended orders, the FIX stores: 10,000 messages, the
connector's exec outbox: 20,000 acked ids).

This is the short form of issue 16's memory check (16,000 + 10,000 orders, one venue, so
each bounded structure fills in the warm-up; measured with one venue, the connector's RSS
still steps up between 12,000 and 16,000 orders, then stays flat); `python -m tests.bench
--only memory` pushes 100,000 orders over two venues and reports PSS and RSS per process at
every 10,000.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.bench.memory import Clients, config, processes, sample, terminal_orders
from tests.helpers import SystemUnderTest, eventually

WARM_UP = 16_000
MEASURED = 10_000
VENUE = ("simA",)
GROWTH_BOUND_MIB = 6.0


def _push_and_settle(sut: SystemUnderTest, clients: Clients, n: int, total: int) -> None:
    result = clients.push(n)
    assert result["acked"] == n, result
    eventually(lambda: terminal_orders(sut) >= total, timeout_s=60.0, interval_s=0.2)


def _rss(sut: SystemUnderTest) -> tuple[dict[str, float], dict[str, int]]:
    procs = {k: p for k, p in processes(sut).items() if not k.endswith(".child")}
    return {k: v["rss_mib"] for k, v in sample(procs).items()}, {k: p.pid for k, p in procs.items()}


@pytest.mark.timeout(240)
def test_every_process_rss_is_flat_after_the_bounded_state_is_full(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """After 16,000 orders (every bound reached), 10,000 more grow no process's RSS by more
    than GROWTH_BOUND_MIB (before the bounds, the OMS alone grew ~1.7 KiB per order, risk
    ~2.5, the venue ~1.9, the connector ~1: 10-25 MiB per 10,000), and nothing restarted."""
    sut = start_system(venues=VENUE, overrides=config(VENUE), timeout_s=30.0)
    clients = Clients(sut.cfg.client_endpoint, VENUE)
    try:
        _push_and_settle(sut, clients, WARM_UP, WARM_UP)
        before, pids = _rss(sut)
        _push_and_settle(sut, clients, MEASURED, WARM_UP + MEASURED)
        after, pids_after = _rss(sut)
    finally:
        clients.close()
    assert pids_after == pids, "a process restarted"
    growth = {k: round(after[k] - before[k], 1) for k in before}
    assert max(growth.values()) <= GROWTH_BOUND_MIB, (growth, before)
