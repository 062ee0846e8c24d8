"""The data of the supervisor's `status` reply: actors, venues, kill-switch, intake."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from actors.risk import killswitch
from actors.supervisor.restart_policy import LINK
from protocol.link_config import CORE
from protocol.paths import intake_state_path


def system_status(sup: Any) -> dict[str, Any]:
    """What `tradepulse status` shows (and `top` and systemd's STATUS line read), from the
    `actors.supervisor.daemon.Supervisor` `sup`."""
    now = time.monotonic()
    ks = killswitch.load(sup.kill_switch_path).to_message()
    oms = sup.children.get("oms")  # None: an edge (actors.link), which runs no OMS
    oms_info = {} if oms is None else _oms_down(sup.state_path) if oms.pid is None else oms.info
    group = sup.overrides.get("host_group") or CORE
    return {
        "supervisor_pid": os.getpid(),
        "host_group": group,
        "uptime_s": round(now - sup.started_at, 3),
        "metrics_url": sup.metrics_url,
        "actors": [_row(sup, cid, now) for cid in sup.order],
        "venues": sup.operator_stops.venues(_placed(sup, sup.venues.view(), group, oms_info)),
        "links": {peer: p.get("state") for peer, p in _link_peers(sup).items()},
        "kill_switch": ks.model_dump(exclude={"type"}),
        "intake": oms_info.get("intake", "unknown"),
        "intake_pauses": oms_info.get("intake_pauses", {}),  # actors.oms.intake_state
        "queues": oms_info.get("queues", {}),
    }


def _link_peers(sup: Any) -> dict[str, Any]:
    """The link actor's view of each peer host group (actors/link: state, rtt, silence)."""
    link = sup.children.get(LINK)
    return dict(link.info.get("link") or {}) if link is not None else {}


def _placed(
    sup: Any, venues: dict[str, dict[str, Any]], group: str, oms_info: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """This supervisor's venues with their host group; the core also lists each venue placed
    on an edge (whose connector that edge's supervisor runs) with the link to that edge and
    the venue's state as its connector last reported it to the OMS (`venue_state`)."""
    peers = _link_peers(sup)
    reported: dict[str, Any] = oms_info.get("venue_states") or {}
    rows: dict[str, dict[str, Any]] = {}
    for v in sup.cfg.venues:
        if v.name in venues:
            rows[v.name] = {**venues[v.name], "host_group": v.host_group}
        elif group == CORE:  # the core's view of an edge's venue: its link
            peer = peers.get(v.host_group) or {"state": "unknown"}
            rows[v.name] = {
                "state": f"remote (link {peer.get('state')})",
                "detail": f"rtt_ms={peer.get('rtt_ms')} heard_s_ago={peer.get('heard_s_ago')}",
                "host_group": v.host_group,
                "link": peer,
                "venue_state": reported.get(v.name),
            }
    return rows


def _row(sup: Any, actor: str, now: float) -> dict[str, Any]:
    """The child's status, with who stopped it (if an operator did)."""
    row: dict[str, Any] = sup.children[actor].status(now)
    held = sup.operator_stops.held(actor)
    row["stopped_by"] = None if held is None else held.by
    return row


def _oms_down(state_path: Path) -> dict[str, Any]:
    """While the OMS has no process (its last heartbeat's view is gone with it): the
    persisted intake pauses, which its next incarnation loads."""
    from actors.oms.intake_state import load_pauses  # imports prometheus_client

    pauses, _ = load_pauses(intake_state_path(state_path))
    g = pauses.global_pause
    return {
        "intake": "paused (the OMS is not running)" if g else "down (the OMS is not running)",
        "intake_pauses": {
            "global": None if g is None else g.model_dump(),
            "venues": {v: p.model_dump() for v, p in sorted(pauses.venues.items())},
        },
    }
