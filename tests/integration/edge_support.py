"""A core and an edge supervisor on loopback (two real processes, their own state and
runtime dirs) with the simulated FIX venue `simA` placed on the edge `edge-a`, linked over
tcp + CurveZMQ (actors/link): what the across-hosts tests share (`test_edge_link`,
`test_edge_ops`)."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from protocol.curve_keys import generate
from tests.helpers import SystemUnderTest, process_alive

VENUE = "simA"
EDGE = "edge-a"


def free_port() -> int:
    """A free port below the ephemeral range (32768-60999 here): the edges start beside the
    core and connect before its link binds, and a connect to an unbound port of the
    ephemeral range can be given that very port as its own (a TCP self-connect): the core's
    link then failed to bind (EADDRINUSE) at every restart until the test gave up."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, 32_768)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32767")


def overrides(
    keys: Path | None, port: int, placed: Mapping[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """The config of every end: the link on 127.0.0.1:`port` (Curve keys in `keys`, or
    plaintext), the venues `placed` (name -> host group; simA on edge-a by default);
    `extra`: more sections (`link` and `venue`, each venue's, merged over these)."""
    endpoint = f"tcp://127.0.0.1:{port}"
    secure = {"keys_dir": str(keys)} if keys is not None else {"allow_plaintext": True}
    link = {
        "bind": endpoint,
        "connect": endpoint,
        "ping_interval_s": 0.2,
        "edge": {"core_loss_cancel_s": 2.0},
        **secure,
        **extra.pop("link", {}),
    }
    each = extra.pop("venue", {})
    venues = [
        {
            "name": name,
            "target_comp_id": name.upper(),
            "host_group": group,
            "sim": {"reference_prices": {"AAPL": "100.00"}},
            **each,
        }
        for name, group in (placed or {VENUE: EDGE}).items()
    ]
    return {"link": link, "venues": venues, **extra}


@contextmanager
def deploy(
    tmp_path: Path, placed: Mapping[str, str] | None = None, **extra: Any
) -> Iterator[dict[str, Any]]:
    """{"make": make(group, keys_dir=keys, root=None) -> an unstarted SystemUnderTest,
    "stranger": a key pair named edge-a the core does not list}; `placed`: venue -> host
    group (simA on edge-a by default); every system made is destroyed at the end (its
    processes gone)."""
    placed = dict(placed or {VENUE: EDGE})
    keys = tmp_path / "keys"
    for name in {"core", *placed.values()}:
        generate(keys, name)
    stranger = tmp_path / "stranger"
    generate(stranger, EDGE)
    port = free_port()
    made: list[SystemUnderTest] = []

    def make(group: str, keys_dir: Path | None = keys, root: Path | None = None) -> SystemUnderTest:
        sut = SystemUnderTest(
            venues=tuple(placed),
            overrides=overrides(keys_dir, port, placed, **dict(extra)),
            run_args=["--host-group", group],
            root=root,
        )
        made.append(sut)
        return sut

    try:
        yield {"make": make, "stranger": stranger}
    finally:
        for sut in reversed(made):  # a restarted edge before the one whose dirs it took over
            sut.destroy()


def link_state(sut: SystemUnderTest, peer: str) -> str:
    info = sut.actor("link").get("info") or {}
    return str((info.get("link") or {}).get(peer, {}).get("state"))


def all_pids(sut: SystemUnderTest) -> set[int]:
    """The supervisor's pid and its actors'."""
    assert sut.proc is not None
    return {pid for pid in sut.pids().values() if pid} | {sut.proc.pid}


def gone(pid_set: set[int]) -> bool:
    return not [p for p in pid_set if process_alive(p)]
