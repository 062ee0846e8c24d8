"""A rig for the connector as a real process, without the rest of the system.

The test process plays the supervisor (a ROUTER that takes READY, heartbeats and venue
states) and the OMS (a ROUTER at the oms endpoint that acks every ExecReport and venue
state, and a DEALER that sends the connector PlaceOrder & co). The venue is the real
simulator process. Both actor processes are started with ``python -m actors`` and can be
`kill -9`ed and restarted with a new epoch. Nothing sleeps to synchronise: `pump_until`
serves the sockets until a condition holds or its deadline passes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import zmq

from protocol.codec import Envelope, Sender, decode, decode_item, encode
from protocol.config import SystemConfig, load_config
from protocol.messages import (
    Ack,
    Acks,
    ExecAck,
    ExecReport,
    ExecReports,
    MassCancel,
    Message,
    Ready,
    VenueConnState,
    VenueStateChanged,
)
from tests.fixlogs import collect as collect_fix_logs
from tests.helpers import REPO_ROOT, kill_and_reap, make_config, run_python, to_toml
from tests.system_ops import inspect_venue, run_cli

VENUE = "simA"


class Proc:
    """One child process with its JSON log lines collected by a thread."""

    def __init__(self, argv: list[str], env: Mapping[str, str]) -> None:
        self.popen = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=dict(env), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self.lines: list[dict[str, Any]] = []
        self.stderr: list[str] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._pump, args=(self.popen.stdout, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.popen.stderr, False), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _pump(self, stream: Any, is_stdout: bool) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                if not is_stdout:
                    self.stderr.append(line)
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    self.lines.append(obj)

    def events(self, name: str, **match: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [
                e
                for e in self.lines
                if e.get("event") == name and all(e.get(k) == v for k, v in match.items())
            ]

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)
        for t in self._threads:
            t.join(timeout=5)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()

    def tail(self, n: int = 25) -> str:
        with self._lock:
            out = [json.dumps(e) for e in self.lines[-n:]]
            err = self.stderr[-n:]
        return "\n".join(out + ["--- stderr"] + err)


class ConnectorRig:
    def __init__(
        self, overrides: Mapping[str, Any] | None = None, *, ack_delay_s: float = 0.0
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="tpc", dir="/tmp"))
        self.state_dir = self.root / "state"
        self.runtime_dir = self.root / "rt"
        self.runtime_dir.mkdir(mode=0o700)
        data = make_config(venues=(VENUE,), overrides=overrides)
        self.config_path = self.root / "config.toml"
        self.config_path.write_text(to_toml(data))
        self.cfg: SystemConfig = load_config(
            self.config_path, state_dir=str(self.state_dir), runtime_dir=str(self.runtime_dir)
        )
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sup = self._router(self.cfg.supervisor_endpoint)
        self.oms_epoch = 1
        self.oms = self._router(self.cfg.endpoint("oms"))
        # the connector takes orders only from the OMS, a mass cancel only from risk
        self.client = self._dealer("oms:rig")
        self.as_risk = self._dealer("risk:rig")
        self.ack_execs = True  # False: the stub OMS takes ExecReports but never acks them
        self.answer_states = True  # False: venue states go unanswered (an OMS still starting)
        self.ack_delay_s = ack_delay_s  # an OMS journal commit takes a while
        self._acks_due: list[tuple[float, list[bytes], Envelope, list[ExecReport]]] = []
        self.ready: dict[str, int] = {}  # actor id -> pid of its last READY
        self.sup_states: list[VenueConnState] = []
        self.states: list[tuple[VenueConnState, int]] = []  # (state, connector epoch) at the OMS
        self.state_msgs: list[tuple[VenueConnState, int, int]] = []  # every one, + OMS epoch
        self.exec_msgs: list[ExecReport] = []  # every ExecReport delivery, duplicates included
        self.applied: dict[str, ExecReport] = {}  # exec_id -> report, as an OMS applies them
        self.replies: dict[str, Envelope] = {}
        self.reply_at: dict[str, float] = {}  # request msg id -> perf_counter at its reply
        self.accepted_at: dict[str, float] = {}  # ClOrdID -> perf_counter at its "accepted"
        self._recv_at = 0.0
        self.procs: dict[str, Proc] = {}  # the current incarnation of each actor
        self.all_procs: list[Proc] = []
        self.epochs: dict[str, int] = {}
        self._oms_sender = Sender("oms", self.oms_epoch)

    # ------------------------------------------------------------------ processes

    def _dealer(self, identity: str) -> zmq.Socket[bytes]:
        """A DEALER to the connector with routing id `identity` (the test process is the
        connector's parent, so its connection is one the connector takes)."""
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RECONNECT_IVL, 2)
        sock.setsockopt(zmq.RECONNECT_IVL_MAX, 50)
        sock.setsockopt(zmq.ROUTING_ID, identity.encode())
        sock.connect(self.cfg.endpoint(f"connector.{VENUE}"))
        return sock

    def _router(self, endpoint: str) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_HANDOVER, 1)
        sock.bind(endpoint)
        return sock

    def spawn(self, kind: str, *, wait_ready: bool = True) -> Proc:
        actor_id = f"{kind}.{VENUE}"
        epoch = self.epochs.get(actor_id, 0) + 1
        self.epochs[actor_id] = epoch
        argv = [
            sys.executable, "-m", "actors", "--kind", kind, "--id", actor_id,
            "--epoch", str(epoch), "--config", str(self.config_path), "--venue", VENUE,
            "--state-dir", str(self.state_dir), "--runtime-dir", str(self.runtime_dir),
        ]  # fmt: skip
        self.ready.pop(actor_id, None)
        proc = Proc(argv, self.env)
        self.procs[actor_id] = proc
        self.all_procs.append(proc)
        if wait_ready:
            self.pump_until(
                lambda: self.ready.get(actor_id) == proc.pid,
                20.0,
                lambda: f"{actor_id} READY\n{proc.tail()}",
            )
        return proc

    def start(self) -> ConnectorRig:
        self.spawn("venuesim")
        self.spawn("connector")
        self.wait_state(VenueConnState.CONNECTED)
        return self

    def kill9(self, kind: str) -> None:
        self.procs[f"{kind}.{VENUE}"].kill()

    def freeze(self, kind: str) -> None:
        """SIGSTOP: the process stops reading its sockets (kill9 still works)."""
        os.kill(self.procs[f"{kind}.{VENUE}"].pid, signal.SIGSTOP)

    @property
    def connector(self) -> Proc:
        return self.procs[f"connector.{VENUE}"]

    def close(self) -> None:
        kill_and_reap([p.pid for p in self.all_procs if p.popen.poll() is None])
        for p in self.all_procs:
            p.kill()
        for sock in (self.sup, self.oms, self.client, self.as_risk):
            sock.close(0)
        self.ctx.term()
        collect_fix_logs(self.root)
        shutil.rmtree(self.root, ignore_errors=True)

    # ------------------------------------------------------------------ the stub OMS

    def restart_oms(self) -> None:
        """A new OMS incarnation: everything the old one held is gone."""
        self.oms.close(0)
        self._acks_due.clear()
        self.oms_epoch += 1
        self._oms_sender = Sender("oms", self.oms_epoch)
        self.oms = self._router(self.cfg.endpoint("oms"))

    def send(self, body: Message) -> str:
        as_risk = isinstance(body, MassCancel)
        env = (Sender("risk", 1) if as_risk else self._oms_sender).envelope(body)
        sock = self.as_risk if as_risk else self.client
        sock.send_multipart(encode(env))
        return env.msg_id

    def request(self, body: Message, timeout_s: float = 10.0) -> Envelope:
        msg_id = self.send(body)
        self.pump_until(lambda: msg_id in self.replies, timeout_s, lambda: f"reply to {body.type}")
        return self.replies.pop(msg_id)

    def pump(self, max_wait_s: float = 0.01) -> None:
        poller = zmq.Poller()
        for sock in (self.sup, self.oms, self.client, self.as_risk):
            poller.register(sock, zmq.POLLIN)
        self._send_due_acks()
        for sock, _ in poller.poll(int(max_wait_s * 1000)):
            while True:
                try:
                    frames = sock.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._recv_at = time.perf_counter()  # before decoding (latency figures)
                if sock in (self.client, self.as_risk):
                    env = decode(frames)
                    for one in _lone_replies(env):  # an `Acks`: each as its lone Ack
                        self.replies[one.corr_id] = one
                        self.reply_at[one.corr_id] = self._recv_at
                elif sock is self.sup:
                    self._on_supervisor(frames[0].decode(), decode(frames[1:]))
                else:
                    self._on_oms(frames[:1], decode(frames[1:]))

    def _on_supervisor(self, actor_id: str, env: Envelope) -> None:
        if isinstance(env.body, Ready):
            self.ready[actor_id] = env.body.pid
        elif isinstance(env.body, VenueStateChanged):
            self.sup_states.append(env.body.state)

    def _on_oms(self, identity: list[bytes], env: Envelope) -> None:
        body = env.body
        reply: Message | None = None
        if isinstance(body, ExecReport | ExecReports):  # a batch: its items, in order
            reports = [body] if isinstance(body, ExecReport) else _items(body)
            for report in reports:
                if report.kind == "accepted":
                    self.accepted_at.setdefault(report.cl_ord_id, self._recv_at)
                self.exec_msgs.append(report)
            if self.ack_execs:
                due = time.monotonic() + self.ack_delay_s
                self._acks_due.append((due, identity, env, reports))
                self._send_due_acks()
        elif isinstance(body, VenueStateChanged):
            self.state_msgs.append((body.state, env.epoch, self.oms_epoch))
            if not self.states or self.states[-1] != (body.state, env.epoch):
                self.states.append((body.state, env.epoch))
            reply = Ack(ref=env.msg_id) if self.answer_states else None
        if reply is not None:
            self.oms.send_multipart(identity + encode(self._oms_sender.envelope(reply, env.msg_id)))

    def _send_due_acks(self) -> None:
        now = time.monotonic()
        while self._acks_due and self._acks_due[0][0] <= now:
            _, identity, env, reports = self._acks_due.pop(0)
            for report in reports:
                self.applied.setdefault(report.exec_id, report)  # durable, then acked
            ack = ExecAck(venue=reports[0].venue, exec_ids=[r.exec_id for r in reports])
            self.oms.send_multipart(identity + encode(self._oms_sender.envelope(ack, env.msg_id)))

    def pump_until(
        self, predicate: Callable[[], Any], timeout_s: float = 10.0,
        what: str | Callable[[], str] = "",
    ) -> Any:  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                text = what() if callable(what) else what
                tail = self.connector.tail() if f"connector.{VENUE}" in self.procs else ""
                raise AssertionError(f"not within {timeout_s} s: {text or predicate}\n{tail}")
            self.pump()

    def mark(self) -> int:
        """A position in the venue states the OMS got; pass it as `since=`."""
        return len(self.states)

    def wait_state(self, state: VenueConnState, timeout_s: float = 15.0, *, since: int = 0) -> None:
        """Until the OMS was told `state` (at or after `since`) by the current connector."""
        epoch = self.epochs[f"connector.{VENUE}"]
        self.pump_until(
            lambda: (state, epoch) in self.states[since:],
            timeout_s,
            lambda: f"venue state {state} since {since}: {self.states}",  # at the deadline
        )

    # ------------------------------------------------------------------ the venue

    def run_tool(
        self, argv: list[str], timeout_s: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        """Run `python ARGV` from the repository with the rig's environment (a
        `tests.system_ops.Deployment`)."""
        return run_python(argv, self.env, timeout_s)

    def sim_control(self, command: str, value: str | None = None) -> dict[str, Any]:
        """A command through the venue's control CLI; its JSON answer."""
        argv = ["-m", "actors.venuesim", "control", "--config", str(self.config_path),
                "--state-dir", str(self.state_dir), "--runtime-dir", str(self.runtime_dir),
                "--venue", VENUE, command, "--json"]  # fmt: skip
        if value is not None:
            argv += ["--value", value]
        result: dict[str, Any] = json.loads(run_cli(self, *argv, timeout_s=20))
        return result

    def inspect(self) -> dict[str, Any]:
        return inspect_venue(self, VENUE, timeout_s=20)


def _items(batch: ExecReports) -> list[ExecReport]:
    """The executions of a batch, decoded as the OMS decodes them."""
    items = [decode_item("exec_report", body) for body in batch.reports]
    return [r for r in items if isinstance(r, ExecReport)]


def _lone_replies(env: Envelope) -> list[Envelope]:
    """A reply as the OMS's `Peer` takes it: an `Acks` is one `Ack` per ref."""
    if not isinstance(env.body, Acks) or env.corr_id:
        return [env]
    return [replace(env, type="ack", corr_id=r, body=Ack(ref=r)) for r in env.body.refs]
