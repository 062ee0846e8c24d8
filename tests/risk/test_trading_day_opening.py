"""A cold start's opening positions and risk's trading day (`actors.oms.positions`,
`actors.risk.trading_day`), the OMS's book and risk's day together (pure logic). The book
restarts a position at its opening with a realised P&L of 0, so its P&L at the start of
the day it opens in is known: 0. Before, the OMS left an opening unmarked (`day_start_ns`
0) while its time was after the day's start, and risk's start that day logged
`risk_trading_day_baseline_approximate` for every opening position (found last session
in the logs of cold starts: risk's first rebuild came after the OMS took them)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from actors.oms.order_book import OrderBook
from actors.risk.checks import ExposureView, ReasonCode, RiskGate
from protocol.config import RiskLimitsCfg
from protocol.day_clock import DayClock
from protocol.messages import Side
from tests.log_stub import RecordingLog
from tests.risk.test_trading_day import LIMITS, Loop, check, day_of, events, ts

D = Decimal
_NS = 1_000_000_000


def _ns(text: str) -> int:
    return round(ts(text)) * _NS


def _book(day_start: str = "00:00") -> OrderBook:
    book = OrderBook()
    book.day_clock = DayClock.of(RiskLimitsCfg(day_start=day_start))
    return book


def _risk_starts(
    book: OrderBook, at: str, tmp_path: Path, **cfg: str
) -> tuple[RiskGate, RecordingLog]:
    """Risk's first rebuild from `book` at `at` (no trading day stored: a cold start)."""
    loop, log = Loop(at), RecordingLog()
    g = RiskGate(LIMITS.model_copy(update={"max_daily_loss": D(100)}))
    g.exposure = ExposureView.rebuild([], [p.view() for p in book.positions()])
    day_of(g, loop, tmp_path, log, **cfg).begin()
    return g, log


def test_a_cold_starts_opening_positions_give_an_exact_baseline(tmp_path: Path) -> None:
    """Cold start at 08:00 opens long 10 AAPL at 100 and short 5 MSFT; a sell of 10 at 89
    loses 110 before risk's first rebuild: the day starts at 0 (exact, no warning) and its
    loss of 110 is over max_daily_loss 100, refused."""
    book = _book()
    for symbol, qty in (("AAPL", D(10)), ("MSFT", D(-5))):
        book.set_opening_position("sim", symbol, qty, D(100), _ns("2026-12-08T08:00:00+00:00"))
    book.position("sim", "AAPL").apply_fill(
        Side.SELL, D(10), D(89), _ns("2026-12-08T08:00:01+00:00"), book.day_clock
    )
    g, log = _risk_starts(book, "2026-12-08T08:00:02+00:00", tmp_path)
    assert events(log, "risk_trading_day_baseline_approximate") == []
    [started] = events(log, "risk_trading_day_started")
    assert D(started["baseline"]) == 0
    assert g.daily_loss() == D(110)
    assert g.check(check(), now_ns=1).code is ReasonCode.DAILY_LOSS


def test_an_opening_of_the_day_before_then_fills_marks_the_new_day(tmp_path: Path) -> None:
    """Opened at 20:00 on the 7th, a loss of 110 that evening, a gain of 30 on the 8th at
    03:00; risk starts at 08:00 on the 8th: the day's baseline is -110 (exact), today +30."""
    book = _book()
    book.set_opening_position("sim", "AAPL", D(10), D(100), _ns("2026-12-07T20:00:00+00:00"))
    pos = book.position("sim", "AAPL")
    pos.apply_fill(Side.SELL, D(5), D(78), _ns("2026-12-07T21:00:00+00:00"), book.day_clock)
    pos.apply_fill(Side.SELL, D(5), D(106), _ns("2026-12-08T03:00:00+00:00"), book.day_clock)
    g, log = _risk_starts(book, "2026-12-08T08:00:00+00:00", tmp_path)
    assert events(log, "risk_trading_day_baseline_approximate") == []
    assert g.day_start_pnl == D(-110)
    assert g.daily_loss() == D(-30)


def test_an_opening_marked_by_another_day_start_is_still_approximate(tmp_path: Path) -> None:
    """The OMS marks days starting 00:00, risk's start at 06:00 (a reload the OMS did not
    see): the opening's position filled at 03:00 and 07:00 on the 8th, its P&L at 06:00
    is not known: its P&L at risk's start counts, and the position is named."""
    book = _book("00:00")
    book.set_opening_position("sim", "AAPL", D(10), D(100), _ns("2026-12-07T20:00:00+00:00"))
    pos = book.position("sim", "AAPL")
    pos.apply_fill(Side.SELL, D(5), D(90), _ns("2026-12-08T03:00:00+00:00"), book.day_clock)
    pos.apply_fill(Side.SELL, D(5), D(95), _ns("2026-12-08T07:00:00+00:00"), book.day_clock)
    g, log = _risk_starts(book, "2026-12-08T08:00:00+00:00", tmp_path, day_start="06:00")
    [warning] = events(log, "risk_trading_day_baseline_approximate")
    assert warning == {"day": "2026-12-08", "positions": ["sim:AAPL"], "count": 1}
    assert g.day_start_pnl == D(-75)
