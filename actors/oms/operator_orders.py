"""The OMS's side of two operator commands about orders: `tradepulse reconcile --venue V
[--dry-run]` (one venue's plan, printed or applied) and `tradepulse cancel ORDER_ID` (one
order cancelled as a client's CancelOrder is: `Intake.cancel_or_replace`, its answer turned
into the operator's `ControlReply`).

A cancel toward a venue that is not connected and reconciled (its connector stopped by an
operator, given up on, or logged out) is queued at the OMS, as a client's is: taken (exit 0,
PENDING_CANCEL), the answer saying it is queued, why, and what sends it
(actors/oms/queued_request.py; `--json`: `queued`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from actors.oms.intake import Intake
from actors.oms.plan import Plan
from actors.oms.queued_request import QUEUED, NotedReply
from actors.oms.venue_link import VenueLink
from actors.runtime.peer import Replier
from protocol import commands
from protocol.messages import ControlReply, Message, OrderAck, RequestRejected

Respond = Callable[[ControlReply], None]


def reconcile(
    venues: Mapping[str, VenueLink], command: commands.Reconcile, respond: Respond
) -> None:
    link = venues.get(command.venue)
    if link is None:
        respond(ControlReply(status="error", reason=f"unknown venue {command.venue!r}"))
        return
    dry = command.dry_run

    def done(plan: Plan) -> None:
        if plan.failed:  # not "0 action(s)": nothing was compared with the venue's view
            reason = f"reconcile of venue {plan.venue} failed: {plan.failed}"
            respond(ControlReply(status="error", reason=reason))
            return
        data = {"summary": plan.summary(), "actions": plan.to_dicts(), "dry_run": dry}
        respond(ControlReply(status="ok", reason=plan.format_dry_run(), data=data))

    link.start_reconcile(done, dry_run=dry)


def cancel(
    intake: Intake, command: commands.Cancel, by: str | None, log: Any, respond: Respond
) -> None:
    """Logged `operator_cancel` (who, why) before it is taken; the reply says what the
    order is now (PENDING_CANCEL until the venue confirms), queued while its venue cannot
    be sent to, or why it was refused."""
    coid = command.client_order_id
    log.warning("operator_cancel", client_order_id=coid, by=by, reason=command.reason)

    noted = NotedReply(_ToControl(respond, coid), intake.links, intake.host.gate)
    intake.cancel_or_replace(coid, noted, None)


class _ToControl(Replier):
    """A client's answer (`OrderAck` / `RequestRejected`) as the operator's ControlReply.
    Nothing goes on a socket: there is no router identity (`identity` is not used)."""

    __slots__ = ("_respond", "_coid")

    def __init__(self, respond: Respond, coid: str) -> None:  # no router: no super().__init__
        self._respond, self._coid = respond, coid

    def __call__(self, body: Message) -> None:
        if isinstance(body, RequestRejected):
            reason = f"{self._coid} not cancelled: {body.reason} ({body.code.value})"
            self._respond(ControlReply(status="error", reason=reason))
            return
        if not isinstance(body, OrderAck):
            self._respond(ControlReply(status="error", reason=f"unexpected answer {body.type}"))
            return
        view = body.order
        done = "already" if body.duplicate else "cancel requested:"
        text = f"{self._coid} on {view.venue}: {done} {view.status.value}"
        data: dict[str, object] = {"order": view.model_dump(mode="json")}
        if view.reason.startswith(QUEUED):  # `NotedReply`: queued at the OMS, why
            text, data["queued"] = f"{text}; {view.reason}", view.reason
        self._respond(ControlReply(status="ok", reason=text, data=data))
