"""The edge's dead-man switch (pure): the core silent for longer than
`[link.edge] core_loss_cancel_s` -> the edge's connectors cancel their venue's open orders.

It fires once per loss, counted from the last time the core was heard (or from the link's
start, when it never was: an edge restarted while the core is away also cancels), and is
armed again when the core is heard again.
"""

from __future__ import annotations


class DeadMan:
    def __init__(self, cancel_after_s: float, now: float) -> None:
        self.cancel_after_s = cancel_after_s
        self._since = now  # the last time the core was heard (or the start)
        self._fired = False

    def heard(self, now: float) -> None:
        self._since = now
        self._fired = False

    def silent_s(self, now: float) -> float:
        return max(now - self._since, 0.0)

    def due(self, now: float) -> bool:
        """True once, when the silence passes the limit; then False until heard again."""
        if self._fired or self.silent_s(now) <= self.cancel_after_s:
            return False
        self._fired = True
        return True
