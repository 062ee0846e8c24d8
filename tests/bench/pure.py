"""Pure-logic figures that used to be timed unit tests: journal group commit throughput
(next to a raw write+fdatasync floor in the same run), reconciliation planning of
10,000 open orders, and the wire codec's microseconds per hot message (decode through the
msgspec fast path and through pydantic alone, encode; `OrderEvent+new`: a newer core's event
as a client reads it, `protocol.compat`)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.oms.journal import Journal
from actors.oms.order_book import OrderBook
from actors.oms.reconcile import plan_reconciliation
from protocol.codec import Sender, decode, encode
from protocol.messages import (
    ActorHeartbeat,
    ExecReport,
    Message,
    OrderEvent,
    OrderStatus,
    OrderView,
    OrdType,
    PlaceOrder,
    RiskCheck,
    RiskVerdict,
    Side,
    SubmitOrder,
    VenueOrder,
)
from protocol.wire_out import dump
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


def _hot_messages() -> dict[str, Message]:
    """One of each hot message as the order path sends it (a resting limit buy of 1)."""
    new = {"client_order_id": "thr0-000123", "venue": "simA", "symbol": "AAPL",
           "side": Side.BUY, "qty": Decimal(1), "order_type": OrdType.LIMIT,
           "price": Decimal("95.37")}  # fmt: skip
    view = OrderView(**new, status=OrderStatus.ACCEPTED, cl_ord_id="thr0-000123",
                     venue_order_id="V-123", ts_ns=1_764_000_000_000_000_000)  # fmt: skip
    return {
        "SubmitOrder": SubmitOrder(**new),
        "RiskCheck": RiskCheck(**{k: v for k, v in new.items() if k != "tif"}),
        "RiskVerdict": RiskVerdict(client_order_id="thr0-000123", approved=True),
        "PlaceOrder": PlaceOrder(cl_ord_id="thr0-000123", symbol="AAPL", side=Side.BUY,
                                 qty=Decimal(1), order_type=OrdType.LIMIT,
                                 price=Decimal("95.37")),
        "ExecReport": ExecReport(venue="simA", exec_id="E-123", kind="accepted",
                                 cl_ord_id="thr0-000123", venue_order_id="V-123",
                                 symbol="AAPL", side=Side.BUY, order_qty=Decimal(1),
                                 price=Decimal("95.37"), leaves_qty=Decimal(1),
                                 ord_status=OrderStatus.ACCEPTED, venue_ts_ns=1),
        "OrderEvent": OrderEvent(event_seq=123, order=view),
        "ActorHeartbeat": ActorHeartbeat(loop_lag_s=0.000123),
    }  # fmt: skip


def _codec_us(n: int = 1000, rounds: int = 15) -> dict[str, dict[str, float]]:
    """Microseconds per message: the best of `rounds` means over `n` messages, the
    operations interleaved round by round (on a loaded machine the best is the cost, the
    median mostly the other processes)."""
    sender = Sender("bench", 1)
    out = {}
    for name, msg in _hot_messages().items():
        env = sender.envelope(msg)
        frames = encode(env)
        ops: dict[str, Callable[[], object]] = {
            "decode_us": lambda f=frames: decode(f),  # type: ignore[misc]
            "decode_pydantic_us": lambda f=frames: decode(f, fast=False),  # type: ignore[misc]
            "encode_us": lambda e=env: encode(e),  # type: ignore[misc]
        }
        out[name] = _best_us(ops, n, rounds)
        if name == "OrderEvent":  # a newer core's, read by a client (two fields it lacks)
            body = {**dump(msg), "bust_ref": "B-1"}
            body["order"] = {**body["order"], "bust_qty": "1"}
            newer = sender.encode_body("order_event", body)[1]
            ops = {
                "decode_us": lambda f=newer: decode(f, tolerant=True),  # type: ignore[misc]
                "decode_pydantic_us": lambda f=newer: decode(f, fast=False, tolerant=True),  # type: ignore[misc]
                "encode_us": lambda e=env: encode(e),  # type: ignore[misc]
            }  # fmt: skip
            out["OrderEvent+new"] = _best_us(ops, n, rounds)
    return out


def _best_us(ops: dict[str, Callable[[], object]], n: int, rounds: int) -> dict[str, float]:
    best = dict.fromkeys(ops, float("inf"))
    for _ in range(rounds):
        for op, fn in ops.items():
            start = time.perf_counter()
            for _ in range(n):
                fn()
            best[op] = min(best[op], (time.perf_counter() - start) / n * 1e6)
    row = {op: round(v, 2) for op, v in best.items()}
    row["decode_speedup"] = round(row["decode_pydantic_us"] / row["decode_us"], 1)
    return row


def run() -> dict[str, Any]:
    rate, floor = _journal_rate()
    return {
        "journal_records_per_s": round(rate),
        "raw_write_fdatasync_records_per_s": round(floor),
        "journal_vs_raw_ratio": round(floor / rate, 2),
        "reconcile_10k_open_orders_ms": describe(_reconcile_times(), scale=1e3),
        "codec_us_per_message": _codec_us(),
    }


def summary(result: dict[str, Any]) -> list[str]:
    return [
        f"journal group commit (100/fsync): {result['journal_records_per_s']:,} records/s "
        f"(raw write+fdatasync floor {result['raw_write_fdatasync_records_per_s']:,}/s, "
        f"ratio {result['journal_vs_raw_ratio']})",
        "reconcile plan, 10k open orders: median "
        f"{result['reconcile_10k_open_orders_ms']['median']} ms",
        "codec, us per message, best of 15 (decode: fast path / pydantic only; encode):",
        *[
            f"  {name:<15} decode {r['decode_us']:>6} / {r['decode_pydantic_us']:>6} "
            f"(x{r['decode_speedup']})  encode {r['encode_us']:>6}"
            for name, r in result.get("codec_us_per_message", {}).items()
        ],
    ]
