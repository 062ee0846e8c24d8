"""The OMS's client-facing ROUTER (`client.sock`), apart from its internal one (`oms.sock`).

Clients (`protocol.client.ExecutionClient`) are not processes of the system, so this socket
has no connection gate; instead it takes only what a client sends (`CLIENT_TYPES`: orders,
cancels, replaces, queries, the snapshot). Anything else here - an execution, a venue
state, a stream event, a kill-switch request - is refused with NOT_ALLOWED, counted
(`tradepulse_messages_refused_total{actor="oms",type}`) and logged rate-limited
(`message_refused`); a malformed frame is counted and dropped as on any socket. What is
taken is served by the OMS's `on_request`, as on the internal socket. It is bound without
`ROUTER_HANDOVER`: a connection with a routing id already connected gets nothing (libzmq
ignores it), so no one takes another client's replies by reusing its routing id.
"""

from __future__ import annotations

from typing import Protocol

from actors.runtime.peer import Replier
from actors.runtime.turn_budget import TurnBudget
from protocol.codec import Envelope, Sender
from protocol.messages import Message
from protocol.sockets import Context, bind_router, send_nowait

CLIENT_TYPES = frozenset(
    {
        "submit_order",
        "cancel_order",
        "replace_order",
        "get_order",
        "list_orders",
        "get_positions",
        "snapshot_request",
    }
)


class ClientHost(Protocol):
    """What the client endpoint needs of the OMS."""

    ctx: Context
    sender: Sender

    def decode_or_count(self, frames: list[bytes], source: str) -> Envelope | None: ...

    def serve(self, env: Envelope, reply: Replier) -> None: ...

    def refuse(self, env: Envelope, reply: Replier, reason: str) -> None: ...

    def send_dropped(self, kind: str, reason: str, peer: str, type_: str) -> None: ...


class ClientEndpoint:
    def __init__(self, host: ClientHost, endpoint: str) -> None:
        self._host = host
        # no handover: a stranger reusing a client's routing id must not take its replies
        self.sock = bind_router(host.ctx, endpoint, handover=False)
        self._budget = TurnBudget()  # messages read a turn (actors.runtime.turn_budget)

    def send_router(self, identity: list[bytes], body: Message, corr_id: str = "") -> bool:
        """A reply to a client, without blocking (`ReplyHost`)."""
        reason = send_nowait(self.sock, identity + self._host.sender.encode(body, corr_id))
        if reason is not None:
            peer = identity[0].decode(errors="replace")
            self._host.send_dropped("reply", reason, peer, body.type)
        return reason is None

    def on_readable(self) -> None:
        for frames in self._budget.read(self.sock):  # a bounded slice a turn: a flooding
            env = self._host.decode_or_count(frames[1:], "client")  # client waits its turn
            if env is None:
                continue
            reply = Replier(self, frames[:1], env.msg_id)
            if env.type in CLIENT_TYPES:
                self._host.serve(env, reply)
            else:
                self._host.refuse(env, reply, f"{env.type} is not a client request")
