"""The operator views through the real CLI (`python supervisor.py ...`) against a running
system with one simulated venue: `orders`, `fills`, `positions`, `positions --compare` and
`exposure` (risk's own view) answer from the OMS's book and risk, as tables and as
`--json`, bounded by `--limit` with the total that matched."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.oms.views import unrealized_pnl
from protocol.messages import OrderStatus
from tests.helpers import REPO_ROOT, SUPERVISOR, SystemUnderTest, eventually
from tests.integration.oms_support import overrides, settle, start, systems
from tests.system_ops import SYMBOL, VENUE, client, find_venue_order, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal


def _run(sut: SystemUnderTest, *argv: str, code: int = 0) -> str:
    out = sut.cli(*argv)
    assert out.returncode == code, f"{argv}: exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out.stdout


def _json(sut: SystemUnderTest, *argv: str, code: int = 0) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(_run(sut, *argv, "--json", code=code))
    return reply


def _views_overrides() -> dict[str, Any]:
    """One quiet venue; the heartbeat asks the venue often, so its positions are known."""
    cfg = overrides()
    cfg["heartbeat"] |= {"interval_s": 0.3, "venue_positions_interval_s": 0.3}
    return cfg


def test_orders_fills_positions_and_desk_compare_through_the_cli(tmp_path: Path) -> None:
    """A market buy of 700 (two fills), a resting limit buy and a market sell of 200 (a
        partial close). `orders` lists all three newest first (`--open`: the resting one only;
        `--limit 1`: one row, total 3; `--symbol`/`--since` filter); `fills` lists exactly the
        venue's executions; `positions` shows OMS 500 = venue 500 = risk 500 with the average
        price of the buys, the realised P&L of the sell and the unrealised P&L at the last
        execution price; `--compare` exits 0 on a matching desk file and 1 naming each
        difference (a wrong qty, a row the OMS does not have); `journal inspect` filters the
    same orders' records by order id and kind; after a restart fills and prices are kept."""
    with systems() as started:
        sut = start(started, overrides=_views_overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, qty="700", price=None, client_order_id="v-buy")
            c.wait_for_status("v-buy", {OrderStatus.FILLED})
            submit_when_open(c, VENUE, client_order_id="v-rest")  # BUY 10 @ 95: rests
            submit_when_open(c, VENUE, "SELL", "200", None, client_order_id="v-sell")
            final = settle(c, sut, ["v-buy", "v-rest", "v-sell"])

        orders = _json(sut, "orders")
        assert orders["status"] == "ok" and orders["data"]["total"] == 3
        ids = [o["client_order_id"] for o in orders["data"]["orders"]]
        assert ids == ["v-sell", "v-rest", "v-buy"]  # newest first
        open_ = _json(sut, "orders", "--open")["data"]
        assert [o["client_order_id"] for o in open_["orders"]] == ["v-rest"]
        limited = _json(sut, "orders", "--limit", "1")["data"]
        assert (len(limited["orders"]), limited["total"]) == (1, 3)
        assert _json(sut, "orders", "--symbol", "NOPE")["data"]["total"] == 0
        assert _json(sut, "orders", "--since", "1h")["data"]["total"] == 3
        future = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3600))
        assert _json(sut, "orders", "--since", future)["data"]["total"] == 0
        table = _run(sut, "orders", "--venue", VENUE)
        assert "STATUS" in table and "v-rest" in table and "3 orders" in table

        fills = _json(sut, "fills")["data"]
        venue_fills = {
            f["exec_id"]: f
            for coid in ("v-buy", "v-sell")
            for f in (find_venue_order(final.venue, coid) or {})["fills"]
        }
        assert {f["exec_id"] for f in fills["fills"]} == set(venue_fills)
        assert fills["total"] == len(venue_fills) >= 3
        for f in fills["fills"]:
            assert (D(f["qty"]), D(f["px"])) == (
                D(venue_fills[f["exec_id"]]["qty"]),
                D(venue_fills[f["exec_id"]]["px"]),
            )
        assert [f["client_order_id"] for f in fills["fills"]][0] == "v-sell"  # newest first
        assert "EXEC_ID" in _run(sut, "fills", "--symbol", SYMBOL)

        buys = [f for f in fills["fills"] if f["client_order_id"] == "v-buy"]
        avg = sum((D(f["qty"]) * D(f["px"]) for f in buys), D(0)) / D(700)
        sells = [f for f in fills["fills"] if f["client_order_id"] == "v-sell"]
        realised = sum((D(f["qty"]) * (D(f["px"]) - avg) for f in sells), D(0))
        last_px = D(fills["fills"][0]["px"])

        def settled() -> dict[str, Any] | None:
            reply = _json(sut, "positions")
            [row] = reply["data"]["positions"]
            agree = (row["qty"], row["venue_qty"], row["risk_qty"]) == ("500", "500", "500")
            return reply if agree else None

        reply = eventually(settled, 15.0, message="OMS, venue and risk positions at 500")
        [row] = reply["data"]["positions"]
        assert (row["venue"], row["symbol"]) == (VENUE, SYMBOL)
        assert abs(D(row["avg_px"]) - avg) < D("1e-9")
        assert abs(D(row["realized_pnl"]) - realised) < D("1e-9") and D(row["realized_pnl"]) < 0
        assert D(row["last_px"]) == last_px
        expected_u = unrealized_pnl(D(500), D(row["avg_px"]), last_px)
        assert D(row["unrealized_pnl"]) == expected_u
        assert row["cost_known"] is True and reply["data"]["total"] == 1
        last_fill_ts = fills["fills"][0]["ts_ns"]
        assert row["last_px_ts_ns"] == last_fill_ts  # the price is dated by its execution
        text = _run(sut, "positions")
        assert "UNREALISED_PNL" in text and SYMBOL in text and "LAST_PX_AGE" in text
        assert "cost unknown" not in text and "VENUE_QTY ?" not in text  # the venue's own
        # risk's own view (what its limits read), as a table; --json keeps the reply
        header, risk_row, day_line = _run(sut, "exposure").splitlines()
        assert header.split() == ["VENUE", "SYMBOL", "QTY", "AVG_PX", "REALIZED_PNL"]
        assert risk_row.split()[:3] == [VENUE, SYMBOL, "500"]
        exposure = _json(sut, "exposure")["data"]
        assert [r["qty"] for r in exposure["positions"]] == ["500"]
        daily = exposure["daily"]  # the trading day's figures (max_daily_loss reads them)
        assert D(daily["realized_pnl"]) == D(row["realized_pnl"])
        assert D(daily["daily_realized_pnl"]) == D(daily["realized_pnl"]) - D(daily["baseline"])
        assert day_line.startswith(f"trading day {exposure['daily']['day']} (since ")

        same = tmp_path / "desk.csv"
        same.write_text(f"venue,symbol,qty\n{VENUE},{SYMBOL},500\n")
        assert "no differences" in _run(sut, "positions", "--compare", str(same))
        assert _json(sut, "positions", "--compare", str(same))["data"]["differences"] == []

        wrong = tmp_path / "wrong.csv"
        wrong.write_text(f"venue,symbol,qty\n{VENUE},{SYMBOL},400\n{VENUE},MSFT,-50\n")
        out = _run(sut, "positions", "--compare", str(wrong), code=1)
        assert "2 difference(s)" in out and "MSFT" in out and "(missing)" in out
        diffs = _json(sut, "positions", "--compare", str(wrong), code=1)["data"]["differences"]
        assert [(d["symbol"], d["desk_qty"], d["oms_qty"]) for d in diffs] == [
            (SYMBOL, "400", "500"),
            ("MSFT", "-50", None),
        ]

        journal = _run(sut, "journal", "inspect", "--order-id", "v-sell").splitlines()
        assert journal[0].split()[:4] == ["TIME", "SEQ", "KIND", "ORDER"]
        assert len(journal) > 3 and all(line.split()[3] == "v-sell" for line in journal[1:])
        out = _run(sut, "journal", "inspect", "--kind", "fill", "--json")
        journal_fills = [json.loads(line)["data"]["exec_id"] for line in out.splitlines()]
        assert sorted(journal_fills) == sorted(venue_fills)

        other = tmp_path / "other.csv"  # with --venue, the file's other venues are not compared
        other.write_text(f"venue,symbol,qty\n{VENUE},{SYMBOL},500\nsimZ,{SYMBOL},7\n")
        assert "no differences" in _run(sut, "positions", "--venue", VENUE, "--compare", str(other))
        assert "simZ" in _run(sut, "positions", "--compare", str(other), code=1)

        bom = tmp_path / "bom.csv"  # as a spreadsheet saves it: a BOM, spaces after commas
        bom.write_text(f"\ufeffvenue, symbol, qty\n{VENUE}, {SYMBOL}, 500\n", encoding="utf-8")
        assert "no differences" in _run(sut, "positions", "--compare", str(bom))
        nan = tmp_path / "nan.csv"
        nan.write_text(f"venue,symbol,qty\n{VENUE},{SYMBOL},NaN\n")
        out_nan = sut.cli("positions", "--compare", str(nan))
        assert out_nan.returncode == 2 and "nan.csv:2" in out_nan.stderr
        assert "not a finite number" in out_nan.stderr and "Traceback" not in out_nan.stderr

        bad = tmp_path / "bad.csv"
        bad.write_text("venue,sym,qty\n")
        out_bad = sut.cli("positions", "--compare", str(bad))
        assert out_bad.returncode == 2 and "symbol" in out_bad.stderr
        assert "Traceback" not in out_bad.stderr

        # a restart replays the journal snapshot the stop wrote: fills and prices are kept
        assert sut.stop() == 0
        again = start(started, root=sut.root, overrides=_views_overrides())
        assert _json(again, "fills")["data"]["fills"] == fills["fills"]
        [kept] = _json(again, "positions")["data"]["positions"]
        assert {k: kept[k] for k in ("qty", "avg_px", "last_px", "realized_pnl")} == {
            k: row[k] for k in ("qty", "avg_px", "last_px", "realized_pnl")
        }
        assert again.stop() == 0


