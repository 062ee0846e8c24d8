"""A venue's trade bust (150=H) and correction (150=G): read as ExecReports of kinds
trade_cancel / trade_correct naming the fill they undo (ExecRefID 19), forwarded like a
fill; one without ExecRefID (or a correction without its corrected terms) is malformed:
counted and logged like any report we cannot read, never forwarded half-read."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.connector.fix import mapping as fm
from actors.connector.fix import trade_busts
from protocol.messages import ExecReport, OrderStatus
from tests.connector.fix.support import fix_message
from tests.connector.fix.test_mapping import er


def _read(*pairs: tuple[int, str]) -> tuple[ExecReport | None, str]:
    msg = fix_message(er(*pairs))
    report = fm.to_exec_report(msg, "v")
    assert report is not None and report.kind in trade_busts.KINDS
    return trade_busts.completed(report, msg)


def test_a_bust_names_the_fill_it_undoes_and_carries_the_venue_view_after_it() -> None:
    """150=H with 19=X0: kind trade_cancel, exec_ref_id X0; OrdStatus, CumQty, LeavesQty
    and AvgPx as the venue says them after the bust."""
    report, why = _read((150, "H"), (19, "X0"), (39, "0"), (14, "0"), (151, "10"), (6, "0"))
    assert why == ""
    assert report is not None
    assert (report.kind, report.exec_id, report.exec_ref_id) == ("trade_cancel", "X1", "X0")
    assert (report.ord_status, report.cum_qty, report.leaves_qty) == (
        OrderStatus.ACCEPTED,
        Decimal(0),
        Decimal(10),
    )


def test_a_correction_carries_its_corrected_terms() -> None:
    report, why = _read((150, "G"), (19, "X0"), (32, "4"), (31, "99.5"), (39, "1"), (14, "4"))
    assert why == "" and report is not None
    assert (report.kind, report.exec_ref_id, report.last_qty, report.last_px) == (
        "trade_correct",
        "X0",
        Decimal(4),
        Decimal("99.5"),
    )


@pytest.mark.parametrize(
    ("pairs", "why"),
    [
        (((150, "H"),), "no ExecRefID(19)"),
        (((150, "H"), (19, "  ")), "no ExecRefID(19)"),
        (((150, "H"), (19, "X1")), "ExecRefID(19) is its own ExecID"),
        (((150, "G"), (19, "X0")), "no positive corrected LastQty(32) and LastPx(31)"),
        (((150, "G"), (19, "X0"), (32, "0"), (31, "5")), "no positive corrected"),
    ],
)
def test_malformed_busts_are_refused(pairs: tuple[tuple[int, str], ...], why: str) -> None:
    report, reason = _read(*pairs)
    assert report is None and reason.startswith(why)
