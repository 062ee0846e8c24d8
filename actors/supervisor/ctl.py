"""The operator side of the control socket: send one command, print the reply.

Every reply is one envelope `{status: ok|error, reason, data}`; `--json` prints it as is,
otherwise a readable table.
"""

from __future__ import annotations

import json
import socket
import sys
import uuid
from pathlib import Path
from typing import Any

import zmq

from protocol.codec import Sender, decode
from protocol.config import SystemConfig
from protocol.exceptions import ProtocolError, TradePulseError
from protocol.messages import ControlReply, ControlRequest

EXIT_OK, EXIT_FAILURE, EXIT_UNAVAILABLE = 0, 1, 3


class ControlUnavailable(TradePulseError):
    """No supervisor answered on the control socket in time."""


def _nobody_listening(path: Path) -> bool:
    """A socket file left by a stopped or killed supervisor refuses connections at once;
    without this check the request would wait its whole timeout for an answer."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:
        return True
    except OSError:
        return False  # let the real request try and report
    finally:
        probe.close()
    return False


def control_request(
    cfg: SystemConfig,
    command: str,
    args: dict[str, Any] | None = None,
    timeout_s: float = 10.0,
    *,
    target: str = "control",
) -> ControlReply:
    """Send one control command and wait for its reply: to the running supervisor's control
    socket, or (`target`) straight to an actor's ROUTER, e.g. "venuesim.simA"."""
    path = cfg.runtime_path / f"{target}.sock"
    if not path.exists() or _nobody_listening(path):
        who = "supervisor" if target == "control" else target
        raise ControlUnavailable(f"no {who} running for state dir {cfg.state_path}")
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(cfg.endpoint(target))
        sender = Sender(f"ctl-{uuid.uuid4().hex[:8]}", 0)
        env = sender.envelope(ControlRequest(command=command, args=args or {}))
        from protocol.codec import encode

        sock.send_multipart(encode(env))
        if not sock.poll(int(timeout_s * 1000)):
            raise ControlUnavailable(f"no answer to {command!r} within {timeout_s} s")
        try:
            reply = decode(sock.recv_multipart()).body
        except ProtocolError as exc:
            raise ControlUnavailable(f"bad reply: {exc}") from exc
        if not isinstance(reply, ControlReply):
            raise ControlUnavailable(f"unexpected reply type {reply.type}")
        return reply
    finally:
        sock.close(0)
        ctx.term()


def control_command(
    cfg: SystemConfig, command: str, args: dict[str, Any], *, as_json: bool, timeout_s: float
) -> int:
    try:
        reply = control_request(cfg, command, args, timeout_s)
    except ControlUnavailable as exc:
        if as_json:
            print(json.dumps({"status": "error", "reason": str(exc), "data": {}}))
        else:
            print(f"tradepulse: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if as_json:
        print(json.dumps(reply.model_dump(exclude={"type"}), default=str))
    elif command == "status" and reply.status == "ok":
        print(format_status(reply.data))
    else:
        print(f"{reply.status}: {reply.reason}" if reply.reason else reply.status)
        if reply.data:
            print(json.dumps(reply.data, indent=2, default=str))
    return EXIT_OK if reply.status == "ok" else EXIT_FAILURE


def _fmt_bytes(n: int | None) -> str:
    if not n:
        return "-"
    return f"{n / 1048576:.1f}M"


def format_status(data: dict[str, Any]) -> str:
    rows = [("ACTOR", "PID", "STATE", "EPOCH", "RESTARTS", "UPTIME_S", "HB_AGE_S", "RSS", "CPU%")]
    for a in data.get("actors", []):
        rows.append(
            (
                a["id"],
                str(a["pid"] or "-"),
                a["state"],
                str(a["epoch"]),
                str(a["restarts"]),
                f"{a['uptime_s']:.1f}",
                "-" if a["heartbeat_age_s"] is None else f"{a['heartbeat_age_s']:.2f}",
                _fmt_bytes(a["rss_bytes"]),
                f"{a['cpu_percent']:.0f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.append("")
    lines.append("VENUE  STATE  DETAIL")
    for name, v in data.get("venues", {}).items():
        lines.append(f"{name}  {v.get('state')}  {v.get('detail', '')}".rstrip())
    ks = data.get("kill_switch", {})
    lines.append("")
    engaged = "ENGAGED" if ks.get("engaged") else "off"
    lines.append(
        f"kill-switch: {engaged}"
        + (f" ({ks.get('source')}: {ks.get('reason')})" if ks.get("engaged") else "")
    )
    for key in ("intake", "queues"):
        if key in data:
            lines.append(f"{key}: {data[key]}")
    lines.append(f"metrics: {data.get('metrics_url', '')}")
    return "\n".join(lines)


def journal_inspect(cfg: SystemConfig, *, as_json: bool) -> int:
    try:
        from actors.oms.journal import inspect as inspect_journal
    except ImportError:
        print("tradepulse: journal support is not built yet", file=sys.stderr)
        return EXIT_FAILURE
    path = cfg.state_path / "oms"
    for record in inspect_journal(path):
        print(json.dumps(record, default=str) if as_json else record)
    return EXIT_OK
