"""The connector actor: hosts one venue adapter in its own process."""

from __future__ import annotations

from actors.base import Actor


class ConnectorActor(Actor):
    kind = "connector"
