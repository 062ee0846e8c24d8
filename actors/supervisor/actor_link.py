"""The supervisor's actor-facing ROUTER (`supervisor.sock`): READY, heartbeats, venue state
and control replies come in here; STOP and forwarded control requests go out.

Only the supervisor's own children connect (`actors.runtime.zap`: same uid, parent is this
process), and a message speaks for actor X only if it comes from the pid spawned as X:
the connection's peer address carries the sender's pid (SO_PEERCRED), compared with the
child's record. So a same-uid stranger can neither connect nor, from another actor's
connection, keep a frozen actor alive with heartbeats in its name. A refused message is
counted (`tradepulse_messages_refused_total{actor="supervisor"}`) and logged rate-limited
(`message_refused`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

import structlog
import zmq

from actors.runtime import metrics
from actors.runtime.ratelog import LogBudget
from actors.runtime.zap import ZAP_DOMAIN, PeerCred, ZapGate, admit, parse_peer_address
from actors.supervisor.child import Child
from protocol.codec import Envelope, decode
from protocol.exceptions import ProtocolError
from protocol.sockets import Context, bind_router, drain

_ACTOR = "supervisor"


class ActorLink:
    def __init__(self, ctx: Context, endpoint: str) -> None:
        self.log = structlog.get_logger().bind(actor=_ACTOR)
        self.gate = ZapGate(ctx, _ACTOR, self._admit)  # bound before the ROUTER binds
        self.sock = bind_router(ctx, endpoint, zap_domain=ZAP_DOMAIN)
        self._pid = os.getpid()
        self._bad_log, self._refused_log = LogBudget(), LogBudget()

    def _admit(self, cred: PeerCred | None) -> str | None:
        return admit(cred, uid=os.getuid(), trusted=(self._pid,))

    def send(self, actor: str, frames: list[bytes]) -> None:
        """To a child, without blocking (raises ZMQError)."""
        self.sock.send_multipart([actor.encode(), *frames], zmq.NOBLOCK, copy=False)

    def receive(self, children: Mapping[str, Child]) -> Iterator[tuple[Child, Envelope]]:
        """Each readable message of a current child's incarnation, from that child's pid."""
        for frames in drain(self.sock, 1000, frames=True):
            try:
                env = decode([f.bytes for f in frames[1:]])
            except ProtocolError as exc:
                metrics.BAD_MESSAGES.labels(actor=_ACTOR).inc()
                if (skipped := self._bad_log.take()) is not None:
                    self.log.warning(
                        "bad_message", source="actors", error=str(exc), suppressed=skipped
                    )
                continue
            child = children.get(env.sender)
            if child is None or env.epoch != child.epoch:
                continue  # a stale incarnation or a stranger
            cred = parse_peer_address(str(frames[-1].get("Peer-Address")))
            pid = cred.pid if cred is not None else None
            if pid != child.pid:
                self._refuse(env, pid, child)
                continue
            yield child, env

    def _refuse(self, env: Envelope, pid: int | None, child: Child) -> None:
        metrics.MESSAGES_REFUSED.labels(actor=_ACTOR, type=env.type).inc()
        if (skipped := self._refused_log.take()) is not None:
            self.log.warning(
                "message_refused",
                type=env.type,
                reason=f"{child.id} is pid {child.pid}, not {pid}",
                pid=pid,
                suppressed=skipped,
            )
