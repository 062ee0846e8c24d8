"""The heartbeat actor: position heartbeats across venues."""

from __future__ import annotations

from actors.base import Actor


class HeartbeatActor(Actor):
    kind = "heartbeat"
