"""The supervisor's operator side: the control socket, forwarded commands, `status`.

Commands the supervisor answers itself: status, shutdown, restart ACTOR. Commands owned by
an actor (kill-switch -> risk; intake, reconcile -> oms) are forwarded to it over
the supervisor's actor socket and its ControlReply is relayed. Every reply is one envelope
`{status, reason, data}`.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import psutil
import zmq

from actors.risk import killswitch
from actors.runtime import metrics
from actors.supervisor.restart_policy import ChildState, RestartTracker
from protocol.codec import decode, encode
from protocol.exceptions import ProtocolError
from protocol.messages import ControlReply, ControlRequest

if TYPE_CHECKING:
    from actors.supervisor.daemon import Child, Supervisor

FORWARDED = {"kill-switch": "risk", "intake": "oms", "reconcile": "oms"}
_FORWARD_TIMEOUT_S = 30.0


class ControlPlane:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.log = sup.log
        self._pending: dict[str, tuple[list[bytes], str]] = {}

    # ------------------------------------------------------------------ requests

    def on_readable(self) -> None:
        sock = self.sup.ctl_sock
        for _ in range(100):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            identity = frames[:1]
            try:
                env = decode(frames[1:])
            except ProtocolError as exc:
                metrics.BAD_MESSAGES.labels(actor="supervisor").inc()
                self.log.warning("bad_message", source="control", error=str(exc))
                continue
            if not isinstance(env.body, ControlRequest):
                reply: ControlReply | None = ControlReply(
                    status="error", reason=f"not a control request: {env.type}"
                )
            else:
                reply = self._handle(env.body, identity, env.msg_id)
            if reply is not None:
                self.sup.send(sock, identity, reply, env.msg_id)

    def on_actor_reply(self, corr_id: str, reply: ControlReply) -> None:
        """An actor answered a forwarded command: relay it to the operator."""
        target = self._pending.pop(corr_id, None)
        if target is not None:
            self.sup.send(self.sup.ctl_sock, target[0], reply, target[1])

    def _handle(
        self, req: ControlRequest, identity: list[bytes], msg_id: str
    ) -> ControlReply | None:
        cmd = req.command
        self.log.info("control_command", command=cmd, args=req.args)
        sup = self.sup
        if cmd == "status":
            return ControlReply(status="ok", data=self.status())
        if cmd == "shutdown":
            sup.request_shutdown()
            return ControlReply(status="ok", reason="shutting down")
        if cmd == "restart":
            return self._restart(str(req.args.get("actor")), force=bool(req.args.get("force")))
        if cmd == "kill-switch" and not self._running("risk"):
            return self._kill_switch_without_risk(req.args)
        if cmd in FORWARDED:
            return self._forward(FORWARDED[cmd], req, identity, msg_id)
        return ControlReply(status="error", reason=f"unknown command {cmd!r}")

    def _running(self, actor: str) -> bool:
        child = self.sup.children.get(actor)
        return child is not None and child.state is ChildState.RUNNING

    def _kill_switch_without_risk(self, args: dict[str, Any]) -> ControlReply:
        """Risk is down: the operator can still engage (or reset) the switch; the file is the
        truth and risk acts on it (refusal, mass cancel) as soon as it is back."""
        path = killswitch.kill_switch_path(self.sup.cfg.state_path)
        action, reason = args.get("action", "status"), str(args.get("reason", ""))
        try:
            if action == "engage":
                state = killswitch.engage(path, reason or "operator", source="operator")
            elif action == "reset":
                state = killswitch.reset(path, reason, operator="operator")
            else:
                state = killswitch.load(path)
        except killswitch.KillSwitchResetRefused as exc:
            return ControlReply(status="error", reason=str(exc))
        data = {
            "engaged": state.engaged,
            "reason": state.reason,
            "source": state.source,
            "ts_ns": state.ts_ns,
        }
        return ControlReply(
            status="ok",
            reason=(
                f"kill-switch {'ENGAGED' if state.engaged else 'off'}"
                " (risk is not running: written to the state file)"
            ),
            data=data,
        )

    def _restart(self, actor: str, *, force: bool = False) -> ControlReply:
        sup = self.sup
        child = sup.children.get(actor)
        if child is None:
            known = ", ".join(sup.order)
            return ControlReply(status="error", reason=f"unknown actor {actor!r}; actors: {known}")
        if child.pid is None:  # given up or between restarts: an operator restart starts afresh
            t = child.tracker
            child.tracker = RestartTracker(
                t.max_restarts, t.window_s, t.reset_after_s, total=t.total
            )
            sup.spawn(child)
            return ControlReply(status="ok", reason=f"{actor} starting")
        child.restart_requested = True
        if force:  # unresponsive: no polite stop
            child.state = ChildState.STOPPING
            sup.kill_group(child.pid)
        else:
            sup.stop_child(child)
        return ControlReply(status="ok", reason=f"{actor} restarting")

    def _forward(
        self, target: str, req: ControlRequest, identity: list[bytes], msg_id: str
    ) -> ControlReply | None:
        child = self.sup.children.get(target)
        if child is None or child.state is not ChildState.RUNNING:
            state = child.state.value if child else "missing"
            return ControlReply(status="error", reason=f"{target} is not running ({state})")
        env = self.sup.sender.envelope(req)
        try:
            self.sup.sup_sock.send_multipart([target.encode(), *encode(env)], copy=False)
        except zmq.ZMQError as exc:
            return ControlReply(status="error", reason=f"{target} unreachable: {exc}")
        self._pending[env.msg_id] = (identity, msg_id)
        self.sup.timers.call_later(_FORWARD_TIMEOUT_S, lambda: self._expire(env.msg_id, target))
        return None

    def _expire(self, msg_id: str, target: str) -> None:
        pending = self._pending.pop(msg_id, None)
        if pending is not None:
            reply = ControlReply(status="error", reason=f"{target} did not answer in time")
            self.sup.send(self.sup.ctl_sock, pending[0], reply, pending[1])

    # ------------------------------------------------------------------ status and resources

    def sample_resources(self) -> None:
        now = time.monotonic()
        for child in self.sup.children.values():
            age = now - child.last_hb if child.pid else 0.0
            metrics.ACTOR_HEARTBEAT_AGE.labels(actor=child.spec.id).set(age)
            rss = _rss(child)
            if rss:
                metrics.ACTOR_RSS.labels(actor=child.spec.id).set(rss)

    def status(self) -> dict[str, Any]:
        sup = self.sup
        now = time.monotonic()
        actors = [_actor_status(sup.children[cid], now) for cid in sup.order]
        ks = killswitch.load(killswitch.kill_switch_path(sup.cfg.state_path))
        oms_info = sup.children["oms"].info
        return {
            "supervisor_pid": os.getpid(),
            "uptime_s": round(now - sup.started_at, 3),
            "metrics_url": sup.metrics_url,
            "actors": actors,
            "venues": sup.venues,
            "kill_switch": {
                "engaged": ks.engaged,
                "reason": ks.reason,
                "source": ks.source,
                "ts_ns": ks.ts_ns,
            },
            "intake": oms_info.get("intake", "unknown"),
            "queues": oms_info.get("queues", {}),
        }


def _rss(child: Child) -> int:
    if child.pid is None:
        return 0
    try:
        if child.proc is None or child.proc.pid != child.pid:
            child.proc = psutil.Process(child.pid)
            child.proc.cpu_percent(None)
        return int(child.proc.memory_info().rss)
    except psutil.Error:
        child.proc = None
        return 0


def _actor_status(c: Child, now: float) -> dict[str, Any]:
    rss = _rss(c)
    cpu = 0.0
    if rss and c.proc is not None:
        try:
            cpu = c.proc.cpu_percent(None)
        except psutil.Error:
            pass
    running = c.pid is not None and c.state is ChildState.RUNNING
    return {
        "id": c.spec.id,
        "kind": c.spec.kind,
        "pid": c.pid,
        "state": c.state.value,
        "epoch": c.epoch,
        "restarts": c.tracker.total,
        "uptime_s": round(now - c.ready_at, 3) if running and c.ready_at else 0.0,
        "heartbeat_age_s": round(now - c.last_hb, 3) if c.pid else None,
        "loop_lag_s": c.loop_lag_s,
        "rss_bytes": rss,
        "cpu_percent": cpu,
        "endpoints": c.endpoints,
        "info": c.info,
    }
