"""The CLI side of the operator views, pure: the desk CSV (`positions --compare`), the
comparison (every difference, a missing row on either side included, flat equals absent),
risk's column, `--since`/`--until` times, and the tables (a capped reply says so)."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.supervisor.commands.positions import (
    DeskFileError,
    compare,
    format_positions,
    merge_risk,
    read_desk,
)
from actors.supervisor.commands.tables import fmt_ts, num, parse_when_ns
from actors.supervisor.commands.views import format_fills, format_orders

D = Decimal


def _row(venue: str, symbol: str, qty: str) -> dict[str, Any]:
    return {"venue": venue, "symbol": symbol, "qty": qty, "avg_px": "100", "last_px": "101",
            "realized_pnl": "0", "unrealized_pnl": "5", "venue_qty": qty, "venue_ts_ns": None,
            "venue_source": "venue"}  # fmt: skip


def test_read_desk_takes_venue_symbol_qty_and_ignores_other_columns(tmp_path: Path) -> None:
    f = tmp_path / "desk.csv"
    f.write_text("book,venue,symbol,qty\nx,simA,AAPL,100\ny,simA,MSFT, -5 \n")
    assert read_desk(f) == {("simA", "AAPL"): D(100), ("simA", "MSFT"): D(-5)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("venue,sym,qty\nsimA,AAPL,1\n", "header lacks symbol"),
        ("venue,symbol,qty\nsimA,AAPL,ten\n", ":2: qty 'ten' is not a number"),
        ("venue,symbol,qty\nsimA,AAPL,1\nsimA,AAPL,2\n", ":3: simA AAPL listed twice"),
        ("venue,symbol,qty\n,AAPL,1\n", ":2: venue and symbol are required"),
    ],
)
def test_a_bad_desk_file_is_named_with_its_line(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "desk.csv"
    f.write_text(text)
    with pytest.raises(DeskFileError, match=message):
        read_desk(f)


def test_a_missing_desk_file_is_a_desk_file_error(tmp_path: Path) -> None:
    with pytest.raises(DeskFileError, match="No such file"):
        read_desk(tmp_path / "nope.csv")


@pytest.mark.parametrize("kind", ["fifo", "dir"])
def test_a_desk_file_that_is_no_regular_file_is_refused_not_waited_on(
    tmp_path: Path, kind: str
) -> None:
    """`--compare` of a FIFO hung the command until a writer came (and /dev/zero read
    without end); a directory said "[Errno 21] Is a directory: '...'". Now one clear line."""
    f = tmp_path / "desk.csv"
    if kind == "fifo":
        os.mkfifo(f)
    else:
        f.mkdir()
    message = "not a regular file" if kind == "fifo" else "desk.csv: it is a directory$"
    with pytest.raises(DeskFileError, match=message):
        read_desk(f)


def test_compare_lists_every_difference_missing_rows_included() -> None:
    """A different qty, a desk row the OMS lacks and an OMS position the desk lacks are all
    listed (sorted); a flat OMS position the desk does not list, and a desk row of 0 the
    OMS does not have, are no difference."""
    desk = {("simA", "AAPL"): D(100), ("simA", "MSFT"): D(-5), ("simB", "ZERO"): D(0),
            ("simA", "SAME"): D(7)}  # fmt: skip
    rows = [_row("simA", "AAPL", "90"), _row("simA", "SAME", "7"), _row("simB", "IBM", "3"),
            _row("simB", "FLAT", "0")]  # fmt: skip
    diffs = compare(desk, rows)
    assert [(d["venue"], d["symbol"], d["desk_qty"], d["oms_qty"], d["difference"])
            for d in diffs] == [
        ("simA", "AAPL", "100", "90", "-10"),
        ("simA", "MSFT", "-5", None, "5"),
        ("simB", "IBM", None, "3", "3"),
    ]  # fmt: skip
    assert compare({("simA", "SAME"): D("7.00")}, [_row("simA", "SAME", "7")]) == []


def test_risk_column_unknown_when_risk_did_not_answer_and_rows_only_risk_has() -> None:
    rows = [_row("simA", "AAPL", "10")]
    merge_risk(rows, None)
    assert rows[0]["risk_qty"] is None
    rows = [_row("simB", "AAPL", "10")]
    merge_risk(rows, [{"venue": "simA", "symbol": "X", "qty": "4"},
                      {"venue": "simB", "symbol": "AAPL", "qty": "10.0"}])  # fmt: skip
    assert [(r["venue"], r["symbol"], r["qty"], r["risk_qty"]) for r in rows] == [
        ("simA", "X", "0", "4"),
        ("simB", "AAPL", "10", "10.0"),
    ]


def test_positions_table_shows_the_three_views_and_the_differences() -> None:
    rows = [_row("simA", "AAPL", "10") | {"risk_qty": None}]
    text = format_positions({"positions": rows, "risk_error": "risk is not running",
                             "differences": [{"venue": "simA", "symbol": "MSFT",
                                              "desk_qty": "-5", "oms_qty": None,
                                              "difference": "5"}],
                             "desk_file": "desk.csv"})  # fmt: skip
    lines = text.splitlines()
    assert lines[0].split()[:5] == ["VENUE", "SYMBOL", "OMS_QTY", "VENUE_QTY", "RISK_QTY"]
    assert lines[1].split()[:5] == ["simA", "AAPL", "10", "10", "-"]
    assert "risk: risk is not running (RISK_QTY unknown)" in text
    assert "1 difference(s) from desk.csv:" in text
    assert lines[-1].split() == ["simA", "MSFT", "-5", "(missing)", "5"]
    ok = format_positions({"positions": [], "differences": [], "desk_file": "d.csv"})
    assert "no positions" in ok and "desk records match: no differences (d.csv)" in ok


def test_since_takes_an_age_or_an_iso_time_utc_unless_given() -> None:
    now = 1_000_000.0
    assert parse_when_ns("10m", now_s=now) == int((now - 600) * 1e9)
    assert parse_when_ns("1.5h", now_s=now) == int((now - 5400) * 1e9)
    assert parse_when_ns("2026-01-02T03:04:05Z") == parse_when_ns("2026-01-02T03:04:05")
    assert parse_when_ns("2026-01-02T04:04:05+01:00") == parse_when_ns("2026-01-02T03:04:05")
    with pytest.raises(ValueError, match="neither an ISO 8601 time nor an age"):
        parse_when_ns("yesterday")
    assert fmt_ts(parse_when_ns("2026-01-02T03:04:05.250Z")) == "2026-01-02T03:04:05.250Z"
    assert fmt_ts(0) == "-"


def test_a_capped_reply_says_how_many_matched() -> None:
    order = {"client_order_id": "o1", "venue": "simA", "symbol": "AAPL", "side": "BUY",
             "qty": "10", "order_type": "LIMIT", "price": "95", "status": "ACCEPTED",
             "cum_qty": "0", "avg_px": "0", "reason": "", "ts_ns": 1}  # fmt: skip
    text = format_orders({"orders": [order], "total": 5})
    assert text.splitlines()[1].split()[1:4] == ["o1", "simA", "AAPL"]
    assert text.endswith("5 orders (the newest 1 shown: raise --limit or narrow the filters)")
    fill = {"ts_ns": 1, "venue": "simA", "symbol": "AAPL", "side": "", "qty": "1", "px": "2",
            "client_order_id": "", "exec_id": "X1"}  # fmt: skip
    text = format_fills({"fills": [fill], "total": 1})
    assert "(unmatched)" in text and text.endswith("1 fills")
    assert text.splitlines()[1].split()[6] == "-"  # no fee (an older OMS's row has no keys)
    paid = format_fills({"fills": [fill | {"fee": "0.001", "fee_asset": "BTC"}], "total": 1})
    assert paid.splitlines()[0].split()[6] == "FEE"
    assert paid.splitlines()[1].split()[6:8] == ["0.001", "BTC"]


def test_tables_round_prices_and_pnl_json_keeps_every_digit() -> None:
    """The table shows at most 6 decimals of a price and 2 of P&L (half even); shorter
    values stay as they are; none is `-`."""
    assert num("100.0128571428571428571428571", 6) == "100.012857"
    assert num("-4.5714285714285714285714200", 2) == "-4.57"
    assert (num("99.99", 6), num("0", 2), num(None, 2)) == ("99.99", "0", "-")
    row = _row("simA", "AAPL", "500") | {"avg_px": "100.0128571428571428571428571",
                                        "realized_pnl": "-4.5714285714285714285714200"}  # fmt: skip
    cells = format_positions({"positions": [row]}).splitlines()[1].split()
    assert cells[5] == "100.012857" and cells[8] == "-4.57"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\ufeffvenue,symbol,qty\nsimA,AAPL,500\n", {("simA", "AAPL"): D(500)}),
        ("venue, symbol, qty\nsimA, AAPL, 500\n", {("simA", "AAPL"): D(500)}),
        (" venue ,symbol ,qty \nsimA,AAPL,-5\n", {("simA", "AAPL"): D(-5)}),
    ],
)
def test_read_desk_takes_a_bom_and_spaces_around_names_and_cells(
    tmp_path: Path, text: str, expected: dict[tuple[str, str], D]
) -> None:
    f = tmp_path / "desk.csv"
    f.write_text(text, encoding="utf-8")
    assert read_desk(f) == expected


@pytest.mark.parametrize("qty", ["NaN", "sNaN", "Infinity", "-inf"])
def test_a_non_finite_desk_qty_is_refused_with_its_line(tmp_path: Path, qty: str) -> None:
    f = tmp_path / "desk.csv"
    f.write_text(f"venue,symbol,qty\nsimA,AAPL,1\nsimA,MSFT,{qty}\n")
    with pytest.raises(DeskFileError, match=rf"desk.csv:3: qty '{qty}' is not a finite number"):
        read_desk(f)


def test_a_short_desk_row_is_refused_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "desk.csv"
    f.write_text("venue,symbol,qty\nsimA,AAPL\n")
    with pytest.raises(DeskFileError, match=r"desk.csv:2: qty is missing \(a short row\)"):
        read_desk(f)


def test_positions_of_unknown_cost_and_an_unseeded_ledger_are_marked() -> None:
    """A cost-unknown row shows - for AVG_PX and both P&L (with a footnote), and a venue qty
    from an incomplete fill ledger is marked ? (with a footnote); LAST_PX_AGE dates the price."""
    now = 10_000 * 10**9
    row = _row("simA", "AAPL", "500") | {"avg_px": None, "realized_pnl": None,
                                         "unrealized_pnl": None, "cost_known": False,
                                         "venue_source": "ledger_unseeded", "risk_qty": "500",
                                         "last_px_ts_ns": now - 125 * 10**9}  # fmt: skip
    lines = format_positions({"positions": [row]}, now_ns=now).splitlines()
    cells = lines[1].split()
    assert cells[2:] == ["500", "500?", "500", "-", "101", "2m", "-", "-", "-"]
    assert any("cost unknown" in line for line in lines)
    assert any("VENUE_QTY ?" in line for line in lines)
    plain = _row("simA", "AAPL", "5") | {"risk_qty": "5", "last_px_ts_ns": now - 3 * 10**9}
    text = format_positions({"positions": [plain]}, now_ns=now)
    assert text.splitlines()[1].split()[3] == "5" and "?" not in text and "unknown" not in text
    assert text.splitlines()[1].split()[7] == "3s"


def test_a_positions_reply_cut_by_its_limit_says_so() -> None:
    rows = [_row("simA", f"S{i}", "1") | {"risk_qty": "1"} for i in range(2)]
    text = format_positions({"positions": rows, "total": 7})
    assert "7 positions (the first 2 shown" in text


def test_the_footer_says_whether_limit_or_the_size_budget_cut_rows() -> None:
    """Fewer rows than --limit asked and than matched: the reply's size limit cut them (not
    --limit); the fills footer says how many fills the OMS keeps."""
    fill = {"ts_ns": 1, "venue": "simA", "symbol": "AAPL", "side": "BUY", "qty": "1", "px": "2",
            "client_order_id": "o1", "exec_id": "X1"}  # fmt: skip
    cut = format_fills({"fills": [fill], "total": 9, "limit": 200, "kept": 10_000})
    assert "size limit cut the rest" in cut and "raise --limit" not in cut
    assert cut.endswith("the OMS keeps the last 10,000 fills")
    limited = format_fills({"fills": [fill], "total": 9, "limit": 1, "kept": 10_000})
    assert "raise --limit" in limited and "size limit" not in limited


def _positions_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    from supervisor import main
    from tests.helpers import make_config, to_toml

    cfg = tmp_path / "config.toml"
    cfg.write_text(to_toml(make_config(venues=("simA",))))
    dirs = ("--state-dir", str(tmp_path / "state"), "--runtime-dir", "/tmp/tp-never-created")
    code = main(["positions", "--config", str(cfg), *dirs, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_positions_limit_out_of_range_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One stderr line and exit 2, before anything is asked; no traceback."""
    code, _, err = _positions_cli(tmp_path, capsys, "--limit", "0")
    assert code == 2 and "limit" in err and err.count("\n") == 1 and "Traceback" not in err


def test_compare_refuses_a_positions_list_the_reply_cut(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OMS answered 1 of 5 positions: comparing would list the 4 unseen as differences,
    so it is refused (exit 1, naming --venue), not a false verdict."""
    from actors.supervisor.commands import positions as command
    from protocol import commands as wire
    from protocol.messages import ControlReply

    def answer(cfg: object, request: object, timeout_s: float) -> ControlReply:
        if isinstance(request, wire.Positions):
            return ControlReply(status="ok", data={"positions": [_row("simA", "A", "1")],
                                                   "total": 5})  # fmt: skip
        return ControlReply(status="ok", data={"positions": []})

    monkeypatch.setattr(command, "control_request", answer)
    desk = tmp_path / "desk.csv"
    desk.write_text("venue,symbol,qty\nsimA,A,1\n")
    code, out, err = _positions_cli(tmp_path, capsys, "--compare", str(desk))
    assert code == 1 and "--venue" in err and "difference" not in out
