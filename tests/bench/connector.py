"""Connector <-> venue round trip on loopback, next to a raw TCP echo measured in the same run.

The real venue simulator process and the real connector process run under a stub OMS
(tests/connector/rig.py, in this process). One order at a time:

- PlaceOrder -> ExecReport(accepted): the stub OMS sends PlaceOrder to the connector (zmq
  ipc), which writes D into its FIX store (fsync) and to the venue over TCP; the venue
  matches, persists and answers 8 ExecType=0; the connector forwards the execution to the
  OMS (zmq ipc), then puts it in its outbox (fsync; next-in rides on it). The clock
  stops when the OMS receives the ExecReport. This is the issue's "D -> ExecutionReport New".
- PlaceOrder -> Ack: the connector's own answer (D durable and written).
- connector D -> first 8 (tradepulse_venue_roundtrip_seconds, read from the connector's
  prometheus multiprocess files): the FIX leg alone, as the connector sees it (mean).
- adapter in-process: the FIX adapter in this process (no zmq, FIX store without fsync)
  against the same venue process, D -> New: the venue's and the FIX code's share.
- raw TCP echo: a 200-byte message to an echo process over loopback TCP and back, the floor;
  and the fsync of a small append on the state dir's filesystem (2 per round trip, strace:
  the D's FIX store, then the execution's outbox, the second off the OMS's critical path).

Limit buys far below the market rest on the book, so each answer is exactly one New.
Back to back, an order also waits for the previous one's commit (the execution's outbox
fsync, which runs after it went to the OMS); a second series spaces orders
3 ms apart to show the round trip without that tail.
`ratio` = connector round trip p50 / raw TCP echo p50.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from protocol import paths
from tests.bench._stats import describe, host_info, percentile
from tests.connector.rig import ConnectorRig

ORDERS = int(os.environ.get("TP_BENCH_CONNECTOR_ORDERS", "2000"))
SPACED = 500  # orders 3 ms apart: without the tail of the previous order's commit
WARMUP = 100
ECHOES = 5000
PAYLOAD = b"x" * 200  # about one NewOrderSingle

_ECHO = """
import socket, sys
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept(); conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while True:
    data = conn.recv(65536)
    if not data:
        break
    conn.sendall(data)
"""

VENUE = {
    "name": "simA",
    "target_comp_id": "SIMA",
    "rate_limit_per_s": 1_000_000.0,
    "rate_burst": 100_000,
    "sim": {"reference_prices": {"AAPL": "100.00"}, "volatility_bps": 0.0},
}


def tcp_echo_s(n: int = ECHOES) -> list[float]:
    """Round trips of PAYLOAD to an echo process over loopback TCP, one in flight."""
    echo = subprocess.Popen(
        [sys.executable, "-c", _ECHO], stdout=subprocess.PIPE, text=True
    )  # fmt: skip
    try:
        assert echo.stdout is not None
        port = int(echo.stdout.readline())
        sock = socket.create_connection(("127.0.0.1", port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        samples = []
        for i in range(n + WARMUP):
            start = time.perf_counter()
            sock.sendall(PAYLOAD)
            got = 0
            while got < len(PAYLOAD):
                got += len(sock.recv(65536))
            if i >= WARMUP:
                samples.append(time.perf_counter() - start)
        sock.close()
        echo.wait(timeout=5)
        return samples
    finally:
        if echo.poll() is None:
            echo.kill()
            echo.wait()
        if echo.stdout is not None:
            echo.stdout.close()


def fsync_s(directory: Path, n: int = 300) -> list[float]:
    """fsync of a 100-byte append in `directory`: the cost the connector pays per commit."""
    path = directory / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    samples = []
    try:
        for _ in range(n):
            os.write(fd, b"x" * 100)
            start = time.perf_counter()
            os.fsync(fd)
            samples.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    return samples


def connector_roundtrips(
    rig: ConnectorRig, n: int, *, gap_s: float = 0.0, tag: str = "b"
) -> tuple[list[float], list[float]]:
    """(PlaceOrder -> ExecReport accepted, PlaceOrder -> Ack) in seconds, one in flight;
    `gap_s` of idle pumping before each order lets the previous commit finish."""
    from protocol.messages import OrdType, PlaceOrder, Side

    to_accept: list[float] = []
    to_ack: list[float] = []
    for i in range(n + WARMUP):
        cl = f"{tag}-{i}"
        if gap_s:
            idle_until = time.perf_counter() + gap_s
            while time.perf_counter() < idle_until:
                rig.pump(0.001)
        order = PlaceOrder(
            cl_ord_id=cl, symbol="AAPL", side=Side.BUY, qty=Decimal(1),
            order_type=OrdType.LIMIT, price=Decimal("50.00"),
        )  # fmt: skip
        start = time.perf_counter()
        msg_id = rig.send(order)
        rig.pump_until(_has(rig.accepted_at, cl), 10.0, f"accepted {cl}")
        rig.pump_until(_has(rig.reply_at, msg_id), 10.0, f"ack of {cl}")
        if i >= WARMUP:
            to_accept.append(rig.accepted_at[cl] - start)
            to_ack.append(rig.reply_at[msg_id] - start)
        rig.replies.pop(msg_id, None)
    return to_accept, to_ack


def _has(mapping: dict[str, float], key: str) -> Callable[[], bool]:
    return lambda: key in mapping


def venue_leg_s(rig: ConnectorRig, n: int) -> list[float]:
    """The FIX adapter in this process (no zmq hop, FIX store without fsync) against the
    same venue process: D -> ExecutionReport New, what the venue and the FIX code cost."""
    from actors.connector.fix.adapter import FixAdapter
    from actors.connector.venue_address import venue_address
    from protocol.messages import OrdType, PlaceOrder, Side
    from tests.connector.fix.support import RecordingListener, TestLoop

    rig.kill9("connector")  # the venue takes one session: ours now (a reset logon)
    loop, listener = TestLoop(), RecordingListener()
    vcfg = rig.cfg.venue("simA")
    adapter = FixAdapter(
        loop, listener, vcfg, store_dir=rig.root / "bench-fix",
        address=lambda: venue_address(vcfg, rig.runtime_dir), log=_Quiet(), id_prefix="bench",
        fsync=False,
    )  # fmt: skip
    loop.after_turn.append(adapter.flush)
    samples = []
    try:
        adapter.connect()
        loop.run_until(lambda: listener.ups, 10.0)
        for i in range(n + WARMUP):
            order = PlaceOrder(
                cl_ord_id=f"v-{i}", symbol="AAPL", side=Side.BUY, qty=Decimal(1),
                order_type=OrdType.LIMIT, price=Decimal("50.00"),
            )  # fmt: skip
            seen = len(listener.execs)
            start = time.perf_counter()
            adapter.place(order, _ignore)
            adapter.flush()  # as the actor's turn does after a request
            loop.run_until(_more_than(listener.execs, seen), 10.0)
            if i >= WARMUP:
                samples.append(time.perf_counter() - start)
    finally:
        adapter.close()
    return samples


class _Quiet:
    """A logger that says nothing (the bench prints only its summary)."""

    def debug(self, event: str, **kw: Any) -> None: ...
    def info(self, event: str, **kw: Any) -> None: ...
    def warning(self, event: str, **kw: Any) -> None: ...
    def error(self, event: str, **kw: Any) -> None: ...


def _ignore(_: object) -> None:
    pass


def _more_than(items: list[Any], n: int) -> Callable[[], bool]:
    return lambda: len(items) > n


def fix_leg_mean_s(metrics_dir: Path) -> float | None:
    """Mean of tradepulse_venue_roundtrip_seconds from the connector's multiprocess files."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir))  # type: ignore[no-untyped-call]
    total = count = 0.0
    for family in registry.collect():
        for sample in family.samples:
            if sample.name == "tradepulse_venue_roundtrip_seconds_sum":
                total += sample.value
            elif sample.name == "tradepulse_venue_roundtrip_seconds_count":
                count += sample.value
    return total / count if count else None


