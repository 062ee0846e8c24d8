"""The data of the supervisor's `status` reply: actors, venues, kill-switch, intake."""

from __future__ import annotations

import os
import time
from typing import Any

from actors.risk import killswitch


def system_status(sup: Any) -> dict[str, Any]:
    """What `tradepulse status` shows (and `top` and systemd's STATUS line read), from the
    `actors.supervisor.daemon.Supervisor` `sup`."""
    now = time.monotonic()
    ks = killswitch.load(sup.kill_switch_path).to_message()
    oms_info = sup.children["oms"].info
    return {
        "supervisor_pid": os.getpid(),
        "uptime_s": round(now - sup.started_at, 3),
        "metrics_url": sup.metrics_url,
        "actors": [sup.children[cid].status(now) for cid in sup.order],
        "venues": sup.operator_stops.venues(sup.venues.view()),
        "kill_switch": ks.model_dump(exclude={"type"}),
        "intake": oms_info.get("intake", "unknown"),
        "intake_pauses": oms_info.get("intake_pauses", {}),  # actors.oms.intake_state
        "queues": oms_info.get("queues", {}),
    }
