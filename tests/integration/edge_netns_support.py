"""The core and an edge in two network namespaces (tests/netfault), for
tests/integration/test_edge_netns.py.

The core supervisor runs in the pair's core namespace and binds the link on the core's veth
address; the edge supervisor (two simulated FIX venues, `simA` and `simB`) runs in the edge
namespace and connects to tcp://127.0.0.1:<port> of a `FaultProxy` listening there, which
forwards to the core's address over the veth. Control sockets are ipc paths in the runtime
dirs, so the test process (in the host's namespace) talks to both supervisors as usual; a
supervisor's /metrics listens on 127.0.0.1 of its own namespace and is read from a thread
that entered it.

The checks are the chaos harness's: a `LoadClient` (tests/chaos/load.py) records its
history while faults are applied, and `tests.chaos.checker.check` judges the OMS, its
journal, risk and each venue's ground truth against it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.client import ExecutionClient, Timeout
from protocol.curve_keys import generate
from protocol.exceptions import TradePulseError
from protocol.messages import OrderView
from tests.chaos.checker import CheckResult, Observations, check
from tests.chaos.harness import SYMBOLS, ChaosOptions
from tests.chaos.history import Entry, HistoryWriter, read_history
from tests.chaos.load import LoadClient, LoadSpec
from tests.chaos.settle import CONVERGENCE
from tests.chaos.venuectl import risk_positions
from tests.helpers import SystemUnderTest, eventually, metric_value, process_alive
from tests.integration.oms_support import venue_cfg
from tests.netfault.netns import NetPair, in_netns
from tests.netfault.proxy import FaultProxy
from tests.system_ops import client, inspect_venue, journal_records, submit_when_open

VENUES = ("simA", "simB")
GROUP = "edge-a"
LINK_PORT = 7100  # inside the core's own namespace: nothing else listens there
PING_S, DOWN_AFTER_S = 0.2, 1.0


def overrides(
    pair: NetPair, proxy_port: int, keys: Path, core_loss_cancel_s: float
) -> dict[str, Any]:
    """The chaos harness's config (risk limits out of the way, outages tolerated) with the
    two venues placed on the edge and the link through the proxy."""
    cfg = ChaosOptions(venues=VENUES, exchanges=()).config_overrides()
    cfg["system"]["log_level"] = "info"
    cfg["venues"] = [
        venue_cfg(v, reference_prices=dict(SYMBOLS)) | {"host_group": GROUP} for v in VENUES
    ]
    cfg["link"] = {
        "bind": f"tcp://{pair.core_ip}:{LINK_PORT}",
        "connect": f"tcp://127.0.0.1:{proxy_port}",
        "keys_dir": str(keys),
        "ping_interval_s": PING_S,
        "down_after_s": DOWN_AFTER_S,
        "edge": {"core_loss_cancel_s": core_loss_cancel_s},
    }
    return cfg


def tree(sut: SystemUnderTest) -> set[int]:
    """The supervisor and its actors."""
    assert sut.proc is not None
    return {p for p in sut.pids().values() if p} | {sut.proc.pid}


def gone(pids: set[int]) -> bool:
    return not [p for p in pids if process_alive(p)]


@dataclass
class Deployment:
    """The namespace pair, the proxy, the keys, the running core and edge; `restart_*`
    replaces one after kill -9 with a warm start on the same dirs."""

    pair: NetPair
    proxy: FaultProxy
    keys: Path
    core_loss_cancel_s: float
    core: SystemUnderTest = field(init=False)
    edge: SystemUnderTest = field(init=False)
    made: list[SystemUnderTest] = field(default_factory=list)

    def make(
        self,
        side: str,
        *,
        root: Path | None = None,
        keys: Path | None = None,
        core_loss_cancel_s: float | None = None,
    ) -> SystemUnderTest:
        cancel_s = core_loss_cancel_s or self.core_loss_cancel_s
        sut = SystemUnderTest(
            venues=VENUES,
            overrides=overrides(self.pair, self.proxy.port, keys or self.keys, cancel_s),
            launcher=self.pair.launcher("core" if side == "core" else "edge"),
            run_args=["--host-group", "core" if side == "core" else GROUP],
            root=root,
        )
        self.made.append(sut)
        return sut

    def start(self) -> Deployment:
        self.core = self.make("core").start()
        self.edge = self.make("edge").start()
        self.wait_healthy()
        return self

    def destroy(self) -> None:
        for sut in reversed(self.made):  # a restarted one before the one whose dirs it took
            sut.destroy()

    # ------------------------------------------------------------------ state

    def link_state(self, sut: SystemUnderTest, peer: str) -> str:
        info = sut.actor("link").get("info") or {}
        return str((info.get("link") or {}).get(peer, {}).get("state"))

    def heard_after(self, sut: SystemUnderTest, peer: str, t: float) -> bool:
        """Whether `sut`'s link has heard `peer` after monotonic time `t` (its status info
        is as of its last heartbeat: `heartbeat_age_s` ago)."""
        row = sut.actor("link")
        ago = ((row.get("info") or {}).get("link") or {}).get(peer, {}).get("heard_s_ago")
        if ago is None:
            return False
        return time.monotonic() - float(row["heartbeat_age_s"]) - float(ago) > t + 0.05

    def healthy(self) -> bool:
        """The link up at both ends (the core shows its venues `remote (link up)`); every
        venue reconciled at the OMS (so connected), whose intake is open."""
        st = self.core.status()
        if self.link_state(self.edge, "core") != "up" or self.link_state(self.core, GROUP) != "up":
            return False
        if any(st["venues"][v]["state"] != "remote (link up)" for v in VENUES):
            return False
        info = self.core.actor("oms", st).get("info") or {}
        venues = info.get("venues") or {}
        return info.get("intake") == "open" and all(venues.get(v) == "reconciled" for v in VENUES)

    def wait_healthy(self, timeout_s: float = 30.0) -> float:
        """Seconds until healthy."""
        t0 = time.monotonic()
        eventually(self.healthy, timeout_s, interval_s=0.05, message=self._describe)
        return time.monotonic() - t0

    def _describe(self) -> str:
        return f"core:\n{self.core.describe(15)}\nedge:\n{self.edge.describe(15)}"

    def metric(self, sut: SystemUnderTest, name: str, **labels: str) -> float:
        """One metric of a supervisor, read from inside its namespace (0 if absent)."""
        url = sut.status()["metrics_url"]
        ns = sut.launcher[-1]  # ip netns exec NS

        def read() -> str:
            with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - its loopback
                return str(resp.read().decode())

        return metric_value(in_netns(ns, read), name, **labels) or 0.0

    # ------------------------------------------------------------------ kill -9 and back

    def kill(self, sut: SystemUnderTest) -> set[int]:
        """kill -9 of the supervisor; returns once its actors are gone too (PDEATHSIG)."""
        pids = tree(sut)
        assert sut.proc is not None
        os.kill(sut.proc.pid, signal.SIGKILL)
        sut.wait_exit(timeout_s=10)
        eventually(lambda: gone(pids), 10.0)
        return pids

    def restart(self, sut: SystemUnderTest, **kwargs: Any) -> SystemUnderTest:
        """A warm start on the dead supervisor's state and runtime dirs."""
        side = "core" if sut is self.core else "edge"
        again = self.make(side, root=sut.root, **kwargs).start()
        if side == "core":
            self.core = again
        else:
            self.edge = again
        return again

    # ------------------------------------------------------------------ the checks

    def observe(self, history_dir: Path, *, open_orders_allowed: bool = True) -> CheckResult:
        """The chaos checker over the history, the OMS (orders, positions, journal), risk's
        positions and each venue's ground truth."""
        history = read_history(sorted(history_dir.glob("client-*.jsonl")))
        with ExecutionClient(self.core.cfg, name="netns-check", timeout_s=15.0) as c:
            orders = [o.model_dump(mode="json") for v in VENUES for o in c.list_orders(v)]
            positions = [p.model_dump(mode="json") for p in c.positions()]
        risk, risk_error = risk_positions(self.core.cfg)
        return check(
            Observations(
                history=history,
                oms_orders=orders,
                oms_positions=positions,
                venues={v: inspect_venue(self.edge, v, cli=False) for v in VENUES},
                journal=journal_records(self.core),
                risk_positions=risk,
                risk_positions_error=risk_error,
                open_orders_allowed=open_orders_allowed,
            )
        )

    def converge(self, history_dir: Path, timeout_s: float = 40.0) -> tuple[CheckResult, float]:
        """Wait until the convergence invariants hold (the OMS agrees with the venues), then
        return the full check and the seconds it took."""
        t0 = time.monotonic()
        last: list[CheckResult] = []

        def converged() -> bool:
            last[:] = [self.observe(history_dir)]
            return all(last[0].invariants[k].violations == 0 for k in CONVERGENCE)

        def why() -> str:
            if not last:
                return "no check ran"
            bad = {k: v.examples[:5] for k, v in last[0].invariants.items() if v.violations}
            return f"{bad}\n{self._describe()}"

        eventually(converged, timeout_s, interval_s=0.5, message=why)
        return last[0], time.monotonic() - t0


