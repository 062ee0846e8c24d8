"""Execution reports on their way out, through the faults that change how they go: pure,
with the clock, the timer and the send function passed in.

    push(report) -> swallow? (fills only) -> delay (FIFO, `delay_exec_ms`) -> reorder
                 -> send (twice with `duplicate_exec`)

- swallow: a fill counted by `swallow_fills` is dropped here; the engine has applied it.
- delay: every report waits `delay_exec_ms`; order is kept, so once one waits the later
  ones queue behind it even if the delay was lifted meanwhile.
- reorder: a report is held until the next one comes, which goes out first; a held
  report nobody overtakes goes out after `hold_s`.
- duplicate: the very same fields twice (same ExecID), each a new MsgSeqNum.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from actors.venuesim.faults import Faults
from actors.venuesim.fixmap import Out

REORDER_HOLD_S = 0.25


class ExecOutbox:
    def __init__(
        self,
        faults: Faults,
        send: Callable[[Out], None],
        schedule: Callable[[float, Callable[[], None]], None],
        clock: Callable[[], float],
        log: Any,
        hold_s: float = REORDER_HOLD_S,
    ) -> None:
        self._faults = faults
        self._send = send
        self._schedule = schedule
        self._clock = clock
        self._log = log
        self._hold_s = hold_s
        self._delayed: deque[tuple[float, Out]] = deque()
        self._held: Out | None = None
        self._held_token = 0

    @property
    def pending(self) -> int:
        """Reports held back (delayed or waiting to be overtaken)."""
        return len(self._delayed) + (self._held is not None)

    def push(self, out: Out) -> None:
        if self._faults.take_swallow(out.exec_type):
            event = "sim_fill_swallowed" if out.exec_type == "F" else "sim_cancel_swallowed"
            self._log.info(event, exec_id=out.exec_id)
            return
        faults = self._faults
        delay_s = faults.delay_exec_ms / 1000.0
        if delay_s > 0 or self._delayed:
            self._delayed.append((self._clock() + delay_s, out))
            self._schedule(delay_s, self._release_due)
        elif self._held is None and not (faults.reorder_exec or faults.duplicate_exec):
            self._send(out)  # what `_reorder` would do, one call each per report saved
        else:
            self._reorder(out)

    def release_all(self) -> None:
        """Send everything held back now, in order (the faults were cleared)."""
        while self._delayed:
            self._reorder(self._delayed.popleft()[1])
        self._release_held(self._held_token)

    def _release_due(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            self._reorder(self._delayed.popleft()[1])

    def _reorder(self, out: Out) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._log.info("sim_exec_reordered", first=out.exec_id, second=held.exec_id)
            self._emit(out)
            self._emit(held)
        elif self._faults.reorder_exec:
            self._held = out
            self._held_token += 1
            token = self._held_token
            self._schedule(self._hold_s, lambda: self._release_held(token))
        else:
            self._emit(out)

    def _release_held(self, token: int) -> None:
        if self._held is not None and token == self._held_token:
            held, self._held = self._held, None
            self._emit(held)

    def _emit(self, out: Out) -> None:
        self._send(out)
        if self._faults.duplicate_exec:
            self._log.info("sim_exec_duplicated", exec_id=out.exec_id)
            self._send(out)
