"""Pure-logic figures that used to be timed unit tests: journal group commit throughput
(next to a raw write+fdatasync floor in the same run) and reconciliation planning of
10,000 open orders."""

from __future__ import annotations

import os
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.oms.journal import Journal
from actors.oms.order_book import OrderBook
from actors.oms.reconcile import plan_reconciliation
from protocol.messages import (
    ExecReport,
    OrderStatus,
    OrdType,
    RiskVerdict,
    Side,
    SubmitOrder,
    VenueOrder,
)
from tests.bench._stats import describe

_RECORD = {"kind": "fill", "id": "client-order-000123", "exec_id": "E-000000123", "qty": "10",
           "px": "101.25", "status": "PARTIALLY_FILLED", "ts_ns": 1}  # fmt: skip


def _journal_rate(n: int = 20_000, batch: int = 100) -> tuple[float, float]:
    with tempfile.TemporaryDirectory(prefix="tpb") as d:
        journal, _ = Journal.open(Path(d) / "j")
        start = time.perf_counter()
        for i in range(n):
            journal.append(_RECORD)
            if i % batch == batch - 1:
                journal.commit()
        journal.commit()
        rate = n / (time.perf_counter() - start)
        journal.close()
        fd = os.open(Path(d) / "raw", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        chunk = b"x" * 60 * batch
        start = time.perf_counter()
        for _ in range(n // batch):
            os.write(fd, chunk)
            os.fdatasync(fd)
        floor = n / (time.perf_counter() - start)
        os.close(fd)
    return rate, floor


def _reconcile_times(n: int = 10_000, runs: int = 5) -> list[float]:
    book = OrderBook()
    for i in range(n):
        coid = f"c{i}"
        book.submit(
            SubmitOrder(
                client_order_id=coid,
                venue="v",
                symbol=f"S{i % 50}",
                side=Side.BUY,
                qty=Decimal(10),
                order_type=OrdType.LIMIT,
                price=Decimal(100),
            ),
            1,
        )
        book.risk_verdict(RiskVerdict(client_order_id=coid, approved=True), 2)
        book.apply_exec(ExecReport(venue="v", exec_id=f"A{i}", kind="accepted", cl_ord_id=coid), 3)
    open_ = [VenueOrder(cl_ord_id=f"c{i}", symbol=f"S{i % 50}", side=Side.BUY,
                        order_qty=Decimal(10), price=Decimal(100), status=OrderStatus.ACCEPTED)
             for i in range(n)]  # fmt: skip
    orders = book.orders("v")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        plan_reconciliation("v", orders, open_, {}, set())
        times.append(time.perf_counter() - start)
    return times


def run() -> dict[str, Any]:
    rate, floor = _journal_rate()
    return {
        "journal_records_per_s": round(rate),
        "raw_write_fdatasync_records_per_s": round(floor),
        "journal_vs_raw_ratio": round(floor / rate, 2),
        "reconcile_10k_open_orders_ms": describe(_reconcile_times(), scale=1e3),
    }


def summary(result: dict[str, Any]) -> list[str]:
    return [
        f"journal group commit (100/fsync): {result['journal_records_per_s']:,} records/s "
        f"(raw write+fdatasync floor {result['raw_write_fdatasync_records_per_s']:,}/s, "
        f"ratio {result['journal_vs_raw_ratio']})",
        "reconcile plan, 10k open orders: median "
        f"{result['reconcile_10k_open_orders_ms']['median']} ms",
    ]
