"""Who may send what to an actor's internal ROUTER: the one allowed-sender table.

Only the system's own processes connect to an internal ROUTER (`actors.runtime.zap`), so a
connection's routing identity (`<actor id>:<epoch>`, set by its `Peer`) names an actor of
the system. Per message, `refusal` checks that the envelope's sender is that actor, its
kind against `ALLOWED` (a type missing from it - a read such as `get_positions` - may come
from any of them) and that what the message claims agrees with who sends it: a connector
reports executions and session state for its own venue only, an engagement's kill-switch
`source` is the sender's kind, and only risk publishes a `kill_switch` stream event. A dict
lookup and a string compare.

Client requests (`submit_order`, `cancel_order`, `replace_order`) come in on the OMS's
client endpoint (`actors.oms.client_endpoint`), never on an internal one.
"""

from __future__ import annotations

from collections.abc import Mapping

from protocol.messages import (
    ExecReport,
    ExecReports,
    KillSwitchCommand,
    Message,
    StreamEvent,
    VenueStateChanged,
)

_OMS = frozenset({"oms"})
_NOBODY: frozenset[str] = frozenset()

# message type -> the actor kinds that may send it to an internal ROUTER
ALLOWED: Mapping[str, frozenset[str]] = {
    # to a connector: orders and order queries from the OMS, the mass cancel from risk
    "place_order": _OMS,
    "cancel_on_venue": _OMS,
    "replace_on_venue": _OMS,
    "open_orders_request": _OMS,
    "order_status_query": _OMS,
    # (and from an edge's link: its dead-man switch, actors/link/deadman.py)
    "mass_cancel": frozenset({"risk", "link"}),
    # to the OMS: executions and session state from connectors, events from risk/heartbeat
    "exec_report": frozenset({"connector"}),
    "exec_reports": frozenset({"connector"}),  # each report's own venue: checked by the OMS
    "venue_state": frozenset({"connector"}),
    "stream_event": frozenset({"risk", "heartbeat"}),
    # to risk: checks from the OMS, engagements from the OMS and the position heartbeat
    "risk_check": _OMS,
    "risk_checks": _OMS,
    "kill_switch_command": frozenset({"oms", "heartbeat"}),
    # the client's requests: only on the OMS's client endpoint
    "submit_order": _NOBODY,
    "cancel_order": _NOBODY,
    "replace_order": _NOBODY,
}


def sender_of(identity: bytes) -> tuple[str, str]:
    """(actor id, kind) of a routing identity: b"connector.simA:17" -> ("connector.simA",
    "connector")."""
    actor_id = identity.split(b":", 1)[0].decode(errors="replace")
    return actor_id, actor_id.split(".", 1)[0]


def refusal(identity: bytes, body: Message, sender: str | None = None) -> str | None:
    """None: `body` may come from the connection with routing `identity`; otherwise why not.
    `sender`: the envelope's claimed sender, which must be the connection's actor (what
    the receiver records as the author, e.g. an engagement's default source, is it)."""
    actor_id, kind = sender_of(identity)
    if sender is not None and sender != actor_id:
        return f"{actor_id[:64]!r} sends as {sender[:64]!r}"
    allowed = ALLOWED.get(body.type)
    if allowed is None:
        return None
    if kind not in allowed:
        return f"{body.type} is not taken from {actor_id[:64]!r}"
    if (
        isinstance(body, ExecReport | ExecReports | VenueStateChanged)
        and actor_id != f"connector.{body.venue}"
    ):
        return f"{actor_id[:64]!r} reports for venue {body.venue[:64]!r}"
    if (
        isinstance(body, KillSwitchCommand)
        and body.action == "engage"
        and body.source not in ("", kind)
    ):
        return f"{actor_id[:64]!r} engages as {body.source[:64]!r}"
    if isinstance(body, StreamEvent) and body.event == "kill_switch" and kind != "risk":
        return f"{actor_id[:64]!r} publishes a kill_switch event"
    return None
