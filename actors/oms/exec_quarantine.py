"""Executions the OMS cannot apply are quarantined: no single one blocks its venue forever.

A connector holds every consistent execution cut until the OMS has acked every execution up
to it (`actors.connector.exec_cut`). An ExecReport whose apply raised was answered INTERNAL
and never acked: the connector sent it again forever, every cut after it was inconsistent,
every reconciliation pass of the venue failed, and a restarted OMS never opened intake for
it. Fuzzing found no real input that makes the apply raise (tests/oms/test_exec_fuzz.py),
but a bug in our own apply code must not stop reconciliation, so `ExecApplier.apply`:

- journals the report as an `exec_quarantined` record (the report as received, the error;
  `tradepulse journal inspect --kind exec_quarantined`), replayed into the book's
  `Quarantined` and kept in its snapshots: a resend of it (the same content), even after a
  restart, is acked and not applied (never twice, never half: the steps the apply had
  taken before it raised changed the book in memory, and are journalled as they would
  have been), logged `execution_quarantined_acked` and counted in
  `tradepulse_oms_quarantined_executions_acked_total{venue}`; another report reusing its
  ExecID (venues do) is applied as any other, logged `execution_quarantine_id_reused`;
- answers None: the OMS acks it, so the venue's cuts advance and reconciliation goes on
  (a pass compares the venue's view of the order with ours: what the report would have
  changed is repaired or escalated there, under its own exec ids);
- makes it loud: `execution_quarantined` logged (error, at most 10 lines a second),
  `tradepulse_oms_executions_quarantined_total{venue}`, an `order_escalation` stream event
  (kind `execution_quarantined`), intake paused for the venue (persisted: it stays closed,
  across restarts, until an operator looks and runs `tradepulse intake resume --venue V`),
  and, for a report that may move a position (a fill, or a cum_qty), the kill-switch
  engaged as for a fill the book cannot account for (`oms.unmatched_fill_engages_kill_switch`).

What is quarantined and what is not: the apply's logic is pure (`actors.oms.executions`),
so an exception it raises comes again for the same report and book: retrying cannot help,
that is the poison. It is not free of I/O: `OrderBook.find` / `get` read the order archive
(SQLite) for an order no longer in memory, before anything changes (the old terminal
orders are written to it after the journal commit, never inside an apply:
`actors.oms.evictions`). A failure of the machine
is transient, not poison, and is let through (answered INTERNAL, sent again by the
connector, applied once the machine is well):
OSError, MemoryError and sqlite3.Error (the archive's "disk I/O error", "database or disk
is full", "database is locked"). A journal that cannot be written fails in
`Journal.append` / `commit` after the apply, outside this guard, and the OMS exits and
replays as before (the connector sends the execution again to the next incarnation).

Fault injection (tests; unset in production): `TP_FAULT_POISON_EXEC=<ClOrdID>` makes the
apply of every execution for that ClOrdID raise.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from actors.oms.executions import ExecBook
from actors.oms.lifecycle import Event
from actors.oms.orders import Outcome
from actors.oms.positions import UnmatchedFill
from actors.oms.quarantined import QUARANTINED, Quarantined
from actors.runtime import metrics
from actors.runtime.ratelog import LogBudget
from protocol.commands import Intake
from protocol.config import SystemConfig
from protocol.messages import ExecReport, OrderStatus

EVENT = "execution_quarantined"  # the log event and the escalation's kind
_TRANSIENT = (OSError, MemoryError, sqlite3.Error)  # the machine, not the report
POISON_ENV = "TP_FAULT_POISON_EXEC"
_ZERO = Decimal(0)


def quarantine_record(report: ExecReport, error: BaseException, ts_ns: int) -> dict[str, Any]:
    return {
        "kind": QUARANTINED,
        "venue": report.venue,
        "exec_id": report.exec_id,
        "cl_ord_id": report.cl_ord_id,
        "exec_kind": report.kind,
        "error": f"{type(error).__name__}: {error}"[:512],
        "report": report.model_dump_json(),  # as received: a str always encodes
        "ts_ns": ts_ns,
    }


class _Book(ExecBook, Protocol):
    quarantined: Quarantined

    def apply_exec(self, report: ExecReport, ts_ns: int, via: ExecBook | None = ...) -> Outcome:
        """`actors.oms.order_book.OrderBook.apply_exec`."""
        ...

    def apply_record(self, record: Mapping[str, Any]) -> None: ...


class _Switch(Protocol):
    def engage(self, reason: str) -> None: ...


class _Pauses(Protocol):
    @property
    def venues(self) -> Mapping[str, object]: ...


class _Gate(Protocol):
    """`actors.oms.intake_state.IntakeGate`: the operator pauses."""

    @property
    def pauses(self) -> _Pauses: ...

    def control(self, cmd: Intake, by: str | None = None) -> tuple[bool, str]: ...


class _ExecLog(Protocol):
    def note_outcome(self, report: ExecReport, epoch: int, outcome: Outcome) -> None:
        """`actors.oms.exec_cut.ExecLog.note_outcome`."""
        ...


class ApplierHost(Protocol):
    """What the applier needs of the OMS (`actors.oms.actor.OmsActor`)."""

    @property
    def book(self) -> _Book: ...

    @property
    def log(self) -> Any: ...

    @property
    def gate(self) -> _Gate: ...

    @property
    def kill_switch(self) -> _Switch: ...

    @property
    def kill_switch_engaged(self) -> bool: ...

    @property
    def cfg(self) -> SystemConfig: ...

    @property
    def exec_log(self) -> _ExecLog: ...

    def record(self, outcome: Outcome, venue: str = "") -> Outcome: ...

    def publish_stream(self, event: str, data: dict[str, Any]) -> None: ...


class _Steps:
    """The book, noting the outcome of every step an apply takes through it (`done`).
    One per applier, emptied per report (~0.3 us a step on the fill path)."""

    def __init__(self, book: ExecBook) -> None:
        self.book = book
        self.done: list[Outcome] = []

    def record_event(
        self, client_order_id: str, event: Event, ts_ns: int, **fields: Any
    ) -> Outcome:
        out = self.book.record_event(client_order_id, event, ts_ns, **fields)
        self.done.append(out)
        return out

    def apply_fill(
        self,
        client_order_id: str,
        exec_id: str,
        qty: Decimal,
        px: Decimal,
        ts_ns: int,
        *,
        venue_cum_qty: Decimal = _ZERO,
        venue_order_id: str = "",
        fee: Decimal = _ZERO,
        fee_asset: str = "",
    ) -> Outcome:
        out = self.book.apply_fill(
            client_order_id, exec_id, qty, px, ts_ns, venue_cum_qty=venue_cum_qty,
            venue_order_id=venue_order_id, fee=fee, fee_asset=fee_asset,
        )  # fmt: skip
        self.done.append(out)
        return out

    def unmatched_fills(self, venue: str | None = None) -> list[UnmatchedFill]:
        return self.book.unmatched_fills(venue)  # a read: no step

    def apply_record(self, record: Mapping[str, Any]) -> None:  # a bust's (trade_busts)
        self.book.apply_record(record)
        self.done.append(Outcome("applied", None, (dict(record),)))

    def record_unmatched(self, report: ExecReport, ts_ns: int) -> Outcome:
        out = self.book.record_unmatched(report, ts_ns)
        self.done.append(out)
        return out

    def apply_venue_status(
        self, client_order_id: str, status: OrderStatus, ts_ns: int, **kwargs: Any
    ) -> Outcome:
        out = self.book.apply_venue_status(client_order_id, status, ts_ns, **kwargs)
        self.done.append(out)
        return out


class ExecApplier:
    def __init__(self, host: ApplierHost, clock: Callable[[], int] = time.time_ns) -> None:
        self.host = host
        self._clock = clock
        self._log_budget = LogBudget()
        self._poison = os.environ.get(POISON_ENV) or None  # fault injection (tests)
        self._steps: _Steps | None = None  # made at the first report (the book may be later)

    def apply(self, report: ExecReport, ts_ns: int, epoch: int = 0) -> Outcome | None:
        """Apply `report` (from connector incarnation `epoch`) and journal what it did
        (`host.record`); None if it is quarantined, now or before (journalled: ack it,
        apply nothing more)."""
        book = self.host.book
        if report.exec_id and (report.venue, report.exec_id) in book.quarantined:
            # (a report without an exec id is never taken for another)
            if book.quarantined.holds(report):
                self._seen_again(report)
                return None
            self._warn("execution_quarantine_id_reused", report)  # another report: applied
        steps = self._steps
        if steps is None or steps.book is not book:
            steps = self._steps = _Steps(book)
        steps.done.clear()
        try:
            if self._poison is not None and report.cl_ord_id == self._poison:
                raise RuntimeError(f"{POISON_ENV}: injected for {report.cl_ord_id}")
            outcome = book.apply_exec(report, ts_ns, via=steps)
        except _TRANSIENT:
            raise
        except Exception as exc:  # noqa: BLE001 - a poison execution must not block its venue
            self._quarantine(report, exc, list(steps.done), epoch)
            return None
        return self.host.record(outcome, venue=report.venue)

    def _seen_again(self, report: ExecReport) -> None:
        """A quarantined report sent again: acked, not applied; counted and logged."""
        metrics.QUARANTINED_EXECUTIONS_ACKED.labels(venue=report.venue).inc()
        self._warn("execution_quarantined_acked", report)

    def _warn(self, event: str, report: ExecReport) -> None:
        if (skipped := self._log_budget.take()) is not None:
            self.host.log.warning(
                event,
                venue=report.venue,
                exec_id=report.exec_id,
                cl_ord_id=report.cl_ord_id,
                exec_kind=report.kind,
                suppressed=skipped,
            )

    def _quarantine(
        self, report: ExecReport, exc: Exception, done: list[Outcome], epoch: int
    ) -> None:
        host = self.host
        for step in done:  # applied in memory before the raise: journalled as they were,
            if step.records:  # and noted as executions (positions as of a cut, touched)
                host.record(step, venue=report.venue)
                host.exec_log.note_outcome(report, epoch, step)
        record = quarantine_record(report, exc, self._clock())
        host.book.apply_record(record)
        host.record(Outcome("refused", None, (record,), reason=record["error"]))
        metrics.EXECUTIONS_QUARANTINED.labels(venue=report.venue).inc()
        ids = {"venue": report.venue, "exec_id": report.exec_id, "cl_ord_id": report.cl_ord_id}
        if (skipped := self._log_budget.take()) is not None:
            host.log.error(
                EVENT,
                **ids,
                exec_kind=report.kind,
                error=record["error"],
                steps_applied=sum(1 for s in done if s.records),
                suppressed=skipped,
            )
        detail = f"{report.exec_id} ({report.kind}) quarantined: {record['error']}"
        host.publish_stream(
            "order_escalation",
            {"kind": EVENT, "detail": detail, "client_order_id": "", **ids},
        )
        self._halt(report, detail)

    def _halt(self, report: ExecReport, detail: str) -> None:
        """Trading on the venue stops until an operator looks: its intake paused (kept
        across restarts), and the kill-switch engaged if a position may be wrong."""
        host, venue = self.host, report.venue
        if venue not in host.gate.pauses.venues:
            pause = Intake(action="pause", venue=venue, reason=f"execution {detail}"[:256])
            ok, text = host.gate.control(pause, "oms (execution quarantined)")
            if not ok:
                host.log.error("execution_quarantine_pause_failed", venue=venue, error=text)
        moves = report.kind == "fill" or report.cum_qty != _ZERO
        engages = host.cfg.oms.unmatched_fill_engages_kill_switch
        if moves and engages and not host.kill_switch_engaged:
            host.kill_switch.engage(f"{EVENT}: {venue} {report.exec_id}"[:256])
