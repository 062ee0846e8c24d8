"""`make bench-quick` (`python -m tests.bench.quick`): the order path alone, in under two
minutes. Not a `make bench` section (it has no `run()`; `make bench` runs the full `oms`).

One system (supervisor, risk, OMS, FIX connector, venue sim; `tests.bench.oms`'s config),
then for 1, 2, 4 and 8 client processes x 16 in flight, `ORDERS` resting limit orders
each (the `oms` section's throughput step, `tests.bench.oms.throughput`): durable orders/s
(OrderAck), submit -> OrderAck and submit -> ACCEPTED on the event stream p50/p99, and CPU
ms per order by role (psutil cpu_times of the real processes before/after; clients: the
pipelining processes' own CPU). Writes var/bench/quick.json; TP_BENCH_QUICK_ORDERS sets
the orders per row; TP_BENCH_SUBMIT_MANY=1 has each client send the orders its window has
room for as one `SubmitOrders` (default: one `SubmitOrder` a message; the footer says which).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.bench._stats import host_info, precompile
from tests.bench.oms import WINDOW, throughput
from tests.bench.oms import _config as oms_config
from tests.helpers import REPO_ROOT
from tests.integration.oms_support import OmsSystem

ORDERS = int(os.environ.get("TP_BENCH_QUICK_ORDERS", "4000"))
CLIENTS = (1, 2, 4, 8)
ROLES = ("oms", "risk", "connector", "venuesim", "supervisor", "clients")
OUT = REPO_ROOT / "var" / "bench" / "quick.json"


def measure(orders: int = ORDERS) -> dict[str, Any]:
    sut = OmsSystem(overrides=oms_config())
    try:
        sut.start()
        rows = []
        for n in CLIENTS:
            mark = sut.mark()
            row = throughput(sut, orders, clients=n, window=WINDOW, prefix=f"q{n}c")
            row["exits"] = [  # why an actor exited meanwhile (its CPU is missing from the row)
                {k: e.get(k) for k in ("event", "child", "heartbeat_age_s", "signal", "code")}
                for e in sut.events(since=mark)
                if e.get("event") in ("actor_hung", "actor_exited")
            ]
            rows.append(row)
    finally:
        sut.destroy()
    return {
        "orders_per_row": orders,
        "rows": rows,
        "host": {**host_info(), "loadavg_1m": round(os.getloadavg()[0], 2)},
        "ts": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def table(result: dict[str, Any]) -> list[str]:
    head = (
        f"{'clients':>7} {'orders/s':>9} {'ack p50':>8} {'ack p99':>8} {'ACC p50':>8} "
        f"{'ACC p99':>8} | CPU ms/order " + " ".join(f"{r:>9}" for r in (*ROLES, "other", "total"))
    )
    out = [head]
    for row in result["rows"]:
        ack, acc = row["submit_to_order_ack_ms"], row["submit_to_accepted_event_ms"] or {}
        cpu: dict[str, float] = row["cpu_ms_per_order_by_kind"]
        other = sum(v for k, v in cpu.items() if k not in ROLES)
        cells = [cpu.get(r, 0.0) for r in ROLES] + [other, sum(cpu.values())]
        out.append(
            f"{row['clients']:>4}x{row['window_per_client']:<2} {row['acked_orders_per_s']:>9.0f} "
            f"{ack['median']:>8.2f} {ack['p99']:>8.2f} {acc.get('median', 0):>8.2f} "
            f"{acc.get('p99', 0):>8.2f} |              "
            + " ".join(f"{c:>9.3f}" for c in cells)
            + f" | floor {row['floor']['orders_per_s']:>6.0f}/s "
            f"{row['floor']['cpu_ms_per_order']:>6.3f} ms (x{row['ratio_orders_per_s']}, "
            f"x{row['ratio_cpu_per_order']})"
            + (f"  errors {row['errors']}" if row["errors"] else "")
            + (f"  EXITED {_exits(row['exits'])}" if row["exits"] else "")
        )
    out.append(
        f"{result['orders_per_row']} orders per row, one system; latencies in ms (ack: durable "
        f"OrderAck, ACC: ACCEPTED on the event stream); load {result['host']['loadavg_1m']}; "
        f"clients send {_mode(result)}; floor: the same hops and fdatasyncs pipelined with as "
        "many in flight, right after each row (tests/bench/floor_pipe.py), orders/s and CPU "
        "ms an order (x: floor/system orders/s, system/floor CPU)"
    )
    return out


def _mode(result: dict[str, Any]) -> str:
    if any(row.get("submit_many") for row in result["rows"]):
        return "their window's room as one SubmitOrders (TP_BENCH_SUBMIT_MANY=1)"
    return "one SubmitOrder a message (TP_BENCH_SUBMIT_MANY=1: batches)"


def _exits(exits: list[dict[str, Any]]) -> str:
    """'venuesim.simA 3x actor_hung, ...' from the supervisor's lines."""
    seen = Counter((e["child"], e["event"]) for e in exits if e["event"] == "actor_hung")
    seen.update((e["child"], "exited") for e in exits if e["event"] == "actor_exited")
    return ", ".join(f"{child} {n}x {event}" for (child, event), n in seen.items())


def main(argv: Sequence[str] | None = None) -> int:
    del argv
    precompile()  # as `make bench` does
    result = measure()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print("\n".join(table(result)))
    print(f"results: {Path(OUT).relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
