"""The review of f1fix (branch f1rev, findings A-E): a cold start's adoption and opening
position around a fill without a venue cum_qty (G2: 10 @ 100 of EXT1, exec_seq 6), with a
position from before the OMS, a crash during the cold pass, a catch-up at another price
and a resend. The fix decides by the open-orders answer's cut (`Adopt.cut`) whether G2 is
in the state adopted (held by it) or after it (placed on the order), so the opening
position never holds a fill the order lacks (`tests.oms.test_adoption_cold_unplaced`)."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from actors.oms.exec_cut import ExecLog
from actors.oms.order_book import OrderBook
from tests.oms.test_adoption_cold_unplaced import cancelled, cold_pass
from tests.oms.test_adoption_later_fills import V, _fill, _PlanOms


def test_a_later_catch_up_moves_a_position_held_from_before_the_oms(tmp_path: Path) -> None:
    """(A) The venue account holds 100 ABC from before the OMS. G2 came before the
    open-orders answer (its cut at 6): EXT1's adopted cum 50 holds it. The positions
    answer (cut 7) says 150 = 100 + 50: the opening position. A fill of 10 after the cut
    whose report is lost: EXT1's cancel says cum 60, and the catch-up moves the position
    to 160 (f1fix named G2 held by the opening position and took it for this catch-up:
    150)."""
    oms, _ = cold_pass(tmp_path, "50", 150, answered_at=6)
    assert oms.book.apply_exec(cancelled(60), 4).applied
    assert oms.book.position(V, "ABC").qty == 160


def test_a_fill_after_the_answer_counts_once_whatever_the_position_from_before(
    tmp_path: Path,
) -> None:
    """(B) The venue account is short 100 ABC from before. EXT1 (BUY) is adopted at cum 5
    from an answer cut at 5; G2 after it is placed on EXT1 (the book 15). The positions
    answer (cut 7) holds G2: -100 + 15 = -85, the opening position. EXT1's cancel at cum
    15 adds nothing: -85 (-75 before the fix, and on f1fix)."""
    oms, _ = cold_pass(tmp_path, "5", -85)
    assert oms.book.apply_exec(cancelled(15), 4).applied
    assert oms.book.position(V, "ABC").qty == -85


def test_a_crash_during_the_cold_pass_replays_the_fill_the_adoption_placed(
    tmp_path: Path,
) -> None:
    """(C) The F1 case with room (adopted at cum 50, G2 after the answer, venue 60 at cut
    7), and the OMS crashes after the adoption and before the positions answer: the
    restart replays the journal (G2 booked on EXT1 by its own ``fill`` record) with an
    empty exec log. The book is 60, the venue's; EXT1's cancel at cum 60 adds nothing:
    60 (70 before the fix: G2 was taken as held by the adopted state, and on f1fix the
    in-memory exec log that named it was gone)."""

    def crash(oms: _PlanOms, log: ExecLog) -> None:
        records = oms.journal.append.__self__  # type: ignore[attr-defined]
        replayed = OrderBook()
        for rec in records:
            replayed.apply_record(rec)
        assert replayed.to_dict() == oms.book.to_dict()
        oms.book = replayed  # type: ignore[misc]  # the new incarnation's
        log._venues.clear()

    oms, _ = cold_pass(tmp_path, "50", 60, between=crash)
    assert oms.book.apply_exec(cancelled(60), 4).applied
    assert oms.book.position(V, "ABC").qty == 60


def test_a_catch_up_after_the_cold_pass_moves_the_position_at_its_own_price(
    tmp_path: Path,
) -> None:
    """(D) EXT1 at cum 5 @ 100, G2 (10 @ 100) after the answer placed on it: order and
    position 15 @ 100, the venue's. A fill of 5 @ 130 after the cut, its report lost:
    EXT1's cancel says cum 20 at avg 107.5. The catch-up is those 5 at 130 (the price that
    makes the order's average the venue's): the position 20 @ 107.5 (before the fix:
    15 @ 110 on top of an opening 15 that held G2, 30; f1fix: 20 @ 102.5)."""
    oms, _ = cold_pass(tmp_path, "5", 15)
    assert oms.book.apply_exec(cancelled(20, avg_px="107.5"), 4).applied
    pos = oms.book.position(V, "ABC")
    assert (pos.qty, pos.avg_px) == (20, D("107.5")), pos


@pytest.mark.parametrize("answered_at", [None, 5])
def test_a_resend_after_the_cut_of_a_fill_the_cut_holds_is_not_added_to_the_opening(
    tmp_path: Path, answered_at: int | None
) -> None:
    """(E, fixed by 366f022) G2 left unmatched by the adoption (an answer without a cut:
    None), or placed by it (an answer cut at 5); the venue resends G2 at exec_seq 9,
    applied on EXT1 (or a duplicate), then the positions answer (cut 7) says 15, G2 (6)
    in it: the opening position is 15 (the exec log notes the resend at G2's own number,
    6), not 25."""

    def resend(oms: _PlanOms, log: ExecLog) -> None:
        g2 = _fill("G2", "10", "100", "0", exec_seq=9)
        log.note_outcome(g2, 1, oms.record(oms.book.apply_exec(g2, 3)))
        assert oms.book.position(V, "ABC").qty == 15

    oms, _ = cold_pass(tmp_path, "5", 15, answered_at=answered_at, between=resend)
    assert oms.book.position(V, "ABC").qty == 15
