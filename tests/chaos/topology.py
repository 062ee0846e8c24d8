"""The core+edge topology of a chaos run: the core supervisor in one network namespace, an
edge supervisor (host group `edge-a`, the FIX venues placed on it) in another, joined by a
veth pair (`tests.netfault.netns.net_pair`). The edge's link reaches the core over tcp +
CurveZMQ through a `tests.netfault.proxy.FaultProxy` listening in the edge's namespace, so
the nemesis can delay, stall and cut the link there, and partition it at the veth.

    with EdgeTopology(root) as topo:
        overrides = topo.link_overrides()     # [link] and the venues' host_group
        core = ChaosSystem(..., launcher=topo.launcher("core"))
        core.edge = topo.edge_system(overrides, log_path, env)

The harness, load clients and tools stay in the host's namespace: every socket they use is
ipc (a path), which crosses network namespaces.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from protocol.curve_keys import generate
from protocol.link_config import CORE
from tests.chaos.nemesis import FaultRecord
from tests.chaos.system import ChaosSystem
from tests.netfault.netns import NetPair, net_pair
from tests.netfault.proxy import FaultProxy

EDGE_GROUP = "edge-a"
LINK_PORT = 7100  # the core's link, on its veth address (the namespace is ours alone)
# the link's liveness, tighter than the defaults so a short run sees every case: the edge
# pings every 0.25 s, 2 s of silence is `link_down`, 4 s is the dead-man switch firing
LINK_TIMING: dict[str, Any] = {
    "ping_interval_s": 0.25,
    "down_after_s": 2.0,
    "edge": {"core_loss_cancel_s": 4.0},
}


def core_loss_cancel_s() -> float:
    return float(LINK_TIMING["edge"]["core_loss_cancel_s"])


class EdgeTopology:
    """Namespaces, keys and the fault proxy of one core+edge run; `close()` (or leaving the
    `with`) closes the proxy and removes both namespaces with every process left in them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.keys_dir = root / "keys"
        self._stack = ExitStack()
        self.pair: NetPair | None = None
        self.proxy: FaultProxy | None = None
        self.edge_root: Path | None = None

    def __enter__(self) -> EdgeTopology:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def open(self) -> EdgeTopology:
        try:
            self.pair = self._stack.enter_context(net_pair())
            upstream = (self.pair.core_ip, LINK_PORT)
            self.proxy = FaultProxy(upstream, netns=self.pair.edge_ns).start()
            self._stack.callback(self.proxy.close)
            for group in (CORE, EDGE_GROUP):
                generate(self.keys_dir, group)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        self._stack.close()

    # ------------------------------------------------------------------ config

    def link_overrides(self) -> dict[str, Any]:
        """The `[link]` table: the core binds its veth address, the edge connects to the
        proxy (on the edge's loopback), which forwards over the veth."""
        assert self.pair is not None and self.proxy is not None
        return {
            "bind": f"tcp://{self.pair.core_ip}:{LINK_PORT}",
            "connect": f"tcp://127.0.0.1:{self.proxy.port}",
            "keys_dir": str(self.keys_dir),
            **LINK_TIMING,
        }

    def launcher(self, side: Literal["core", "edge"]) -> list[str]:
        assert self.pair is not None
        return self.pair.launcher(side)

    def edge_system(
        self, overrides: dict[str, Any], log_path: Path, env: Mapping[str, str] | None
    ) -> ChaosSystem:
        """The edge supervisor's deployment: its own state and runtime dirs (a sibling of
        the core's root, so neither's process scan finds the other's processes)."""
        self.edge_root = Path(tempfile.mkdtemp(prefix="tpe", dir="/tmp"))
        return ChaosSystem(
            self.edge_root,
            overrides,
            log_path,
            env=env,
            host_group=EDGE_GROUP,
            launcher=self.launcher("edge"),
        )

    # ------------------------------------------------------------------ faults (LinkControl)

    def set_delay(self, delay_s: float, jitter_s: float = 0.0) -> None:
        assert self.proxy is not None
        self.proxy.set_delay(delay_s, jitter_s)

    def stall(self, on: bool) -> None:
        assert self.proxy is not None
        self.proxy.stall(on)

    def cut(self) -> int:
        assert self.proxy is not None
        return self.proxy.cut()

    def partition(self, on: bool) -> None:
        assert self.pair is not None
        if on:
            self.pair.link_down()
        else:
            self.pair.link_up()

    def pids(self) -> set[int]:
        """The processes living in either namespace."""
        return self.pair.pids() if self.pair is not None else set()

    def stats(self) -> dict[str, int]:
        return dict(self.proxy.stats) if self.proxy is not None else {}


def link_report(
    system: ChaosSystem,
    faults: list[FaultRecord],
    proxy_stats: dict[str, int],
    obs: dict[str, Any],
) -> dict[str, Any]:
    """What the link went through (core+edge): the edge's link events, the dead-man's
    firings and their cancels, the faults during which it fired, the proxy's counters, and
    the orders the dead-man cancelled at each venue (`text` "mass cancel": nothing else in a
    run mass-cancels) with how many of them the OMS holds CANCELLED too."""
    assert system.edge is not None
    edge = system.edge
    done = edge.events("core_lost_cancels_done")
    oms_status = {str(o["client_order_id"]): o["status"] for o in obs.get("oms_orders", [])}
    mass: dict[str, int] = {}
    agreed = 0
    for venue, view in (obs.get("venues") or {}).items():
        heads = [
            str((o.get("cl_ord_ids") or [o.get("cl_ord_id")])[0])
            for o in view.get("orders", [])
            if o.get("text") == "mass cancel"
        ]
        if venue in system.edge.local_venues:
            mass[venue] = len(heads)
        agreed += sum(1 for h in heads if oms_status.get(h) == "CANCELLED")
    return {
        "dead_man_cancelled": mass,
        "dead_man_cancelled_oms_cancelled": agreed,
        "link_down_core": len(system.events("link_down")),
        "link_down_edge": len(edge.events("link_down")),
        "core_lost": len(edge.events("core_lost")),
        "core_lost_cancels_done": len(done),
        "dead_man_results": [e.get("results") for e in done],
        "dead_man_faults": [
            f"{f.kind}:{f.target}#{f.index}" for f in faults if f.detail.get("dead_man_fired")
        ],
        "long_partitions": sum(1 for f in faults if f.kind == "partition" and f.params["long"]),
        "proxy": proxy_stats,
    }
