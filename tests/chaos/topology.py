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
