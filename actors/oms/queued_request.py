"""The answer to a cancel or replace the OMS takes but cannot send now: its venue is not
connected and reconciled (its connector stopped by an operator, given up on by the
supervisor, logged out), so the request waits in the venue link's queue and goes out after
the next logon's reconciliation pass (actors/oms/venue_stop.py), once.

Queued, not refused, because that is what the OMS does with every request to a venue it
cannot reach: the desk's intent is kept and carried out as soon as the venue can be told,
and a client's cancel and an operator's `tradepulse cancel` behave alike. But the answer
says so: the order view in the OrderAck carries, as its `reason`, that the request is
queued at the OMS, not sent, why, and what sends it (`queued_note`); the operator's answer
shows the same line (actors/oms/operator_orders.py). Found in review: a cancel to a stopped
connector's venue was answered "cancel requested" alone while nothing could reach the
venue. The note is the answer's only: the order's own reason (`get_order`, `orders`) is
unchanged. No wire change: an older client reads it as any reason. A venue logged on but
not reconciled yet (its pass under way after a logon, or failing) queues the request too:
its note names the pass it waits for, not a logon (found in review: it said "simB is
CONNECTED; sent once its connector is logged on").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from actors.oms.link_sent import REQUEST_PENDING
from actors.runtime.operator_stops import OperatorStop
from actors.runtime.peer import Replier
from protocol.messages import Message, OrderAck, OrderView, VenueConnState


class QueuedLink(Protocol):
    """What the note asks of a `VenueLink`."""

    @property
    def ready(self) -> bool: ...

    @property
    def state(self) -> VenueConnState: ...

    @property
    def status_text(self) -> str: ...

    def is_waiting(self, client_order_id: str) -> bool: ...

    def is_in_flight(self, client_order_id: str) -> bool: ...


class Stops(Protocol):
    """What the note asks of `actors.oms.intake_state.IntakeGate`."""

    def stopped(self) -> dict[str, OperatorStop]: ...


QUEUED = "queued at the OMS, not sent: "


def queued_note(
    venue: str, state: str, stop: OperatorStop | None, *, logged_on: bool = False
) -> str:
    """Why a request to `venue` (its link's `state`, its connector's `stop` if any;
    `logged_on`: CONNECTED, its pass not done) waits at the OMS, and what sends it."""
    if stop is None and logged_on:
        why = f"{venue} is logged on, its reconciliation pass not done yet ({state})"
        return f"{QUEUED}{why}; sent once {venue} is reconciled"
    if stop is not None and stop.gave_up is not None:
        why, then = f"{stop.actor} gave up ({stop.gave_up})", f"`tradepulse restart {stop.actor}`"
    elif stop is not None:
        why, then = f"{stop.actor} is {stop.describe()}", f"`tradepulse start {stop.actor}`"
    else:
        why, then = f"{venue} is {state}", "its connector is logged on"
    return f"{QUEUED}{why}; sent once {then} and {venue} is reconciled"


def note(links: Mapping[str, QueuedLink], gate: Stops, view: OrderView) -> str | None:
    """The note for the order's cancel or replace if it waits in its link's queue (not
    handed to the connector) because the venue is not ready; None otherwise."""
    link = links.get(view.venue)
    coid = view.client_order_id
    if view.status not in REQUEST_PENDING or link is None or link.ready:
        return None
    if not link.is_waiting(coid) or link.is_in_flight(coid):
        return None
    stop, logged_on = gate.stopped().get(view.venue), link.state is VenueConnState.CONNECTED
    return queued_note(view.venue, link.status_text, stop, logged_on=logged_on)


class NotedReply(Replier):
    """A cancel's or replace's answer (`reply`), its OrderAck's view carrying the note."""

    __slots__ = ("_reply", "_links", "_gate")

    def __init__(  # no router of its own: no super().__init__
        self, reply: Replier, links: Mapping[str, QueuedLink], gate: Stops
    ) -> None:
        self._reply, self._links, self._gate = reply, links, gate

    @property
    def identity(self) -> bytes:
        return self._reply.identity

    def __call__(self, body: Message) -> None:
        why = note(self._links, self._gate, body.order) if isinstance(body, OrderAck) else None
        if isinstance(body, OrderAck) and why is not None:
            body = body.model_copy(update={"order": body.order.model_copy(update={"reason": why})})
        self._reply(body)
