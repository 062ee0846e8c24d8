"""An execution from the venue goes to the OMS before any of the connector's fsyncs (issue
16, p50): the fill ledger's sync and the outbox's now both follow the forward, and the
outbox's record is encoded after it too. The barrier is unchanged: both are durable when
`on_execs` returns, before the adapter lets next-in advance; a crash before that leaves
next-in behind and the venue sends the execution again (deduplicated by ExecID)."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.connector.actor import ConnectorActor
from actors.connector.outbox import ExecOutbox
from actors.runtime.tally import TURN
from protocol.messages import ExecReport, Side


def _fill(i: int) -> ExecReport:
    return ExecReport(
        venue="v", exec_id=f"X{i}", kind="fill", cl_ord_id=f"c{i}", symbol="AAPL",
        side=Side.BUY, last_qty=Decimal(1), last_px=Decimal(100), cum_qty=Decimal(1),
    )  # fmt: skip


class _Recorder:
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    def add(self, reports: Sequence[ExecReport]) -> Any:
        self.calls.append(f"{self.name}.add")
        return list(reports) if self.name == "outbox" else len(reports)

    def sync(self) -> None:
        self.calls.append(f"{self.name}.sync")

    def number(self, reports: Sequence[ExecReport]) -> Sequence[ExecReport]:
        return reports

    def inc(self, n: int) -> None:
        pass


class _Connector:
    on_execs = ConnectorActor.on_execs

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.cuts = self._ledger_fills = _Recorder("cuts", self.calls)
        self.ledger = _Recorder("ledger", self.calls)
        self.outbox = _Recorder("outbox", self.calls)
        self._retrying = False

    def crash_point(self, name: str) -> None:
        pass

    def _send_execs(self, reports: Sequence[ExecReport]) -> None:
        self.calls.append(f"send {' '.join(r.exec_id for r in reports)}")


def test_a_fill_is_forwarded_before_the_ledger_takes_it_and_before_the_syncs() -> None:
    """Only the outbox (which drops what is pending or acked already) comes before the
    forward; the fill ledger's bookkeeping and its counter (the turn's tally) after it."""
    c = _Connector()
    before = dict(TURN._incs)  # what earlier tests of this process left in the tally
    try:
        c.on_execs([_fill(1), _fill(2)])
        assert c.calls == [
            "outbox.add", "send X1 X2", "ledger.add", "ledger.sync", "outbox.sync",
        ]  # fmt: skip
        added = {k: v for k, v in TURN._incs.items() if before.get(k) != v}
        assert added == {c._ledger_fills: 2.0}
    finally:
        TURN.flush()


def test_a_report_added_and_acked_before_the_flush_is_written_in_that_order(
    tmp_path: Path,
) -> None:
    """The report's record is built at flush, still ahead of its ack record: a restart finds
    nothing pending; one added and synced (not acked) is pending after a crash."""
    box = ExecOutbox(tmp_path)
    box.add([_fill(1)])
    box.ack(["X1"])
    box.add([_fill(2)])
    box.sync()  # no close(): the process dies here
    again = ExecOutbox(tmp_path)
    assert list(again.pending) == ["X2"] and again.pending["X2"] == _fill(2)
