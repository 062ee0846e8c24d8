"""The throughput floor (issue 16): what the hops and fdatasyncs of the order path allow
with many orders in flight, measured in the same run as the system's throughput.

The latency floor's ring (`tests.bench.oms.Chain`: HOPS - 1 relay processes and us, ipc
PUSH/PULL, the same bytes as a SubmitOrder envelope), driven like the throughput step:
`window` orders in flight, each answered one sent. A relay forwards what it reads without
decoding it; the relays at `FSYNC_HOPS` (the three fdatasyncs the design needs in series)
do what the system's journals do under load: read every message waiting (at most
`MAX_BATCH`), write them, one fdatasync, then forward them (a group commit). So the floor
is the transport and the durability alone, pipelined: its orders/s is what the machine
allows through this many processes and syncs, its CPU per order (the relays' and the
driver's, psutil) what an order costs with no work done on it. The system does work on
every hop and sends more than one message an order (the OrderAck, the events, risk's
and the connector's replies), which is what the ratios measure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import zmq

MAX_BATCH = 256
_RELAY = """
import os, sys, zmq
ctx = zmq.Context()
pull = ctx.socket(zmq.PULL); pull.bind(sys.argv[1])
push = ctx.socket(zmq.PUSH); push.connect(sys.argv[2])
fd = os.open(sys.argv[3], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if sys.argv[3] else -1
limit = int(sys.argv[4])
print("ready", flush=True)
while True:
    batch = [pull.recv_multipart()]
    while len(batch) < limit:
        try:
            batch.append(pull.recv_multipart(zmq.NOBLOCK))
        except zmq.Again:
            break
    if fd >= 0:
        os.write(fd, b"".join(b"".join(frames) for frames in batch)); os.fdatasync(fd)
    for frames in batch:
        push.send_multipart(frames)
"""


def pipelined_floor(
    payload: list[bytes],
    hops: int,
    fsync_hops: tuple[int, ...],
    fsync_dir: Path,
    total: int,
    window: int,
) -> dict[str, Any]:
    """`total` copies of `payload` through the ring, `window` in flight: orders/s and the
    CPU ms an order of every process of the ring (relays and driver)."""
    tmp = Path(tempfile.mkdtemp(prefix="tpfp", dir="/tmp"))
    eps = [f"ipc://{tmp}/r{i}.sock" for i in range(hops)]  # eps[0]: ours, the ring's end
    logs = [str(fsync_dir / f"floor-pipe-{i}.log") if i in fsync_hops else "" for i in range(hops)]
    relays = [
        subprocess.Popen(
            [sys.executable, "-c", _RELAY, eps[i], eps[(i + 1) % hops], logs[i], str(MAX_BATCH)],
            stdout=subprocess.PIPE, text=True,
        )
        for i in range(1, hops)
    ]  # fmt: skip
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        for r in relays:
            assert r.stdout is not None and r.stdout.readline().strip() == "ready"
        pull = ctx.socket(zmq.PULL)
        pull.bind(eps[0])
        push = ctx.socket(zmq.PUSH)
        push.connect(eps[1])
        _drive(push, pull, payload, min(window, 200), window)  # warm: every hop connected
        procs = [psutil.Process(r.pid) for r in relays]
        cpu_before = [_cpu(p) for p in procs]
        own_before = time.process_time()
        elapsed = _drive(push, pull, payload, total, window)
        own = time.process_time() - own_before
        relay_cpu = sum(_cpu(p) - b for p, b in zip(procs, cpu_before, strict=True))
    finally:
        ctx.destroy(linger=0)
        for r in relays:
            r.kill()
            r.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        for log in logs:
            if log:
                Path(log).unlink(missing_ok=True)
    return {
        "orders": total,
        "window": window,
        "hops": hops,
        "fsync_hops": list(fsync_hops),
        "orders_per_s": round(total / elapsed, 1),
        "cpu_ms_per_order": round((relay_cpu + own) / total * 1e3, 4),
        "cpu_ms_per_order_driver": round(own / total * 1e3, 4),
    }


def _drive(
    push: zmq.Socket[bytes], pull: zmq.Socket[bytes], payload: list[bytes], n: int, window: int
) -> float:
    """`n` messages through the ring, `window` in flight; the seconds it took."""
    start = time.perf_counter()
    sent = 0
    for _ in range(min(window, n)):
        push.send_multipart(payload)
        sent += 1
    for _ in range(n):
        assert pull.poll(10_000), "floor ring stalled"
        pull.recv_multipart()
        if sent < n:
            push.send_multipart(payload)
            sent += 1
    return time.perf_counter() - start


def _cpu(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)
