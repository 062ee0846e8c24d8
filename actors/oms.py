"""The OMS actor: order records, durable journal, routing, reconciliation."""

from __future__ import annotations

from actors.base import Actor


class OmsActor(Actor):
    kind = "oms"