def run() -> dict[str, Any]:
    echo = tcp_echo_s()
    rig = ConnectorRig({"venues": [VENUE]})
    metrics_dir = paths.metrics_dir(rig.runtime_dir)
    metrics_dir.mkdir()
    rig.env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    try:
        rig.start()
        to_accept, to_ack = connector_roundtrips(rig, ORDERS)
        spaced, _ = connector_roundtrips(rig, SPACED, gap_s=0.003, tag="s")
        fix_leg = fix_leg_mean_s(metrics_dir)
        venue_leg = venue_leg_s(rig, SPACED)
        fs = _filesystem(rig.state_dir)
        fsync = fsync_s(rig.state_dir)
    finally:
        rig.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
    p50 = percentile(to_accept, 50)
    return {
        "orders": ORDERS,
        "place_to_exec_report_us": _us(to_accept),
        "place_to_ack_us": _us(to_ack),
        "place_to_exec_report_spaced_us": _us(spaced),
        "fix_leg_mean_us": None if fix_leg is None else round(fix_leg * 1e6, 1),
        "venue_leg_in_process_us": _us(venue_leg),
        "raw_tcp_echo_us": _us(echo),
        "fsync_floor_us": _us(fsync),
        "ratio_p50_vs_tcp_echo": round(p50 / percentile(echo, 50), 1),
        "state_dir_filesystem": fs,
        "host": host_info(),
        "ts": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def _us(samples: list[float]) -> dict[str, float]:
    d = describe(samples, scale=1e6, digits=1)
    d["p50"] = d["median"]
    d["p99"] = round(percentile(samples, 99) * 1e6, 1)
    return d


def _filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (fsync cost depends on it)."""
    best, fstype = "", "unknown"
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                parts = line.split()
                mount = parts[1]
                if str(path.resolve()).startswith(mount) and len(mount) > len(best):
                    best, fstype = mount, parts[2]
    except OSError:
        pass
    return fstype


def summary(r: dict[str, Any]) -> list[str]:
    def line(label: str, d: dict[str, Any]) -> str:
        return f"{label:<36} p50 {d['p50']:>8} us  p99 {d['p99']:>8} us  (n={d['n']})"

    return [
        line("PlaceOrder -> ExecReport(New)", r["place_to_exec_report_us"]),
        line("PlaceOrder -> Ack (D durable)", r["place_to_ack_us"]),
        line("  same, orders 3 ms apart", r["place_to_exec_report_spaced_us"]),
        f"{'connector D -> first 8 (mean)':<36} {r['fix_leg_mean_us']} us",
        line("adapter in-process, no fsync", r["venue_leg_in_process_us"]),
        line("raw TCP echo (floor)", r["raw_tcp_echo_us"]),
        line("fsync of 100 bytes (floor)", r["fsync_floor_us"]),
        f"ratio p50 / TCP echo p50: {r['ratio_p50_vs_tcp_echo']}"
        f"  (state dir on {r['state_dir_filesystem']})",
    ]
