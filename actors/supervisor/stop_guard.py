"""Which `tradepulse stop ACTOR` requests are refused (`actors.supervisor.operator_stop`).

- risk and the OMS are critical: the system cannot trade without them;
- the heartbeat is what sees position divergence and venue outages (and engages the
  kill-switch for them): stopping it while trading would turn both off;
- a connector whose venue has orders open at the venue (as the OMS's last heartbeat counts
  them, `open_at_venue`): their fills would go unseen while it is stopped. Refused unless
  `--force`: cancel them first, or force. While the OMS is not running nobody can tell,
  so that too needs `--force`. An edge runs no OMS: a stop of its connector given to the
  edge needs `--force`; given to the core, the core counts them and has the edge stop it.

`tradepulse shutdown` stops the whole system.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the CLI loads the command table before prometheus_client may be imported
    from actors.supervisor.child import Child

_SHUTDOWN = "`tradepulse shutdown` stops the whole system"


def stop_refusal(child: Child, children: Mapping[str, Child], force: bool) -> str | None:
    """Why stopping `child` is refused (None: it may be stopped)."""
    actor = child.id
    if child.spec.critical:
        return f"{actor} is critical: the system cannot trade without it; {_SHUTDOWN}"
    if child.spec.kind == "heartbeat":
        return (
            f"{actor} cannot be stopped: it detects position divergence and venue outages "
            f"(the kill-switch) while trading; {_SHUTDOWN}"
        )
    venue = child.spec.venue if child.spec.kind == "connector" else None
    if venue is None or force:
        return None
    oms = children.get("oms")
    if oms is None:  # an edge: the core's OMS counts them
        return (
            f"{actor} not stopped: orders open at {venue} are counted by the core's OMS; "
            f"stop it from the core (which counts them first), or --force"
        )
    return open_orders_refusal(actor, venue, oms.info, force=False)


def open_orders_refusal(
    actor: str, venue: str, oms_info: Mapping[str, Any], *, force: bool
) -> str | None:
    """Why stopping connector `actor` is refused for the orders open at `venue`, as the
    OMS's last heartbeat (`oms_info`) counts them (None: none, or `force`). The core asks
    it too before it has an edge's supervisor stop an edge's connector."""
    if force:
        return None
    counts = oms_info.get("open_at_venue")
    if not isinstance(counts, dict):
        return (
            f"{actor} not stopped: the OMS is not running (or has not reported yet), so "
            f"orders open at {venue} cannot be counted (their fills would go unseen while it "
            f"is stopped); --force stops it"
        )
    n = int(counts.get(venue, 0))
    if n:
        return (
            f"{actor} not stopped: {n} order(s) open at {venue} (their fills would go unseen "
            f"while it is stopped); cancel them first, or --force"
        )
    return None
