"""`tradepulse exposure` prints risk's positions as a table, one row per venue and symbol
(it printed the reply's JSON); an error, or a reply not in risk's shape, prints as sent."""

from __future__ import annotations

from actors.supervisor.commands.exposure import Exposure
from protocol.messages import ControlReply

_POSITIONS = [
    {"venue": "simB", "symbol": "AAPL", "qty": "-300", "avg_px": "190.365",
     "realized_pnl": "12.3456"},
    {"venue": "simA", "symbol": "MSFT", "qty": "5", "avg_px": "410.0", "realized_pnl": "0"},
    {"venue": "simA", "symbol": "AAPL", "qty": "300", "avg_px": "190.4614285714285714285714286",
     "realized_pnl": "-1.005"},
]  # fmt: skip


def test_the_reply_prints_one_row_per_venue_and_symbol_in_order() -> None:
    text = Exposure().format(ControlReply(status="ok", data={"positions": _POSITIONS}))
    rows = [line.split() for line in text.splitlines()]
    assert rows == [
        ["VENUE", "SYMBOL", "QTY", "AVG_PX", "REALIZED_PNL"],
        ["simA", "AAPL", "300", "190.461429", "-1.00"],  # 6 and 2 places, half even
        ["simA", "MSFT", "5", "410.0", "0"],
        ["simB", "AAPL", "-300", "190.365", "12.35"],
    ]
    header, *lines = text.splitlines()
    at = header.index("QTY")  # the columns line up under their header
    assert [line[at:].split()[0] for line in lines] == ["300", "5", "-300"]


def test_no_positions_is_said() -> None:
    assert Exposure().format(ControlReply(status="ok", data={"positions": []})) == "no positions"


def test_an_error_or_another_shape_prints_as_sent() -> None:
    error = ControlReply(status="error", reason="risk has not rebuilt its exposure")
    assert Exposure().format(error) == "error: risk has not rebuilt its exposure"
    odd = ControlReply(status="ok", data={"positions": ["simA"]})
    assert Exposure().format(odd) == 'ok\n{\n  "positions": [\n    "simA"\n  ]\n}'


def test_a_position_of_unknown_cost_shows_no_avg_price() -> None:
    """A cold start's opening position the venue gave no cost for (`cost_known` false):
    AVG_PX `-` as in `positions`, not its avg_px 0 (or the average of adds to it)."""
    row = {"venue": "simA", "symbol": "AAPL", "qty": "110", "avg_px": "4.5454",
           "realized_pnl": "0", "cost_known": False}  # fmt: skip
    text = Exposure().format(ControlReply(status="ok", data={"positions": [row]}))
    assert text.splitlines()[1].split() == ["simA", "AAPL", "110", "-", "0"]