def test_a_view_piped_into_a_reader_that_is_gone_exits_0_quietly(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """`tradepulse orders | head -1` (the reader gone before the table is written) ends
    quietly, exit 0 and nothing on stderr, as `journal inspect` and `fix log` do: it was
    `tradepulse orders: Broken pipe` and exit 1, a failure where there is none."""
    sut = start_system(venues=(VENUE,))
    for cmd in ("orders", "fills", "positions", "status", "exposure"):
        argv = [sys.executable, str(SUPERVISOR), cmd, *sut.cli_args()]
        proc = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=sut.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdout is not None
        proc.stdout.close()
        _, err = proc.communicate(timeout=60)
        assert (cmd, proc.returncode, err.decode()) == (cmd, 0, "")


def test_views_when_the_system_is_not_running(tmp_path: Path) -> None:
    """Without a running supervisor `orders`, `fills` and `positions` say so in one line
    and exit 3 (the documented code), no traceback."""
    sut = SystemUnderTest(venues=(VENUE,), overrides=_views_overrides(), root=None)
    try:
        for cmd in ("orders", "fills", "positions"):
            out = sut.cli(cmd)
            assert out.returncode == 3, (cmd, out.stdout, out.stderr)
            assert "no supervisor running" in out.stderr and "Traceback" not in out.stderr
    finally:
        sut.destroy()
