"""The link between hosts (`link`): one tcp + CurveZMQ connection per edge, bridging the
ipc sockets of the actors on either side (docs/architecture.md, "Across hosts").

Both ends are an actor of their supervisor (fork server, READY, hangs, restarts, epochs).

- The core's link binds `[link] bind` (a ROUTER, Curve server, ZAP domain `LINK_DOMAIN`:
  only the public keys of the edge groups its venues name; the accepted key's group is the
  connection's User-Id, and every message must come from the routing id of that group).
  In the core's runtime dir it binds `connector.<venue>.sock` for each venue placed on an
  edge: the OMS, risk and the heartbeat reach that connector as if it were local.
- An edge's link connects a DEALER (routing id: its group; Curve client that accepts only
  the core's key) to `[link] connect`, and binds `oms.sock` in the edge's runtime dir: its
  connectors reach the OMS as if it were local.

A message into a stand-in socket crosses as `F <target> <identity> <payload...>` and is
delivered on the far side through a DEALER with the sender's routing identity
(`actors.link.bridge`); what comes back crosses as `B <stand-in> <identity> <payload...>`.
`P`/`Q` are the edge's pings (carrying its last measured round trip, so the core shows it
too) and the core's answers (link state, round trip). Nothing is
buffered beyond the sockets' high-water mark (`[link] hwm`; the edge's DEALER queues nothing
while the core is away, ZMQ_IMMEDIATE): what cannot be sent is dropped and counted, and the
senders' own retries (executions until acked, requests with deadlines, reconciliation)
make delivery at-least-once, as on one host.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import zmq
from zmq.utils import z85

from actors.link.bridge import Bridges, link_tables, split_identity
from actors.link.deadman import DeadMan
from actors.link.remote_control import (
    ACROSS,
    CONTROL,
    CONTROL_REPLY,
    CoreControl,
    EdgeControl,
    link_down,
    read_stops_report,
    stops_report,
)
from actors.link.tunnel import open_tunnel, redial
from actors.runtime import metrics
from actors.runtime.actor import Actor
from actors.runtime.operator_stops import OperatorStop, StopsWatcher, stops_as_data
from actors.runtime.peer import MAX_BATCH, Peer
from actors.runtime.ratelog import LogBudget
from actors.runtime.zap import ZAP_DOMAIN
from protocol.codec import Envelope
from protocol.commands import Command, acted_on
from protocol.curve_keys import link_keys
from protocol.link_config import CORE
from protocol.messages import ControlReply, MassCancel, MassCancelDone
from protocol.paths import operator_stops_path
from protocol.sim_config import sim_process_of
from protocol.sockets import Socket, bind_router, connect_dealer, drain, send_nowait

FORWARD, BACK, PING, PONG = b"F", b"B", b"P", b"Q"


class LinkActor(Actor):
    kind = "link"

    def setup(self) -> None:
        link = self.cfg.link
        self.group = self.args.host_group or CORE
        self.is_core = self.group == CORE
        self.keys = link_keys(link, self.cfg.venues, self.group)
        self.zap.link = self._authenticate
        self._drop_log = LogBudget()
        placed = {v.name: v.host_group for v in self.cfg.venues}
        # the peer groups (the core: every edge; an edge: the core) and what each may do
        tables = link_tables(self.cfg.venues, self.group)
        self.peers, self.exports, self.allowed = tables.peers, tables.exports, tables.allowed
        if self.keys is None:
            self.log.warning("link_plaintext", bind=link.bind, connect=link.connect)
        self.tunnel = open_tunnel(self.ctx, link, self.keys, self.group)
        self.add_socket(self.tunnel, self._on_tunnel)
        self.stand_ins: dict[str, Socket] = {}
        for name in self.exports:
            sock = bind_router(self.ctx, self.cfg.endpoint(name), zap_domain=ZAP_DOMAIN)
            self.stand_ins[name] = sock
            self.add_socket(sock, partial(self._on_stand_in, name))
        self.bridges = Bridges(self._open_bridge, self._close_bridge, tables.bridges)
        self._heard: dict[str, float] = {}  # peer -> monotonic time last heard
        self._up: dict[str, bool] = dict.fromkeys(self.peers, False)
        self._rtt_s: dict[str, float] = {}
        self._was_up: set[str] = set()
        for peer in self.peers:
            metrics.LINK_UP.labels(peer=peer).set(0)
        # the dead-man switch (an edge): its connectors, asked to mass-cancel on core loss
        self.deadman = DeadMan(link.edge.core_loss_cancel_s, time.monotonic())
        self.connectors: dict[str, Peer] = {c: self.peer(c) for c in tables.connectors}
        # operator commands across (actors/link/remote_control.py)
        self.placed = placed
        self.core_control = CoreControl(self, self._send_tunnel)
        self.edge_control: EdgeControl | None = None
        # the operator stops of each edge's actors, as that edge reports them (the core);
        # an edge reports its own supervisor's (the source of truth for its actors)
        self.edge_stops: dict[str, dict[str, OperatorStop]] = {}
        self._edge_actors = {p: self._actors_of(p) for p in self.peers} if self.is_core else {}
        self._stops_watch = StopsWatcher(operator_stops_path(self.cfg.runtime_path))
        self._stops_log = LogBudget()
        if not self.is_core:
            sock = connect_dealer(
                self.ctx, self.cfg.control_endpoint, f"{self.actor_id}:{self.epoch}"
            )
            self.edge_control = EdgeControl(
                self, sock, self._actors_of(self.group), lambda f: self._send_tunnel(CORE, f),
                before_answer=self._ping,
            )  # fmt: skip
            self.add_socket(sock, self.edge_control.on_readable)
        self.call_every(link.ping_interval_s, self._tick)
        self.log.info(
            "link_started", host_group=self.group, peers=self.peers, curve=self.keys is not None
        )

    def _actors_of(self, group: str) -> set[str]:
        """The supervised actors of host group `group`'s venues (an edge's: what the core
        may restart there, what its stops report may name)."""
        out: set[str] = set()
        for v in self.cfg.venues:
            if v.host_group == group:
                out.add(f"connector.{v.name}")
                if v.sim is not None:  # a guest sim: its host's process (`sim.runs_in`)
                    kind = "exchangesim" if v.kind == "ccxt" else "venuesim"
                    out.add(f"{kind}.{sim_process_of(v)}")
        return out

    def on_control(self, command: Command, respond: Callable[[ControlReply], None]) -> None:
        """The core: a command for a venue's actor placed on an edge (`ACROSS`) goes to that
        edge, or is answered at once while the link to it is down."""
        actor = acted_on(command) if command.command in ACROSS else None
        group = self.placed.get((actor or "").partition(".")[2])
        if not self.is_core or group is None or group == CORE:
            super().on_control(command, respond)
        elif not self._up.get(group):
            heard = self._heard.get(group)
            since = "never heard" if heard is None else f"silent {time.monotonic() - heard:.1f} s"
            respond(link_down(str(actor), group, f"the link to {group} is down ({since})"))
        else:
            self.core_control.forward(group, command, self.control_operator, respond)

    # ------------------------------------------------------------------ sockets

    def _authenticate(self, mechanism: bytes, credentials: list[bytes]) -> tuple[str, str | None]:
        """The ZAP decision for a tcp connection: (its host group, None) or ("", why not)."""
        if mechanism == b"CURVE" and self.keys is not None and credentials:
            group = self.keys.peers.get(z85.encode(credentials[0]))
            return (group, None) if group is not None else ("", "unknown public key")
        if mechanism == b"NULL" and self.keys is None and self.cfg.link.allow_plaintext:
            return "", None
        return "", f"{mechanism.decode(errors='replace')} refused"

    def _open_bridge(self, target: str, identity: bytes) -> Socket:
        sock = connect_dealer(self.ctx, self.cfg.endpoint(target), identity.decode())
        self.add_socket(sock, partial(self._on_bridge, sock))
        return sock

    def _close_bridge(self, sock: Socket) -> None:
        self.remove(sock)
        sock.close(linger=0)

    # ------------------------------------------------------------------ traffic

    def _send_tunnel(self, peer: str, frames: list[bytes]) -> bool:
        head = [peer.encode()] if self.is_core else []
        reason = send_nowait(self.tunnel, head + frames)
        if reason is not None:
            self._dropped(peer, reason)
        return reason is None

    def _on_stand_in(self, name: str) -> None:
        """A local actor's message to a remote one: across, to the peer that runs it."""
        sock, peer = self.stand_ins[name], self.exports[name]
        for frames in drain(sock, MAX_BATCH):
            if len(frames) >= 2:
                self._send_tunnel(peer, [FORWARD, name.encode(), *frames])

    def _on_bridge(self, sock: Socket) -> None:
        """A local actor's answer to a remote one: back across."""
        route = self.bridges.route_of(sock)
        for frames in self.zap.from_binders(drain(sock, MAX_BATCH, frames=True)):
            if route is not None:
                target, identity, origin = route
                self._send_tunnel(origin.decode(), [BACK, target.encode(), identity, *frames])

    def _on_tunnel(self) -> None:
        for raw in drain(self.tunnel, MAX_BATCH, frames=True):
            frames = [f.bytes for f in raw]
            if self.is_core:
                peer = self._peer_of(raw)
                frames = frames[1:]
            else:
                peer = CORE
            if peer is None or not frames:
                continue
            kind, rest = frames[0], frames[1:]
            self._heard_from(peer, kind)
            if kind == PING and self.is_core:
                self._send_tunnel(peer, [PONG, *rest[:1]])
                if len(rest) >= 2 and rest[1]:  # the edge's last measured round trip, in us
                    self._rtt_s[peer] = int.from_bytes(rest[1][:8], "big") / 1e6
                    metrics.LINK_RTT.labels(peer=peer).set(self._rtt_s[peer])
                if len(rest) >= 3:
                    self._on_stops_report(peer, rest[2])
            elif kind == PONG and not self.is_core and rest:
                sent_ns = int.from_bytes(rest[0][:8], "big")
                self._rtt_s[peer] = max(time.monotonic_ns() - sent_ns, 0) / 1e9
                metrics.LINK_RTT.labels(peer=peer).set(self._rtt_s[peer])
            elif kind == FORWARD and len(rest) >= 3:
                self._forward(peer, rest[0].decode(errors="replace"), rest[1], rest[2:])
            elif kind == BACK and len(rest) >= 3:
                self._back(peer, rest[0].decode(errors="replace"), rest[1], rest[2:])
            elif kind == CONTROL and self.edge_control is not None and len(rest) >= 2:
                self.edge_control.on_command(rest)
            elif kind == CONTROL_REPLY and self.is_core and len(rest) >= 2:
                self.core_control.on_answer(peer, rest)

    def _peer_of(self, raw: list[zmq.Frame]) -> str | None:
        """The core: the edge group a message came from, which must be the group its key
        was accepted for (a key of edge-a cannot speak as edge-b); None: dropped."""
        if len(raw) < 2:
            return None
        group = raw[0].bytes.decode(errors="replace")
        if self.keys is not None:
            user = raw[1].get("User-Id")
            ok = user == group
        else:
            ok = group in self._up
        if not ok:
            self._dropped(group[:24], "not_allowed")
            return None
        return group

    def _forward(self, peer: str, target: str, identity: bytes, payload: list[bytes]) -> None:
        parsed = split_identity(identity)
        allowed = self.allowed.get(peer)
        why = "bad_identity" if parsed is None or allowed is None else None
        if parsed is not None and allowed is not None and allowed.refusal(target, parsed[0]):
            why = "not_allowed"
        if why is None:
            sock = self.bridges.dealer_for(target, identity, peer.encode())
            if isinstance(sock, str):
                why = sock
            else:
                why = send_nowait(sock, payload)
        if why is not None:
            self._dropped(peer, why)

    def _back(self, peer: str, name: str, identity: bytes, payload: list[bytes]) -> None:
        sock = self.stand_ins.get(name)
        if sock is None or self.exports.get(name) != peer:
            self._dropped(peer, "not_allowed")
            return
        if (reason := send_nowait(sock, [identity, *payload])) is not None:
            self._dropped(peer, reason)

    def dropped(self, peer: str, reason: str) -> None:
        """What came from (or could not go to) `peer` and was dropped: counted, logged."""
        self._dropped(peer, reason)

    def _dropped(self, peer: str, reason: str) -> None:
        metrics.LINK_DROPPED.labels(peer=peer, reason=reason).inc()
        if (skipped := self._drop_log.take()) is not None:
            self.log.warning("link_dropped", peer=peer, reason=reason, suppressed=skipped)

    # ------------------------------------------------------------------ liveness

    def _heard_from(self, peer: str, kind: bytes) -> None:
        """The core hears an edge by anything (its pings come every `ping_interval_s`); an
        edge's link is up while its pings are answered (`PONG`): the core's other traffic
        says nothing of the way back, and a connection whose edge -> core half went silent
        must still go down and be dialled again (`_set_up`). The dead-man switch counts
        anything: it asks only whether the core is alive."""
        now = time.monotonic()
        if not self.is_core:
            self.deadman.heard(now)
            if kind != PONG:
                return
        self._heard[peer] = now
        if not self._up.get(peer, True):
            self._set_up(peer, True)

    def _ping(self) -> None:
        """The edge: a ping with its last round trip and its supervisor's operator stops of
        this edge's actors (also sent before each answer to the core, so the core's view is
        never older than an answer)."""
        rtt_us = int(self._rtt_s.get(CORE, 0.0) * 1e6)  # the core shows it too
        stops = self._stops_watch.stops()
        if self._stops_watch.error is not None and (skipped := self._stops_log.take()) is not None:
            self.log.warning(
                "operator_stops_unreadable", error=self._stops_watch.error, suppressed=skipped
            )
        local = self.edge_control.local if self.edge_control is not None else set()
        report = stops_report(None if self._stops_watch.error else stops, local)
        ping = [PING, time.monotonic_ns().to_bytes(8, "big"), rtt_us.to_bytes(8, "big"), report]
        send_nowait(self.tunnel, ping)  # unsent while the core is away: not a drop

    def _on_stops_report(self, peer: str, raw: bytes) -> None:
        """The core: an edge's operator stops (kept while its link is up, for the supervisor:
        `heartbeat_info`, bounded: only its actors); one that cannot be read is dropped and
        counted (whatever its bytes break: the link outlives any edge's report)."""
        try:
            report = read_stops_report(raw, self._edge_actors.get(peer, set()))
        except Exception:  # noqa: BLE001 - an edge's bytes: any failure is `malformed`
            self._dropped(peer, "malformed")
            return
        if report is None:
            self.edge_stops.pop(peer, None)
        else:
            self.edge_stops[peer] = report

    def _tick(self) -> None:
        if not self.is_core:  # the edge pings; the core answers and judges by what it hears
            self._ping()
        now = time.monotonic()
        for peer in self.peers:
            heard = self._heard.get(peer)
            if self._up[peer] and (heard is None or now - heard > self.cfg.link.down_after_s):
                self._set_up(peer, False)
        if not self.is_core and self.deadman.due(now):
            self._core_lost(self.deadman.silent_s(now))

    def _core_lost(self, silent_s: float) -> None:
        """The dead-man switch: every connector of this edge cancels its venue's open orders
        (FIX mass cancel); when the core is back, the OMS reconciles the venues."""
        metrics.LINK_CORE_LOST.inc()
        self.log.error(
            "core_lost",
            silent_s=round(silent_s, 3),
            limit_s=self.deadman.cancel_after_s,
            connectors=len(self.connectors),
        )
        answers: dict[str, str] = {}

        def answered(connector: str, env: Envelope | None) -> None:
            body = None if env is None else env.body
            ok = isinstance(body, MassCancelDone) and body.accepted
            result = "accepted" if ok else "no_answer" if env is None else "refused"
            answers[connector] = result
            metrics.LINK_DEAD_MAN_CANCELS.labels(connector=connector, result=result).inc()
            if len(answers) == len(self.connectors):
                counts = {r: list(answers.values()).count(r) for r in set(answers.values())}
                self.log.warning("core_lost_cancels_done", results=answers, counts=counts)

        for connector, peer in self.connectors.items():
            timeout_s = self.cfg.venue(connector.partition(".")[2]).request_timeout_s
            peer.request(
                MassCancel(reason=f"core_lost: core silent {silent_s:.1f} s"),
                partial(answered, connector),
                timeout_s,
            )

    def _set_up(self, peer: str, up: bool) -> None:
        was_up = self._up[peer]
        self._up[peer] = up
        metrics.LINK_UP.labels(peer=peer).set(int(up))
        if up:
            if not was_up and peer in self._was_up:  # it was up before: back after a loss
                metrics.LINK_RECONNECTS.labels(peer=peer).inc()
            self._was_up.add(peer)
            self.log.info("link_up", peer=peer)
        else:
            heard = self._heard.get(peer)
            silent = None if heard is None else round(time.monotonic() - heard, 3)
            self.log.warning("link_down", peer=peer, silent_s=silent)
            self.edge_stops.pop(peer, None)  # not known until it reports again
            if not self.is_core:  # the silent connection and its queue go (link.tunnel)
                redial(self.tunnel, self.cfg.link.connect)

    def heartbeat_info(self) -> dict[str, Any]:
        now = time.monotonic()
        peers: dict[str, dict[str, Any]] = {}
        for peer in self.peers:
            heard = self._heard.get(peer)
            rtt = self._rtt_s.get(peer)
            peers[peer] = {
                "state": "up" if self._up.get(peer) else "down",
                "rtt_ms": None if rtt is None else round(rtt * 1000, 3),
                "heard_s_ago": None if heard is None else round(now - heard, 3),
            }
            if self.is_core:  # an edge's operator stops (None: not known now)
                stops = self.edge_stops.get(peer)
                peers[peer]["stopped"] = None if stops is None else stops_as_data(stops)
        return {"host_group": self.group, "link": peers, "bridges": len(self.bridges)}

    def on_stop(self) -> None:
        self.bridges.close()