def assert_valid(result: CheckResult) -> None:
    bad = {k: v.examples for k, v in result.invariants.items() if v.violations}
    assert not bad, bad


class Load:
    """The chaos harness's load client in a thread of the test, recording its history."""

    def __init__(self, d: Deployment, history_dir: Path, *, client: int, rate_per_s: float) -> None:
        self.spec = LoadSpec(
            client=client,
            seed=13,
            config_path=str(d.core.config_path),
            state_dir=str(d.core.state_dir),
            runtime_dir=str(d.core.runtime_dir),
            out_path=str(history_dir / f"client-{client}.jsonl"),
            venues=list(VENUES),
            reference_prices=dict(SYMBOLS),
            rate_per_s=rate_per_s,
            duration_s=600.0,
            request_timeout_s=3.0,
            max_attempts=100,
        )
        self.client = ExecutionClient(
            d.core.cfg, name=f"netns{client}", retry_interval_s=0.5, timeout_s=3.0
        )
        self.writer = HistoryWriter(Path(self.spec.out_path))
        self.load = LoadClient(self.spec, self.client, self.writer)
        self.thread = threading.Thread(target=self.load.run, name=f"load-{client}", daemon=True)

    def acked(self) -> int:
        """Submits the OMS acknowledged so far (its history file, flushed per line)."""
        path = Path(self.spec.out_path)
        entries = read_history([path]) if path.exists() else []
        return sum(1 for e in entries if e.op == "submit" and e.outcome == "ok")

    def stop(self) -> None:
        self.load.stopping = True
        self.thread.join(30.0)
        assert not self.thread.is_alive(), "the load client did not stop"
        self.writer.close()
        self.client.close()


