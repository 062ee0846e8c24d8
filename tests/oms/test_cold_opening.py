"""A cold start's opening positions (`PlanApplier.finish`): the OMS's book after the cold
pass's adoptions is made the venue's, symbol by symbol, including a symbol the venue's
answer leaves out (flat there: a venue lists the positions it holds, and the position
heartbeat reads a missing symbol as 0). The real `PlanApplier` and book on the stub OMS of
`tests.oms.test_sends_first`."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from actors.oms.exec_cut import ExecLog
from actors.oms.journal_rows import RowReader
from actors.oms.plan_apply import PlanApplier
from protocol.config import OmsCfg
from protocol.messages import OrderStatus, Positions, PositionView, Side, VenueOrder
from protocol.venue_messages import ExecCut, ExecReport
from tests.oms.test_sends_first import V, _Journal, _Oms


def _cold_pass(tmp_path: Path, venue: list[PositionView]) -> _Oms:
    """The cold pass adopts EXT1 (BUY 60, 50 filled: the book +50 ABC), then takes the
    venue's positions `venue` as its opening positions."""
    oms = _Oms()
    vo = VenueOrder(cl_ord_id="EXT1", venue_order_id="V1", symbol="ABC", side=Side.BUY,
                    order_qty=D(60), price=D(100), status=OrderStatus.PARTIALLY_FILLED,
                    cum_qty=D(50), avg_px=D(100), leaves_qty=D(10))  # fmt: skip
    oms.record(oms.book.adopt(V, vo, 1))
    assert oms.book.position(V, "ABC").qty == 50
    marker = tmp_path / "cold"
    marker.touch()
    applier = PlanApplier(oms, {}, OmsCfg(), structlog.get_logger(), marker)  # type: ignore[arg-type]
    cut = ExecCut(connector_epoch=1, exec_seq=5, oms_epoch=1)  # consistent, nothing after it
    answer = Positions(source="venue", venue=V, positions=venue, cut=cut)
    link = SimpleNamespace(venue=V, ever_reconciled=False, exec_log=ExecLog(), oms_epoch=1)
    applier.finish(link, answer)  # type: ignore[arg-type]
    return oms


def test_a_symbol_the_venue_holds_becomes_the_opening_position(tmp_path: Path) -> None:
    """The venue holds 80 ABC (30 from before the adopted order's 50): the book's 80."""
    oms = _cold_pass(tmp_path, [PositionView(venue=V, symbol="ABC", qty=D(80), avg_px=D(99))])
    assert oms.book.position(V, "ABC").qty == 80


def test_a_symbol_the_venue_leaves_out_is_flat_in_the_book(tmp_path: Path) -> None:
    """The venue is flat in ABC (short 50 before the adopted order bought 50) and its
    answer lists no ABC. The book must be flat too; it keeps the adopted 50, which the
    position heartbeat then sees every beat (venue 0, OMS 50: the kill-switch at
    tolerance 0)."""
    oms = _cold_pass(tmp_path, [])
    assert oms.book.position(V, "ABC").qty == 0, oms.book.position(V, "ABC")


@pytest.mark.parametrize(
    ("venue", "want"),
    [
        ([], 10),  # flat at the cut (left out): 0 + 10, not 0 (384d4c5 zeroes it)
        ([PositionView(venue=V, symbol="ABC", qty=D(80), avg_px=D(99))], 90),  # 80 + 10
    ],
)
def test_a_fill_after_the_answers_cut_stays_on_top_of_the_opening_position(
    tmp_path: Path, venue: list[PositionView], want: int
) -> None:
    """The venue's positions answer is as of its cut (exec_seq 5). The cold pass adopted
    EXT2 (BUY 60, nothing filled yet); before the pass ends, a fill of 10 on it numbered
    after the cut (exec_seq 6) is applied: the book holds 10 ABC the answer does not
    show. The opening position is the venue's at the cut plus what the book applied
    after it (as the pass compares positions: `ExecLog.positions_as_of`); taking the
    answer as the position now drops the 10 (the venue holds it, the OMS not: the
    position heartbeat diverges every beat, the kill-switch at tolerance 0)."""
    oms = _Oms()
    vo = VenueOrder(cl_ord_id="EXT2", venue_order_id="V2", symbol="ABC", side=Side.BUY,
                    order_qty=D(60), price=D(100), status=OrderStatus.ACCEPTED,
                    cum_qty=D(0), avg_px=D(0), leaves_qty=D(60))  # fmt: skip
    oms.record(oms.book.adopt(V, vo, 1))
    log = ExecLog()
    report = ExecReport(venue=V, exec_id="E6", kind="fill", cl_ord_id="EXT2", exec_seq=6,
                        last_qty=D(10), last_px=D(100), cum_qty=D(10))  # fmt: skip
    log.note_outcome(report, 1, oms.record(oms.book.apply_exec(report, 2)))
    assert oms.book.position(V, "ABC").qty == 10
    marker = tmp_path / "cold"
    marker.touch()
    applier = PlanApplier(oms, {}, OmsCfg(), structlog.get_logger(), marker)  # type: ignore[arg-type]
    cut = ExecCut(connector_epoch=1, exec_seq=5, oms_epoch=1)
    answer = Positions(source="venue", venue=V, positions=venue, cut=cut)
    link = SimpleNamespace(venue=V, ever_reconciled=False, exec_log=log, oms_epoch=1)
    applier.finish(link, answer)  # type: ignore[arg-type]
    assert oms.book.position(V, "ABC").qty == want, oms.book.position(V, "ABC")


@pytest.mark.parametrize(
    ("avg_px", "logged", "row"),
    [
        (D(0), (None, False), ("", "cold start, cost unknown")),  # a ccxt venue: no price
        (D(99), ("99", True), ("99", "cold start")),
    ],
)
def test_an_opening_position_without_an_average_price_is_shown_cost_unknown_not_0(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    avg_px: D,
    logged: tuple[str | None, bool],
    row: tuple[str, str],
) -> None:
    """A venue that gives no average price (ccxt balances, a PositionReport without
    SettlPrice) leaves the opening position's avg_px 0 in the journal record (the record's
    and the wire's field is a number). The `opening_position` warning and `journal
    inspect` said avg_px "0", a price no operator should take as the cost: they say
    unknown (null, `cost_known` false; no price, "cost unknown"), as `positions` does."""
    journalled: list[dict[str, Any]] = []
    append = _Journal.append
    monkeypatch.setattr(_Journal, "append", lambda j, r: (journalled.append(r), append(j, r)))
    with capture_logs() as logs:
        _cold_pass(tmp_path, [PositionView(venue=V, symbol="ABC", qty=D(80), avg_px=avg_px)])
    [line] = [e for e in logs if e["event"] == "opening_position"]
    assert (line["avg_px"], line["cost_known"]) == logged
    [record] = [r for r in journalled if r["kind"] == "opening_position"]
    assert record["avg_px"] == str(avg_px)  # the journal record as before
    [shown] = RowReader().rows({"kind": "record", "data": record})
    assert (shown.price, shown.detail) == row
