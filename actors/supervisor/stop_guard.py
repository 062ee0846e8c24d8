"""Which `tradepulse stop ACTOR` requests are refused (`actors.supervisor.operator_stop`).

- risk and the OMS are critical: the system cannot trade without them;
- the heartbeat is what sees position divergence and venue outages (and engages the
  kill-switch for them): stopping it while trading would turn both off;
- a connector whose venue has orders open at the venue (as the OMS's last heartbeat counts
  them, `open_at_venue`): their fills would go unseen while it is stopped. Refused unless
  `--force`: cancel them first, or force. While the OMS is not running nobody can tell,
  so that too needs `--force`.

`tradepulse shutdown` stops the whole system.
"""

from __future__ import annotations

from collections.abc import Mapping

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
    counts = oms.info.get("open_at_venue") if oms is not None else None
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