@contextmanager
def load(
    d: Deployment, history_dir: Path, *, client: int = 0, rate_per_s: float = 8.0
) -> Iterator[Load]:
    """A load client running for the body; stopped (the operation in progress finished)
    on exit."""
    running = Load(d, history_dir, client=client, rate_per_s=rate_per_s)
    running.thread.start()
    try:
        yield running
    finally:
        running.stop()


class Recorder:
    """The test's own submits, recorded in the history as a load client records its own
    (client 99), so the checker judges them too."""

    def __init__(self, c: ExecutionClient, history_dir: Path) -> None:
        self.c = c
        self.writer = HistoryWriter(history_dir / "client-99.jsonl")
        self.seq = 0

    def submit(self, venue: str, coid: str, qty: str, price: str | None = None) -> OrderView:
        """A BUY of AAPL (market without a price) once the OMS's intake is open."""
        self.seq += 1
        start = time.time_ns()
        fields = dict(venue=venue, symbol="AAPL", side="BUY", qty=qty, price=price,
                      order_type="LIMIT" if price else "MARKET", tif="DAY")  # fmt: skip
        try:
            view = submit_when_open(self.c, venue, qty=qty, price=price, client_order_id=coid)
        except TradePulseError as exc:
            self._record(coid, fields, start, "timeout" if isinstance(exc, Timeout) else "error",
                         type(exc).__name__)  # fmt: skip
            raise
        self._record(coid, fields, start, "ok", "", view.status.value)
        return view

    def _record(
        self, coid: str, fields: dict[str, Any], start: int, outcome: str, error: str,
        status: str = "",
    ) -> None:  # fmt: skip
        self.writer.record(Entry(
            client=99, seq=self.seq, op="submit", attempt=1, client_order_id=coid,
            start_ns=start, end_ns=time.time_ns(), outcome=outcome,  # type: ignore[arg-type]
            error=error, status=status, **fields,
        ))  # fmt: skip

    def close(self) -> None:
        self.writer.close()


@contextmanager
def recorder(d: Deployment, history_dir: Path) -> Iterator[Recorder]:
    """A client of the core whose submits are recorded; closed on exit."""
    with client(d.core) as c:
        rec = Recorder(c, history_dir)
        try:
            yield rec
        finally:
            rec.close()


def make_keys(root: Path) -> tuple[Path, Path]:
    """(the deployment's keys: core and edge-a; a stranger's: its own pair named edge-a
    and the core's public key)."""
    keys, stranger = root / "keys", root / "stranger"
    for name in ("core", GROUP):
        generate(keys, name)
    generate(stranger, GROUP)
    (stranger / "core.key").write_bytes((keys / "core.key").read_bytes())
    return keys, stranger


def percentile(values: Sequence[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")
