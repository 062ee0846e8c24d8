"""The `make run` demo: once every actor is READY, submit a few orders through the client
library on the simulated venues and print them filling; the system then stays up.

Runs as its own process
(`python -m actors.supervisor.demo --config ... --state-dir ...`), started by
the supervisor with `run --demo` (`demo_launcher` is its all-ready hook), exactly like a
strategy would talk to the system. It waits until two of its orders are finished (the
market order filled, the far limit order cancelled), at most `WAIT_S`.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

from actors.supervisor.commands.positions import PX_PLACES
from actors.supervisor.commands.tables import num
from protocol.messages import TERMINAL_STATUSES, OrderStatus, OrderView, PositionView

WAIT_S = 20.0
# a limit order's quantity per venue kind: shares on a FIX venue, a crypto exchange's base
# asset (0.05 BTC at ~60,000 USDT: above the exchange's minimum notional, well inside risk)
DEMO_QTY = {"fix": Decimal(50), "ccxt": Decimal("0.05")}
FINISHED_WANTED = 2  # the market order and the cancelled limit order


def demo_launcher(
    config_path: str, *, state_dir: str | None, runtime_dir: str | None
) -> Callable[[dict[str, Any]], None]:
    """The supervisor's all-ready hook for `run --demo`: print the status table, then start
    the demo process (reaped by the supervisor, its subreaper)."""
    from actors.supervisor.commands import format_status

    argv = [
        sys.executable,
        "-m",
        "actors.supervisor.demo",
        "--config",
        os.path.abspath(config_path),
    ]
    for flag, value in (("--state-dir", state_dir), ("--runtime-dir", runtime_dir)):
        if value:
            argv += [flag, value]

    def on_all_ready(status: dict[str, Any]) -> None:
        print("\n" + format_status(status) + "\n", file=sys.stderr, flush=True)
        subprocess.Popen(argv, stdin=subprocess.DEVNULL).returncode = 0  # reaped by the supervisor

    return on_all_ready


def enough_finished(statuses: Iterable[OrderStatus], wanted: int = FINISHED_WANTED) -> bool:
    """At least `wanted` of the orders' last seen statuses are terminal."""
    return sum(status in TERMINAL_STATUSES for status in statuses) >= wanted


def _say(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    from protocol.client import ExecutionClient, NotReady
    from protocol.config import load_config

    p = argparse.ArgumentParser(prog="python -m actors.supervisor.demo")
    p.add_argument("--config", required=True)
    p.add_argument("--state-dir")
    p.add_argument("--runtime-dir")
    ns = p.parse_args(argv)
    cfg = load_config(ns.config, state_dir=ns.state_dir, runtime_dir=ns.runtime_dir)
    venues = [v for v in cfg.venues if v.sim is not None]
    venues.sort(key=lambda v: v.kind != "fix")  # the market order and the cancel on a FIX one
    if not venues:
        _say("no simulated venue configured; nothing to show")
        return 0
    with ExecutionClient(cfg, name="demo") as client:
        deadline = time.monotonic() + 30
        venue = venues[0]
        assert venue.sim is not None
        symbol, ref = next(iter(venue.sim.reference_prices.items()))
        orders = []
        while True:
            try:
                ack = client.submit(venue.name, symbol, "BUY", 100, "MARKET", tif="IOC")
                break
            except NotReady:
                if time.monotonic() > deadline:
                    _say("the OMS did not open intake within 30 s")
                    return 1
                time.sleep(0.2)
        orders.append(ack.client_order_id)
        _say(f"submitted MARKET BUY 100 {symbol} on {venue.name}: {ack.client_order_id}")
        for v in venues:
            assert v.sim is not None
            sym, px = next(iter(v.sim.reference_prices.items()))
            near = (px * Decimal("1.001")).quantize(v.sim.tick_size)
            qty = DEMO_QTY.get(v.kind, Decimal(50))
            ack = client.submit(v.name, sym, "SELL", qty, "LIMIT", price=near, tif="GTC")
            orders.append(ack.client_order_id)
            _say(f"submitted LIMIT SELL {qty} {sym} @ {near} on {v.name}: {ack.client_order_id}")
        far = (ref * Decimal("0.95")).quantize(venue.sim.tick_size)  # inside the risk price band
        ack = client.submit(venue.name, symbol, "BUY", 10, "LIMIT", price=far, tif="GTC")
        _say(f"submitted LIMIT BUY 10 {symbol} @ {far} on {venue.name}: {ack.client_order_id}")
        client.wait_for_status(ack.client_order_id, {OrderStatus.ACCEPTED}, timeout_s=10)
        client.cancel(ack.client_order_id)
        _say(f"cancel requested for {ack.client_order_id}")
        orders.append(ack.client_order_id)
        seen: dict[str, str] = {}  # order -> the line last printed for it
        status: dict[str, OrderStatus] = {}
        end = time.monotonic() + WAIT_S
        while time.monotonic() < end and not enough_finished(status.values()):
            for oid in orders:
                view = client.get_order(oid)
                status[oid] = view.status
                line = order_line(view)
                if seen.get(oid) != line:
                    seen[oid] = line
                    _say(f"{oid} on {view.venue}: {line}")
            time.sleep(0.25)
        for pos in client.positions():
            _say(position_line(pos))
    _say(done_hint(ns.config, ns.state_dir, ns.runtime_dir))
    return 0


def order_line(view: OrderView) -> str:
    """An order as the demo prints it: prices at the tables' decimals, no price while nothing
    has filled (`tradepulse orders` shows the same)."""
    px = num(view.avg_px, PX_PLACES) if view.cum_qty else "-"
    return f"{view.status} cum={view.cum_qty} avg_px={px}"


def position_line(pos: PositionView) -> str:
    """A position as the demo prints it: its average price at the tables' decimals (not the
    28 digits of a Decimal division), ``-`` for a flat one or one of unknown cost."""
    px = num(pos.avg_px, PX_PLACES) if pos.qty and pos.cost_known else "-"
    return f"position {pos.venue} {pos.symbol}: qty={pos.qty} avg_px={px}"


def done_hint(config: str, state_dir: str | None, runtime_dir: str | None) -> str:
    """What to type next, with the flags this system was started with (the config path
    was always said to be deploy/config/demo.toml, whatever `make run CONFIG=` gave)."""
    flags = ["--config", config]
    for flag, value in (("--state-dir", state_dir), ("--runtime-dir", runtime_dir)):
        if value:
            flags += [flag, value]
    return (
        "demo flow done; the system stays up. In another shell: `.venv/bin/tradepulse top`"
        f" (live view), `status`, `orders`, `positions` (each with {shlex.join(flags)});"
        " Ctrl-C here to stop."
    )


if __name__ == "__main__":
    sys.exit(main())
