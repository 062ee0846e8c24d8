"""What the venue sends, in order, a bounded number of messages per loop turn.

An answer of one message per order (a mass status, a mass cancel: `fixmap.Stream`) would
block the loop for as long as it takes to build and sequence every part (0.6 s for 6,000
orders, measured), and the supervisor kills a loop silent that long as hung. So such an
answer is pumped: at most `PARTS_PER_TURN` parts per loop turn, the liveness beat and
the timers running between turns. Whatever the venue sends while an answer is being
pumped (execution reports, other answers) queues behind it, so the FIX session carries
every message in the order it was produced, as if the answer had gone out at once.

    pump.stream(parts, deliver, answers_only)   # a long answer: deliver(part) per part
    pump.put(out, deliver)                      # anything sent while the pump is busy
    pump.run()                                  # once per loop turn: True while more wait
    pump.drop_answers()                         # the session went: answers nobody can take

A crash mid-answer loses the rest of it: the requester times out and asks again.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterator

from actors.venuesim.fixmap import Out

PARTS_PER_TURN = 256

Deliver = Callable[[Out], None]


class AnswerPump:
    def __init__(self, per_turn: int = PARTS_PER_TURN) -> None:
        self.per_turn = per_turn
        self.delivering = False  # inside run(): what a delivery sends goes out at once
        self._items: deque[tuple[Iterator[Out], Deliver, bool]] = deque()

    @property
    def busy(self) -> bool:
        """Something waits: a message sent now must queue behind it (`put`)."""
        return bool(self._items)

    def __len__(self) -> int:
        """Answers and messages waiting (an answer counts once)."""
        return len(self._items)

    def stream(self, parts: Iterator[Out], deliver: Deliver, *, answers_only: bool) -> None:
        self._items.append((parts, deliver, answers_only))

    def put(self, out: Out, deliver: Deliver) -> None:
        self._items.append((iter((out,)), deliver, False))

    def run(self) -> bool:
        """Deliver up to `per_turn` parts, oldest first; True while more wait."""
        budget = self.per_turn
        self.delivering = True
        try:
            while self._items and budget > 0:
                parts, deliver, _ = self._items[0]
                taken = 0
                for out in itertools.islice(parts, budget):
                    taken += 1
                    deliver(out)
                if taken < budget:  # this one is done
                    self._items.popleft()
                budget -= taken
        finally:
            self.delivering = False
        return bool(self._items)

    def drop_answers(self) -> int:
        """Forget the answers still being pumped that hold no execution report (the
        session that asked for them is gone); the rest goes on. How many were dropped."""
        kept: deque[tuple[Iterator[Out], Deliver, bool]] = deque()
        dropped = 0
        for item in self._items:
            if item[2]:
                dropped += 1
                close = getattr(item[0], "close", None)
                if close is not None:
                    close()
            else:
                kept.append(item)
        self._items = kept
        return dropped
