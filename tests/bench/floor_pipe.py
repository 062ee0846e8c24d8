"""The order path's floors (issue 16): a ring of relay processes with the path's hops and
its fdatasyncs in series, and no work on the orders.

`Chain`: `hops`-1 relay processes in a ring with us (ipc PUSH/PULL), forwarding the bytes
they read (a SubmitOrder envelope) without decoding them; the relays at `fsync_hops`
append what they read to a file in `fsync_dir` and fdatasync it before forwarding.
`round_trip` times one message around (the latency floor, `tests.bench.oms.latency`: one
in flight, so each fsync relay syncs one message).

`pipelined_floor`: the throughput floor, measured in the same run as each throughput row
(`tests.bench.oms.throughput`). The same ring driven with `window` messages in flight,
each answered one sent; the fsync relays do what the system's journals do under load:
read every message waiting (at most `MAX_BATCH`), write them, one fdatasync, then
forward them (a group commit). Its orders/s is what the machine allows through this many
processes and syncs, its CPU per order (the relays' and the driver's, psutil) what an
order costs with no work done on it. The system does work on every hop and sends more
than one message an order (the OrderAck, the events, risk's and the connector's
replies), which is what the ratios measure.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import psutil
import zmq

MAX_BATCH = 256  # messages a pipelined floor's relay reads, syncs and forwards at once
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


class Chain:
    """The ring (module docstring). `batch` 1: a relay reads, syncs and forwards one
    message at a time, as the latency floor always did (no non-blocking read)."""

    def __init__(
        self,
        hops: int,
        payload: list[bytes],
        fsync_dir: Path | None = None,
        fsync_hops: Collection[int] = (),
        batch: int = 1,
    ) -> None:
        self.payload = payload
        log = {i: fsync_dir / f"floor-{i}.log" for i in fsync_hops} if fsync_dir else {}
        self._logs = list(log.values())
        self._tmp = Path(tempfile.mkdtemp(prefix="tpch", dir="/tmp"))
        eps = [f"ipc://{self._tmp}/r{i}.sock" for i in range(hops)]  # eps[0]: ours, the end
        self._relays = [
            subprocess.Popen(
                [sys.executable, "-c", _RELAY, eps[i], eps[(i + 1) % hops], str(log.get(i, "")),
                 str(batch)],
                stdout=subprocess.PIPE, text=True,
            )
            for i in range(1, hops)
        ]  # fmt: skip
        self._ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        try:
            for r in self._relays:
                assert r.stdout is not None and r.stdout.readline().strip() == "ready"
            self._pull = self._ctx.socket(zmq.PULL)
            self._pull.bind(eps[0])
            self._push = self._ctx.socket(zmq.PUSH)
            self._push.connect(eps[1])
        except BaseException:
            self.close()
            raise

    def round_trip(self) -> float:
        start = time.perf_counter()
        self._push.send_multipart(self.payload)
        assert self._pull.poll(5000), "relay chain stalled"
        self._pull.recv_multipart()
        return time.perf_counter() - start

    def pipeline(self, n: int, window: int) -> float:
        """`n` messages around, `window` in flight; the seconds it took."""
        start = time.perf_counter()
        sent = 0
        for _ in range(min(window, n)):
            self._push.send_multipart(self.payload)
            sent += 1
        for _ in range(n):
            assert self._pull.poll(10_000), "relay chain stalled"
            self._pull.recv_multipart()
            if sent < n:
                self._push.send_multipart(self.payload)
                sent += 1
        return time.perf_counter() - start

    def relays_cpu_s(self) -> float:
        """User + system CPU seconds of the relays so far."""
        times = [psutil.Process(r.pid).cpu_times() for r in self._relays]
        return float(sum(t.user + t.system for t in times))

    def close(self) -> None:
        self._ctx.destroy(linger=0)
        for r in self._relays:
            r.kill()
            r.wait()
        shutil.rmtree(self._tmp, ignore_errors=True)
        for path in self._logs:
            path.unlink(missing_ok=True)


def pipelined_floor(
    payload: list[bytes],
    hops: int,
    fsync_hops: Collection[int],
    fsync_dir: Path,
    total: int,
    window: int,
) -> dict[str, Any]:
    """`total` copies of `payload` through the ring, `window` in flight: orders/s and the
    CPU ms an order of every process of the ring (relays and driver)."""
    chain = Chain(hops, payload, fsync_dir, fsync_hops, batch=MAX_BATCH)
    try:
        chain.pipeline(min(window, 200), window)  # warm: every hop connected
        relays_before, own_before = chain.relays_cpu_s(), time.process_time()
        elapsed = chain.pipeline(total, window)
        own = time.process_time() - own_before
        relays = chain.relays_cpu_s() - relays_before
    finally:
        chain.close()
    return {
        "orders": total,
        "window": window,
        "hops": hops,
        "fsync_hops": list(fsync_hops),
        "orders_per_s": round(total / elapsed, 1),
        "cpu_ms_per_order": round((relays + own) / total * 1e3, 4),
        "cpu_ms_per_order_driver": round(own / total * 1e3, 4),
    }
