"""A fill first seen unmatched, then resent by the venue and applied on its order after a
positions answer's cut that holds it (review of f1fix, finding E, pre-existing on main):
the OMS noted the resend at its new execution number, after the cut, so a cold start's
opening position counted the fill on top of the venue's position that already held it
(25 where the venue holds 15). A resend of a fill kept as unmatched is noted at the
number the fill first came with (`ExecLog.note_outcome`), as an adoption's placing is."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace

from actors.oms.exec_cut import ExecLog
from actors.oms.plan_apply import PlanApplier
from protocol.messages import ExecCut, Positions, PositionView
from tests.oms.test_adoption_later_fills import V, _fill, _PlanOms, cold_adoption


def _resent(
    tmp_path: Path, first_seq: int
) -> tuple[_PlanOms, ExecLog, PlanApplier, SimpleNamespace]:
    """EXT1 adopted at cum 5 in a cold pass; G2 (10, no cum_qty, first at `first_seq`)
    came before the adoption and stays unmatched (unplaced); the venue resends it at
    exec_seq 9 and it is applied on EXT1 (the book 15)."""
    g2 = _fill("G2", "10", "100", "0", exec_seq=first_seq)
    oms, log, applier, link = cold_adoption(tmp_path, g2, "5")
    assert oms.book.position(V, "ABC").qty == 5  # G2 unplaced: unmatched
    resend = _fill("G2", "10", "100", "0", exec_seq=9)
    log.note_outcome(resend, 1, oms.record(oms.book.apply_exec(resend, 3)))
    assert oms.book.position(V, "ABC").qty == 15  # the resend booked G2 on EXT1
    return oms, log, applier, link


CUT = ExecCut(connector_epoch=1, exec_seq=7, oms_epoch=1)


def test_a_resend_after_the_cut_of_a_fill_the_cut_holds_is_not_added_to_the_opening(
    tmp_path: Path,
) -> None:
    """G2 first at exec_seq 6: the positions answer's cut (7) holds it, the venue holds 15;
    the OMS's position as of the cut is 15 too, and the opening position 15, not 15 + 10."""
    oms, log, applier, link = _resent(tmp_path, 6)
    assert log.positions_as_of(V, CUT, {"ABC": D(15)}) == {"ABC": D(15)}
    held = [PositionView(venue=V, symbol="ABC", qty=D(15), avg_px=D(100))]
    applier.finish(link, Positions(source="venue", venue=V, positions=held, cut=CUT))  # type: ignore[arg-type]
    assert oms.book.position(V, "ABC").qty == 15, oms.book.position(V, "ABC")


def test_a_fill_first_seen_after_the_cut_still_counts_after_it(tmp_path: Path) -> None:
    """The guard: G2 first at exec_seq 8, after the cut (7): the OMS's position as of the
    cut lacks it (5), at its first number as at its resend's."""
    _, log, _, _ = _resent(tmp_path, 8)
    assert log.positions_as_of(V, CUT, {"ABC": D(15)}) == {"ABC": D(5)}
