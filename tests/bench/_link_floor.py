"""The edge bench's floors of the link (tests/bench/edge.py): a bare ZeroMQ round trip
across the namespaces' veth, and the link actor's own round-trip gauge.

`link_pings`: a ROUTER (Curve server with the core's key pair, a ZAP authenticator
accepting the public keys in the keys dir, as the core's link does) in the core namespace
echoes what a DEALER (Curve client with edge-a's pair, the core's public key as server
key) in the edge namespace sends: PING_BYTES, one in flight, back to back and spaced. Both
are processes of their own (`python -m tests.bench._link_floor server|client ...`), Python
and pyzmq as the link actors are.

`RttSampler`: a thread that enters the edge namespace (setns) and reads the edge
supervisor's /metrics (`tradepulse_link_rtt_seconds{peer="core"}`) every RTT_SAMPLE_S.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from protocol.curve_keys import load_public, load_secret, public_file, secret_file
from tests.helpers import REPO_ROOT, SystemUnderTest, metric_value
from tests.netfault.netns import NetPair, enter_netns

PING_BYTES = 300  # about one PlaceOrder envelope
PING_WARMUP = 50
PING_PORT = 7199  # inside the bench's own core namespace
RTT_SAMPLE_S = 0.5
_MODULE = "tests.bench._link_floor"


def link_pings(pair: NetPair, keys: Path, n: int, gap_s: float = 0.0) -> list[float]:
    """`n` round trips (seconds) of the bare Curve DEALER / ROUTER across the veth, back to
    back or `gap_s` apart (both ends asleep between pings, as the link actors are between
    orders: the wake-ups count)."""
    endpoint = f"tcp://{pair.core_ip}:{PING_PORT}"
    server = subprocess.Popen(
        [*pair.launcher("core"), sys.executable, "-m", _MODULE, "server", str(keys), endpoint],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        done = subprocess.run(
            [*pair.launcher("edge"), sys.executable, "-m", _MODULE, "client", str(keys),
             endpoint, str(n), str(gap_s)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"link ping client: exit {done.returncode}: {done.stderr[-500:]}")
        samples: list[float] = json.loads(done.stdout)
        return samples
    finally:
        server.kill()
        server.wait()
        if server.stdout is not None:
            server.stdout.close()


def _server(keys: Path, endpoint: str) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=str(keys))
    sock = ctx.socket(zmq.ROUTER)
    sock.curve_publickey, sock.curve_secretkey = load_secret(secret_file(keys, "core"), "keys")
    sock.curve_server = True
    sock.bind(endpoint)
    print("ready", flush=True)
    while True:
        sock.send_multipart(sock.recv_multipart())


def _client(keys: Path, endpoint: str, n: int, gap_s: float) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.curve_publickey, sock.curve_secretkey = load_secret(secret_file(keys, "edge-a"), "keys")
    sock.curve_serverkey = load_public(public_file(keys, "core"), "keys")
    sock.connect(endpoint)
    payload = b"x" * PING_BYTES
    samples = []
    for i in range(n + PING_WARMUP):
        start = time.perf_counter()
        sock.send(payload)
        if not sock.poll(10_000):
            raise SystemExit("no echo in 10 s")
        sock.recv()
        if i >= PING_WARMUP:
            samples.append(time.perf_counter() - start)
        if gap_s:
            time.sleep(gap_s)  # pacing, not a wait for anything
    print(json.dumps(samples))
    ctx.destroy(linger=0)


class RttSampler:
    """`with RttSampler(ns, edge) as s:` the edge link's round-trip gauge, read every
    RTT_SAMPLE_S from inside namespace `ns` while the block runs; `s.samples` in seconds,
    a reading equal to the one before left out (the same ping's)."""

    def __init__(self, ns: str, edge: SystemUnderTest) -> None:
        self.ns, self.edge = ns, edge
        self.samples: list[float] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rtt-sampler", daemon=True)

    def __enter__(self) -> RttSampler:
        self._thread.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join(10.0)

    def _run(self) -> None:
        try:
            enter_netns(self.ns)
            while not self._stop.wait(RTT_SAMPLE_S):  # a sampling period, not a wait for
                value = metric_value(self.edge.metrics_text(), "tradepulse_link_rtt_seconds",
                                     peer="core")  # fmt: skip
                if value and (not self.samples or value != self.samples[-1]):
                    self.samples.append(value)  # a new ping's (the gauge holds the last)
        except Exception as exc:  # noqa: BLE001 - reported with the figures, not fatal
            self.error = exc


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tests.bench._link_floor server KEYS ENDPOINT | client KEYS ENDPOINT N GAP_S`."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) >= 3 and args[0] == "server":
        _server(Path(args[1]), args[2])
    elif len(args) >= 5 and args[0] == "client":
        _client(Path(args[1]), args[2], int(args[3]), float(args[4]))
    else:
        print(main.__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
