"""The venue's open orders asked at logon, before the OMS asks (`EarlyOpenOrders`).

At a warm start the connector logs on while the OMS still replays its journal; the OMS's
first reconciliation pass then asks for the venue's open orders (AF), and 10,000 reports
take ~0.5 s to build, read and hand over. Asked at logon, the mass status runs during the
replay, and the OMS's OpenOrdersRequest is answered from it, if it is still the answer a
fresh AF would give at the moment of the request: what makes it so is checked, not assumed.

An answer judges orders at a consistent cut (actors/connector/exec_cut.py): the orders the
venue holds after it read every message we sent before the AF, and the executions it sent
before its reports, every one numbered (exec_seq) and applied by the OMS before it reads
the answer. A held answer is served only when nothing can have come between it and the
request (`ViewMarks`, read at the AF's queueing, at the answer's completion and at the
request):

- nothing sent after the AF: the session numbered exactly one message from the AF's
  queueing to the answer's completion (the AF), resent none (a PossDup D answering the
  venue's ResendRequest would reach the venue after the AF), and numbered or resent
  nothing since (a D, F or G the OMS sent meanwhile: the view cannot show it);
- nothing received after the answer: no message read since its last report (next-in
  unchanged: a fill, a cancel, any execution, even a heartbeat) and no execution numbered
  (exec_mark unchanged), so the cut a fresh answer would carry now is the held one and
  the OMS, acking through it, has applied exactly what the view reflects;
- the same connection, and at most `MAX_AGE_S` old.

Otherwise the held answer is dropped and the request asks the venue again, as it did
before this existed (a fill between the early answer and the request costs that AF,
nothing else). A request that comes while the early AF is still being answered waits for
it and is served the same way, or asks again. One early AF per connector incarnation, and
only at the first logon, and only while no OMS has been heard from (a warm start: the OMS
replays its journal): an OMS already running sends its orders at once, which would make
the view stale, and asks for the open orders at once anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

MAX_AGE_S = 5.0  # a held answer older than this is not served


@dataclass(frozen=True, slots=True)
class ViewMarks:
    """What a held answer's validity hangs on (see the module docstring)."""

    connection: int  # the adapter's connection generation
    next_out: int  # the session's next outbound MsgSeqNum
    resends: int  # messages sent again (PossDup) on the venue's request, ever
    next_in: int  # the next inbound MsgSeqNum expected
    exec_mark: int  # executions read so far (the adapter's exec_mark)
    numbering: int = 0  # the store's numbering (an operator's reset or lowered next-out)


class MarkSource(Protocol):
    def view_marks(self) -> ViewMarks: ...


class Logger(Protocol):
    def info(self, event: str, **kw: Any) -> Any: ...


Done = Callable[[Any], None]  # list[VenueOrder] | RequestFailed
Ask = Callable[[Done], None]  # VenueFallbacks.open_orders


class EarlyOpenOrders:
    def __init__(
        self,
        marks: MarkSource,
        ask: Ask,
        log: Logger,
        clock: Callable[[], float] = time.monotonic,
        later: Callable[[float, Callable[[], None]], Any] | None = None,
    ) -> None:
        self._marks = marks
        self._log = log
        self._ask = ask
        self._clock = clock
        self._later = later  # the actor's call_later: a view never asked for is let go
        self._started = False
        self._asked_at: ViewMarks | None = None  # while the early AF is being answered
        self._held: tuple[Any, ViewMarks, float] | None = None  # answer, marks, when
        self._waiting: list[Done] = []
        self.served = 0  # requests answered from the early view (tests, logs)

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        """Ask now (at the first logon); no-op after the first call."""
        if self._started:
            return
        self._started = True
        self._asked_at = self._marks.view_marks()
        self._ask(self._answered)

    def _answered(self, result: Any) -> None:
        asked, self._asked_at = self._asked_at, None
        now = self._marks.view_marks()
        clean = (
            asked is not None
            and isinstance(result, list)
            and now.connection == asked.connection
            and now.numbering == asked.numbering
            and now.next_out == asked.next_out + 1  # the AF, and nothing after it
            and now.resends == asked.resends  # nothing sent again (a PossDup D)
            and now.exec_mark == asked.exec_mark  # no execution read between its reports
        )
        waiting, self._waiting = self._waiting, []
        self._held = (result, now, self._clock()) if clean else None
        if clean and self._later is not None:
            self._later(MAX_AGE_S, self._expire)
        if isinstance(result, list):
            self._log.info("open_orders_at_logon", orders=len(result), held=clean)
        for done in waiting:
            self.open_orders(done)

    def _expire(self) -> None:
        """A held view the OMS never asked for (stopped, crash-looping) is not kept: up
        to 10,000 orders."""
        if self._held is not None and self._clock() - self._held[2] >= MAX_AGE_S:
            self._held = None
            self._log.info("open_orders_at_logon_dropped", reason="too old")

    def open_orders(self, done: Done) -> None:
        """The OMS's OpenOrdersRequest: the held answer if still valid, else the venue's."""
        if self._asked_at is not None:
            self._waiting.append(done)
            return
        held, self._held = self._held, None  # served once at most
        if held is not None:
            result, marks, at = held
            if marks == self._marks.view_marks() and self._clock() - at <= MAX_AGE_S:
                self.served += 1
                self._log.info("open_orders_from_logon", orders=len(result))
                done(result)
                return
            self._log.info("open_orders_at_logon_dropped", reason=_why(marks, self._marks))
        self._ask(done)


def _why(marks: ViewMarks, source: MarkSource) -> str:
    now = source.view_marks()
    changed = [f for f in ViewMarks.__slots__ if getattr(marks, f) != getattr(now, f)]
    return "changed: " + ",".join(changed) if changed else "too old"
