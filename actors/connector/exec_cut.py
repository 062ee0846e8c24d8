"""The connector's execution numbering and the cut it stamps on its answers (`ExecCut`).

Every execution the connector hands on gets `exec_seq`: 1, 2, ... in venue order, per
connector incarnation (the reloaded outbox first). The FIX session delivers in order, so
when a query answer (open orders, status, positions) completes, the executions the venue
sent before it are exactly those numbered so far (`VenueAdapter.exec_mark` counts the ones
of the batch being read). The answer is held until the OMS has acknowledged every one of
them (it acks after applying and committing), so the OMS that gets the answer has applied
exactly the executions up to the cut and any later ones carry a greater number. A wait is
bounded (`WAIT_S`, or the longer `GetPositions.wait_s` a cold start asks again with:
actors/oms/opening_ask.py): the answer then leaves with `oms_epoch=None` (no consistent cut).

An OMS incarnation that started after this connector did can hold in its journal
executions numbered up to the last one forwarded when it first showed up (applied by its
predecessor), which it cannot tell apart: a cut below that number names no OMS epoch.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from protocol.messages import ExecCut, ExecReport
from protocol.wire_out import updated

WAIT_S = 0.1  # longest an answer waits for the OMS's acks of the executions before it


@dataclass
class _Waiter:
    cut: ExecCut
    done: Callable[[ExecCut], None]
    deadline_s: float


class ExecSequencer:
    def __init__(
        self,
        epoch: int,
        pending: OrderedDict[str, ExecReport],
        call_later: Callable[[float, Callable[[], None]], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`pending`: the outbox's unacked executions (venue order), renumbered here;
        `call_later`: the actor loop's timer (a wait's deadline; no timer while none waits)."""
        self.epoch = epoch
        self._call_later = call_later
        self._clock = clock
        self.last = 0  # the last number given
        self._pending = pending
        for exec_id, report in list(pending.items()):
            pending[exec_id] = self._numbered(report)
        self.base = self.last  # numbers given before the adapter delivered any
        self._oms_epoch: int | None = None
        self._oms_floor = 0  # a cut below this names no OMS epoch (module docstring)
        self._waiters: list[_Waiter] = []

    def _numbered(self, report: ExecReport) -> ExecReport:
        self.last += 1
        return updated(report, exec_seq=self.last)  # model_copy, without its generic copy

    def number(self, reports: Iterable[ExecReport]) -> list[ExecReport]:
        return [self._numbered(r) for r in reports]

    def oms_seen(self, epoch: int) -> None:
        if epoch != self._oms_epoch:
            if self._oms_epoch is not None:
                self._oms_floor = self.last
            self._oms_epoch = epoch

    def acked_through(self, seq: int) -> bool:
        """Every execution numbered <= seq was acknowledged by the OMS."""
        first = next(iter(self._pending.values()), None)
        return first is None or first.exec_seq > seq

    def when_consistent(
        self,
        since: int,
        mark: int,
        now_s: float,
        done: Callable[[ExecCut], None],
        wait_s: float | None = None,
        vouched: bool = True,
    ) -> None:
        """Call `done` with the cut at adapter mark `mark` once the OMS acknowledged every
        execution through it (at once if it has), or with `oms_epoch=None` after `wait_s`
        (the request's `GetPositions.wait_s`: a cold start asking again; None: `WAIT_S`).
        Not `vouched` (the adapter cannot show its answer consistent with the executions
        through `mark`: `adapter.NoConsistentCut`): at once with `oms_epoch=None`, so no
        one compares at it."""
        cut = ExecCut(connector_epoch=self.epoch, exec_seq=self.base + mark, since=since)
        if not vouched:
            done(cut)
        elif self._ready(cut):
            done(self._stamped(cut))
        else:
            wait_s = WAIT_S if wait_s is None else max(WAIT_S, wait_s)
            deadline_s = now_s + wait_s
            self._waiters.append(_Waiter(cut, done, deadline_s))
            if self._call_later is not None:  # a timer firing early still ends this wait
                self._call_later(wait_s, lambda: self.poll(max(self._clock(), deadline_s)))

    def poll(self, now_s: float) -> None:
        """After acks, and on a timer: answer what waited."""
        if not self._waiters:
            return
        waiting, self._waiters = self._waiters, []
        for w in waiting:
            if self._ready(w.cut):
                w.done(self._stamped(w.cut))
            elif now_s >= w.deadline_s:
                w.done(w.cut)
            else:
                self._waiters.append(w)

    def mark_now(self, mark: int) -> int:
        return self.base + mark

    def _ready(self, cut: ExecCut) -> bool:
        """Every execution up to the cut was numbered (an answer can complete while the
        executions read just before it wait for `number`, in the same batch) and acked."""
        return self.last >= cut.exec_seq and self.acked_through(cut.exec_seq)

    def _stamped(self, cut: ExecCut) -> ExecCut:
        if self._oms_epoch is None or cut.exec_seq < self._oms_floor:
            return cut
        return cut.model_copy(update={"oms_epoch": self._oms_epoch})
