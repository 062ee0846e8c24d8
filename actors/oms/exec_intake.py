"""Executions from a connector: a lone `ExecReport`, or an `ExecReports` (the executions of
one connector loop turn in one message, in venue order).

Each execution is applied once per exec id (`OrderBook.apply_exec`), journalled, and
acknowledged (`ExecAck`) only after the turn's commit (in the OMS `ACK_DELAY_S` after it:
`DeferredAcks`): the connector keeps it in its outbox and sends it again until then. A
batch is the same executions applied one after another in its order, answered by one
`ExecAck` naming those applied. Each item of a batch is decoded and validated as a lone
`ExecReport` would be (`protocol.codec.decode_item`) and stands alone: a malformed item is
counted and logged `bad_message`, one for another venue than its connector's is refused
(`message_refused`), one that raises in us is logged `request_failed`; none of them is
acknowledged (the connector sends it again, as it does a lone one refused) and the others
of the batch still apply. An execution whose apply raises in us (not a transient error:
`actors.oms.exec_quarantine`) is quarantined, journalled and acknowledged: sent again
forever, it would hold every execution cut of its venue.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

from actors.oms.exec_cut import ExecLog
from actors.oms.exec_quarantine import ExecApplier
from actors.oms.executions import says_finished
from actors.oms.order_book import OrderBook
from actors.oms.orders import Outcome
from actors.oms.resubmit_unsent import UnsentLink, taken_back
from actors.runtime.peer import Replier
from actors.runtime.ratelog import LogBudget
from protocol.codec import decode_item
from protocol.exceptions import ProtocolError
from protocol.messages import (
    ErrorCode,
    ExecAck,
    ExecReport,
    ExecReports,
    OrderStatus,
)


class _Reconcilable(UnsentLink, Protocol):
    def start_reconcile(self) -> None: ...


class ExecHost(Protocol):
    """What the executions need of the OMS (`actors.oms.actor.OmsActor`)."""

    @property
    def book(self) -> OrderBook: ...

    @property
    def exec_log(self) -> ExecLog: ...

    @property
    def exec_applier(self) -> ExecApplier: ...

    @property
    def venues(self) -> Mapping[str, _Reconcilable]: ...

    def record(self, outcome: Outcome, venue: str = "") -> Outcome: ...

    def after_commit(self, fn: Callable[[], None], *, first: bool = False) -> None: ...

    def durable_crash_point(self, name: str) -> None: ...

    def count_bad(self, source: str, error: str) -> None: ...

    def count_refused(self, type_: str, reason: str) -> None: ...

    def count_failed(self, type_: str) -> None: ...


# An ExecAck leaves this long after its commit (the acks of the interval together): the
# connector only trims its outbox with it, and sent at the commit it woke the connector at
# the instant the turn's events go to the clients (on 2 cores, ~70 us more to the event).
ACK_DELAY_S = 0.002


class DeferredAcks:
    """`ack(fn)`: run `fn` (an ExecAck reply) after the turn's commit and `ACK_DELAY_S`,
    with every other ack due by then; `flush()` runs what is waiting (the OMS's stop)."""

    def __init__(self, after_commit: Callable[[Callable[[], None]], None],
                 call_later: Callable[[float, Callable[[], None]], None]) -> None:  # fmt: skip
        self._after_commit = after_commit
        self._call_later = call_later
        self._due: list[Callable[[], None]] = []

    def __call__(self, fn: Callable[[], None]) -> None:
        self._after_commit(partial(self._queue, fn))

    def _queue(self, fn: Callable[[], None]) -> None:
        self._due.append(fn)
        if len(self._due) == 1:
            self._call_later(ACK_DELAY_S, self.flush)

    def flush(self) -> None:
        due, self._due = self._due, []
        for fn in due:
            fn()


class ExecIntake:
    def __init__(
        self, host: ExecHost, log: Any, ack: Callable[[Callable[[], None]], None] | None = None
    ) -> None:
        self._host = host
        self._log = log
        self._ack = ack if ack is not None else host.after_commit  # DeferredAcks in the OMS
        self._refused_log = LogBudget()  # `exec_refused`: a venue sending them as fast as it can

    def on_report(self, report: ExecReport, reply: Replier, connector_epoch: int) -> None:
        """A lone execution: applied (or quarantined), acknowledged after the commit."""
        self._apply(report, connector_epoch)
        self._ack(partial(reply, ExecAck(venue=report.venue, exec_ids=[report.exec_id])))

    def on_batch(self, batch: ExecReports, reply: Replier, connector_epoch: int) -> None:
        """Each item as a lone execution, in order; one `ExecAck` for those applied (or
        quarantined)."""
        host, applied = self._host, []
        for item in batch.reports:
            try:
                report = decode_item("exec_report", item)
            except ProtocolError as exc:
                host.count_bad("exec_reports", str(exc))
                continue
            if not isinstance(report, ExecReport):  # decode_item gives the type asked for
                continue
            if report.venue != batch.venue:
                why = f"{batch.venue[:64]!r} reports for venue {report.venue[:64]!r}"
                host.count_refused("exec_report", why)
                continue
            try:
                self._apply(report, connector_epoch)
            except Exception:  # noqa: BLE001 - one execution must not fail its siblings
                host.count_failed("exec_report")
                continue
            applied.append(report.exec_id)
            if len(applied) == 1 and len(batch.reports) > 1:
                host.durable_crash_point("mid_exec_batch")  # tests: kill -9 inside a batch
        if applied:
            self._ack(partial(reply, ExecAck(venue=batch.venue, exec_ids=applied)))
        else:
            reply.reject(ErrorCode.BAD_REQUEST, "no execution of the batch could be applied")

    def _apply(self, report: ExecReport, connector_epoch: int) -> None:
        host = self._host
        outcome = host.exec_applier.apply(report, time.time_ns(), connector_epoch)  # journalled
        if outcome is None:  # quarantined (actors/oms/exec_quarantine.py): acked, not applied
            return
        host.exec_log.note_outcome(report, connector_epoch, outcome)
        if outcome.applied and outcome.order is not None and outcome.fill_qty:
            if outcome.order.status is OrderStatus.PARTIALLY_FILLED:
                host.durable_crash_point("between_partial_fills")
        if outcome.kind == "refused" and (skipped := self._refused_log.take()) is not None:
            ids = {"exec_id": report.exec_id, "cl_ord_id": report.cl_ord_id}
            self._log.warning("exec_refused", **ids, reason=outcome.reason, venue=report.venue,
                              suppressed=skipped)  # fmt: skip
        order = outcome.order
        if order is not None and report.kind == "unsent" and outcome.applied:
            taken_back(host.venues[order.venue], order, report.text or "connector: not sent")
        if order is not None and (
            order.status is OrderStatus.UNKNOWN or says_finished(report, order)
        ):
            # e.g. a duplicate-ClOrdID reject, or a cancel refused because the venue had
            # already finished the order (its confirmation lost): learn how it ended
            host.venues[order.venue].start_reconcile()
