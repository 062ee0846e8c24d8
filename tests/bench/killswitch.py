"""Kill-switch latency: engage -> MassCancel sent to every venue connector (two venues).

1. `isolated`: the real risk process (`python -m actors --kind risk`) with stub peers in this
   process: two connectors (answer MassCancelDone at once), an OMS (answers the exposure
   rebuild and stream events) and the supervisor socket (READY, and the operator's reset).
   Per engagement (a `KillSwitchCommand(engage)` as the OMS or heartbeat sends it):
   - engage sent -> MassCancel received by both connectors (the issue's figure; target
     p99 <= 50 ms),
   - engage sent -> the engage reply (the state is durable: file fsync + rename + dir fsync).
   Then the operator's reset (forwarded control command) and the next round.
2. `system`: a real system (supervisor, risk, OMS, two FIX connectors, two simulated venues)
   with resting orders at both venues; the operator engages through the control socket:
   - control request sent -> `kill_switch_cancel_done` logged (every venue confirmed its
     mass cancel, the orders are cancelled at the venue),
   - risk's own round time (`elapsed_s` of that log line: first MassCancel sent -> last
     MassCancelDone received).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import zmq

from protocol.codec import Sender, decode, encode
from protocol.commands import KillSwitch
from protocol.config import load_config
from protocol.messages import (
    ControlReply,
    ControlRequest,
    KillSwitchCommand,
    MassCancel,
    Ready,
)
from protocol.sockets import bind_router, tune_socket
from tests.actor_stubs import StubConnector, StubOms
from tests.bench._stats import describe, host_info, percentile
from tests.helpers import REPO_ROOT, event_time, make_config, run_system, to_toml

ROUNDS = int(os.environ.get("TP_BENCH_KS_ROUNDS", "300"))
WARMUP = 20
SYSTEM_ROUNDS = int(os.environ.get("TP_BENCH_KS_SYSTEM_ROUNDS", "20"))
VENUES = ("simA", "simB")
TARGET_P99_MS = 50.0


def _stats_ms(values: list[float]) -> dict[str, float]:
    return describe(values, scale=1e3) | {"p99": round(percentile(values, 99) * 1e3, 3)}


# --------------------------------------------------------------------------- isolated


class _Isolated:
    """The risk process and its stub world."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tpk", dir="/tmp"))
        config = self.root / "config.toml"
        config.write_text(to_toml(make_config(venues=VENUES, sim=False)))
        state, rt = self.root / "state", self.root / "rt"
        self.cfg = load_config(config, state_dir=str(state), runtime_dir=str(rt))
        rt.mkdir(mode=0o700)
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.oms = StubOms(self.ctx, self.cfg)
        self.connectors = [StubConnector(self.ctx, self.cfg, v) for v in VENUES]
        self.sup = bind_router(self.ctx, self.cfg.supervisor_endpoint)
        self.sup_sender = Sender("supervisor", 1)
        self.cmd = self.ctx.socket(zmq.DEALER)
        tune_socket(self.cmd)
        # risk takes engagements from the OMS and the heartbeat (and the bench is its parent)
        self.cmd.setsockopt(zmq.ROUTING_ID, b"heartbeat:bench")
        self.cmd.connect(self.cfg.endpoint("risk"))
        self.cmd_sender = Sender("heartbeat", 1)
        self.poller = zmq.Poller()
        for s in (self.oms.stub.sock, self.sup, self.cmd, *(c.stub.sock for c in self.connectors)):
            self.poller.register(s, zmq.POLLIN)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "actors", "--kind", "risk", "--id", "risk", "--epoch", "1",
             "--config", str(config), "--state-dir", str(state), "--runtime-dir", str(rt)],
            cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.ready = False
        self.cmd_replies: dict[str, float] = {}
        self.sup_replies: dict[str, ControlReply] = {}
        self.cancels: dict[str, dict[str, float]] = {}  # reason -> venue -> arrival

    def poll(self, timeout_ms: int = 5) -> None:
        events = dict(self.poller.poll(timeout_ms))
        now = time.perf_counter()
        for c in self.connectors:
            if c.stub.sock in events:
                seen = len(c.stub.received)
                c.stub.pump()
                for env in c.stub.received[seen:]:
                    if isinstance(env.body, MassCancel):
                        self.cancels.setdefault(env.body.reason, {})[c.venue] = now
        if self.oms.stub.sock in events:
            self.oms.stub.pump()
        if self.cmd in events:
            while self.cmd.poll(0):
                env = decode(self.cmd.recv_multipart())
                self.cmd_replies[env.corr_id] = now
        if self.sup in events:
            while self.sup.poll(0):
                frames = self.sup.recv_multipart()
                env = decode(frames[1:])
                if isinstance(env.body, Ready):
                    self.ready = True
                elif isinstance(env.body, ControlReply):
                    self.sup_replies[env.corr_id] = env.body

    def wait(self, what: str, cond: Any, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not cond():
            if time.monotonic() > deadline:
                raise RuntimeError(f"bench: {what} not within {timeout_s} s")
            if self.proc.poll() is not None:
                raise RuntimeError(f"bench: risk exited with {self.proc.returncode}")
            self.poll()

    def engage(self, reason: str) -> tuple[float, float]:
        env = self.cmd_sender.envelope(
            KillSwitchCommand(action="engage", reason=reason, source="heartbeat")
        )
        start = time.perf_counter()
        self.cmd.send_multipart(encode(env))
        self.wait("mass cancels", lambda: len(self.cancels.get(reason, {})) == len(VENUES))
        self.wait("engage reply", lambda: env.msg_id in self.cmd_replies)
        return max(self.cancels[reason].values()) - start, self.cmd_replies[env.msg_id] - start

    def reset(self) -> None:
        req = ControlRequest(command=KillSwitch(action="reset", reason="bench"))
        env = self.sup_sender.envelope(req)
        self.sup.send_multipart([b"risk", *encode(env)])
        self.wait("reset", lambda: env.msg_id in self.sup_replies)
        assert self.sup_replies[env.msg_id].status == "ok", self.sup_replies[env.msg_id]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.ctx.destroy(linger=0)
        shutil.rmtree(self.root, ignore_errors=True)


def isolated() -> dict[str, Any]:
    world = _Isolated()
    try:
        world.wait("READY", lambda: world.ready, 30.0)
        to_cancel: list[float] = []
        to_durable: list[float] = []
        for i in range(WARMUP + ROUNDS):
            cancel_s, durable_s = world.engage(f"bench {i}")
            world.reset()
            if i >= WARMUP:
                to_cancel.append(cancel_s)
                to_durable.append(durable_s)
        return {
            "rounds": ROUNDS,
            "engage_to_mass_cancel_all_ms": _stats_ms(to_cancel),
            "engage_to_durable_reply_ms": _stats_ms(to_durable),
        }
    finally:
        world.close()


# --------------------------------------------------------------------------- whole system


def system() -> dict[str, Any]:
    from tests.system_ops import client, submit_when_open

    to_done: list[float] = []
    round_s: list[float] = []
    control_s: list[float] = []
    with run_system(timeout_s=30.0) as sut, client(sut) as c:
        for i in range(SYSTEM_ROUNDS):
            for venue in VENUES:  # something to cancel at every venue
                submit_when_open(c, venue, "BUY", "1", price="95.00")
                submit_when_open(c, venue, "SELL", "1", price="105.00")
            mark = sut.mark()
            sent_wall, sent = time.time(), time.perf_counter()
            reply = sut.control("kill-switch", action="engage", reason=f"bench {i}")
            control_s.append(time.perf_counter() - sent)
            assert reply.status == "ok", reply
            done = sut.wait_event("kill_switch_cancel_done", since=mark, timeout_s=10.0)
            to_done.append(event_time(done) - sent_wall)
            round_s.append(float(done["elapsed_s"]))
            assert sut.control("kill-switch", action="reset", reason="bench").status == "ok"
        sut.stop()
    return {
        "rounds": SYSTEM_ROUNDS,
        "orders_per_venue_per_round": 2,
        "control_engage_to_all_venues_confirmed_ms": _stats_ms(to_done),
        "risk_round_first_sent_to_last_confirmed_ms": _stats_ms(round_s),
        "control_engage_reply_ms": _stats_ms(control_s),
    }


def run() -> dict[str, Any]:
    iso = isolated()
    full = system()
    p99 = iso["engage_to_mass_cancel_all_ms"]["p99"]
    return {
        "venues": len(VENUES),
        "isolated": iso,
        "system": full,
        "target_p99_ms": TARGET_P99_MS,
        "meets_target": p99 <= TARGET_P99_MS,
        "host": host_info(),
        "ts": datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def summary(r: dict[str, Any]) -> list[str]:
    def line(label: str, d: dict[str, Any]) -> str:
        return (
            f"{label:<44} p50 {d['median']:>7} ms  p99 {d['p99']:>7} ms  max {d['max']:>7} ms"
            f"  (n={d['n']})"
        )

    iso, full = r["isolated"], r["system"]
    return [
        f"{r['venues']} venues; isolated risk process with stub connectors:",
        line("engage -> MassCancel at every connector", iso["engage_to_mass_cancel_all_ms"]),
        line("engage -> durable engage reply", iso["engage_to_durable_reply_ms"]),
        "whole system (FIX connectors, simulated venues, resting orders):",
        line(
            "operator engage -> every venue confirmed",
            full["control_engage_to_all_venues_confirmed_ms"],
        ),
        line(
            "risk round: first sent -> last confirmed",
            full["risk_round_first_sent_to_last_confirmed_ms"],
        ),
        line("operator engage -> control reply", full["control_engage_reply_ms"]),
        f"target p99 <= {r['target_p99_ms']} ms (engage -> MassCancel at every connector): "
        f"{'met' if r['meets_target'] else 'NOT met'}",
    ]
