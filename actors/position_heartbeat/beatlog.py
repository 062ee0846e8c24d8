"""How loud a `heartbeat` line is: info on a change, or every Nth beat; debug otherwise.

A beat per second per venue logged at info was 69% of all log lines and scrolled everything
else away. What an operator reads in the log is a change: a venue's positions, the OMS's
view, the difference or the divergence count differ from that venue's last beat. A quiet
venue still shows it is alive with one info line every `heartbeat.log_every_n` beats
(carrying how many beats went to debug since the last one); every beat stays in the
metrics, the position snapshot stream and the debug log.

    gate = BeatLogGate(every_n=60)
    quiet = gate.observe("simA", state)   # None: log at debug; else info, `quiet` beats since
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from decimal import Decimal
from typing import Any


class BeatLogGate:
    """Per venue: the state of the last beat and the beats since the last info line."""

    def __init__(self, every_n: int) -> None:
        if every_n < 1:
            raise ValueError(f"every_n must be >= 1, got {every_n}")
        self.every_n = every_n
        self._last: dict[str, Hashable] = {}
        self._quiet: dict[str, int] = {}

    def observe(self, venue: str, state: Hashable) -> int | None:
        """Record this beat's `state` for `venue`. None: nothing changed and the Nth beat is
        not reached (log at debug). Otherwise log at info; the value is the number of beats
        logged at debug since the venue's last info line."""
        changed = venue not in self._last or self._last[venue] != state
        self._last[venue] = state
        quiet = self._quiet.get(venue, 0)
        if changed or quiet + 1 >= self.every_n:
            self._quiet[venue] = 0
            return quiet
        self._quiet[venue] = quiet + 1
        return None


def strs(values: Mapping[str, Decimal]) -> dict[str, str]:
    """Quantities as the log shows them."""
    return {k: str(v) for k, v in values.items()}


def frozen(value: Any) -> Any:
    """A logged value as a comparable state (a mapping as sorted items)."""
    return tuple(sorted(value.items())) if isinstance(value, Mapping) else value
