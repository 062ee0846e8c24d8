"""The supervisor's view of each venue's connection, as `status` shows it.

Connectors report their venue's state; the supervisor marks a venue DOWN when its connector
gives up (over its restart budget, or its state corrupt), and only a running connector's
report (or the connector coming back within service) lifts that.
"""

from __future__ import annotations

from typing import Any

from actors.runtime import metrics
from protocol.messages import VenueConnState

# why its connector gave up (actors.supervisor.child) -> the venue's detail in `status`
# a connector given up on for its corrupt state: `status`'s detail and the OMS's refusal
STATE_CORRUPT_TEXT = "its state is corrupt (state_corrupt in its log; runbook: Corrupt state files)"
_GAVE_UP = {"state_corrupt": f"connector gave up: {STATE_CORRUPT_TEXT}"}


class VenueBoard:
    def __init__(self, venues: list[str]) -> None:
        self._venues: dict[str, dict[str, Any]] = {}
        for venue in venues:
            self._set(venue, VenueConnState.DISCONNECTED)

    def view(self) -> dict[str, dict[str, Any]]:
        """venue -> {state, detail}"""
        return self._venues

    def reported(
        self, venue: str, state: VenueConnState, detail: str, *, reporter_running: bool
    ) -> None:
        """A connector's `VenueStateChanged`. A DOWN venue stays DOWN unless its connector
        runs again and says more than "disconnected"."""
        down = self._venues.get(venue, {}).get("state") == VenueConnState.DOWN.value
        if not down or (reporter_running and state is not VenueConnState.DISCONNECTED):
            self._set(venue, state, detail)

    def down(self, venue: str, why: str = "restart_intensity") -> None:
        """Its connector gave up: over its restart budget, or `state_corrupt` (not retried)."""
        detail = _GAVE_UP.get(why, "restart budget exceeded")
        self._set(venue, VenueConnState.DOWN, detail)
        metrics.VENUE_DOWN.labels(venue=venue).set(1)

    def back_up(self, venue: str) -> None:
        """Its connector is READY again after being over its budget."""
        if self._venues[venue]["state"] == VenueConnState.DOWN.value:
            self._set(venue, VenueConnState.DISCONNECTED)
        metrics.VENUE_DOWN.labels(venue=venue).set(0)

    def _set(self, venue: str, state: VenueConnState, detail: str = "") -> None:
        self._venues[venue] = {"state": state.value, "detail": detail}
