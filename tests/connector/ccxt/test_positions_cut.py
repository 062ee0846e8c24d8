"""A ccxt positions answer and the execution cut the connector stamps on it, through the
real adapter classes (`Queries`, `Flows`, `Tracker`), the connector's numbering
(`ExecSequencer`), the OMS's positions as of a cut (`ExecLog`) and the heartbeat's
difference (`position_diff`), against a stub exchange whose account trades while its
balance is read.

The balance is consistent with the cut only if no fill was queued between the read and
the answer: a fill queued meanwhile may be one the exchange made after it answered.
`Queries.positions` reads again when one was; when fills keep arriving past the last read
(sustained flow, or a slow read on a loaded machine) the answer must name no consistent
cut. It answered the last balance with a consistent one: the heartbeat then saw the venue
behind the OMS by the fills that came in during that read (a false `position_divergence`,
seen once in `test_position_heartbeat_agrees` under `make test`). A real difference is
still compared at the cut.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from decimal import Decimal
from pathlib import Path
from typing import Any

from actors.connector.adapter import NoConsistentCut, RequestFailed
from actors.connector.ccxt.intents import IntentLog
from actors.connector.ccxt.queries import POSITION_READS, Queries
from actors.connector.ccxt.tracker import Tracker
from actors.connector.exec_cut import ExecSequencer
from actors.oms.exec_cut import ExecLog
from actors.position_heartbeat.track import position_diff
from protocol.ccxt_config import CcxtCfg
from protocol.messages import ExecCut, ExecReport, PositionView, Side
from tests.connector.ccxt import binance as bn
from tests.connector.ccxt.test_flows import bare_flows
from tests.log_stub import RecordingLog

D = Decimal
VENUE = "bx-1"
BTC = "BTC/USDT"
BASELINE = D(1000)
CONNECTOR_EPOCH, OMS_EPOCH = 5, 9


class _Account:
    """The exchange: a BTC balance, and trades of ours that land while a balance request is
    in flight (`trades_during_reads`: how many reads each see one). A trade lands after
    the exchange read the balance for its answer, and the user-data stream delivers its
    fill before that answer comes back: the fill is queued (as `UserStream.watch_trades`
    does), the balance answered lacks it."""

    def __init__(self, tracker: Tracker, trades_during_reads: int) -> None:
        self.tracker = tracker
        self.btc = BASELINE
        self.trades_left = trades_during_reads
        self.trades = 0
        self.reads = 0

    def trade(self, qty: str, *, reported: bool = True) -> None:
        self.trades += 1
        self.btc += D(qty)
        if reported:
            self.tracker.queue([_fill(self.trades, qty)])

    async def fetch_balance(self) -> dict[str, Any]:
        self.reads += 1
        answer = bn.fetch_balance(
            {"balances": [{"asset": "BTC", "free": str(self.btc), "locked": "0"}]}
        )
        if self.trades_left:
            self.trades_left -= 1
            self.trade("0.01")
        return answer


def _fill(n: int, qty: str) -> ExecReport:
    return ExecReport(
        venue=VENUE, exec_id=f"{100 + n}:t{n}", kind="fill", cl_ord_id=f"o{n}",
        venue_order_id=str(100 + n), symbol=BTC, side=Side.BUY, order_qty=D(qty),
        last_qty=D(qty), last_px=D(60000), cum_qty=D(qty),
    )  # fmt: skip


class _Venue:
    """The ccxt adapter's queries over the stub exchange, the connector's numbering with
    an OMS that has applied (and acked) every execution handed on, and the OMS's log."""

    def __init__(
        self, tmp_path: Path, trades_during_reads: int, account: type[_Account] = _Account
    ) -> None:
        self.intents = IntentLog(tmp_path / "intents")
        self.tracker = Tracker(VENUE, self.intents, RecordingLog(), lambda: None)
        self.account = account(self.tracker, trades_during_reads)
        self.flows = flows = bare_flows(self.account, self.tracker, self.intents, venue=VENUE)
        ccfg = CcxtCfg(
            api_key_env="TP_TEST_KEY", secret_env="TP_TEST_SECRET", symbols=[BTC],
            position_baseline={"BTC": BASELINE},
        )  # fmt: skip
        self.queries = Queries(VENUE, ccfg, flows, RecordingLog())
        self.cuts = ExecSequencer(CONNECTOR_EPOCH, OrderedDict())
        self.cuts.oms_seen(OMS_EPOCH)
        self.oms = ExecLog()
        self.oms_btc = D(0)

    def hand_on(self) -> None:
        """The connector's turn (`CcxtAdapter.flush`, `ConnectorActor.on_execs`): the
        queued executions are numbered and the OMS applies them."""
        for report in self.cuts.number(self.tracker.take()):
            qty = report.last_qty if report.kind == "fill" else D(0)  # our orders all buy
            self.oms.note(VENUE, CONNECTOR_EPOCH, report.exec_seq, report.cl_ord_id, BTC,
                          qty)  # fmt: skip
            self.oms_btc += qty

    def positions(self) -> tuple[list[PositionView] | NoConsistentCut[list[PositionView]], int]:
        """The adapter's answer, and `exec_mark` when it came (the connector's cut)."""
        got: list[tuple[Any, int]] = []

        def done(result: Any) -> None:
            got.append((result, self.tracker.exec_mark))

        asyncio.run(self.queries.positions(done))
        self.intents.close()
        [(result, mark)] = got
        assert not isinstance(result, RequestFailed), result
        return result, mark

    def heartbeat_diff(self, positions: list[PositionView], mark: int) -> dict[str, Decimal]:
        """What the heartbeat sees of a plain answer: the connector stamps it with the cut
        at `mark` (the OMS acked every execution: its epoch is named), the OMS answers its
        positions as of that cut, the heartbeat takes venue - OMS."""
        stamped: list[ExecCut] = []
        self.cuts.when_consistent(since=0, mark=mark, now_s=0.0, done=stamped.append)
        self.hand_on()  # what was queued up to the cut (and after it) reaches the OMS
        self.cuts.poll(0.0)
        [cut] = stamped
        assert cut.oms_epoch == OMS_EPOCH, cut
        at_cut = self.oms.positions_as_of(VENUE, cut, {BTC: self.oms_btc})
        assert at_cut is not None
        return position_diff({p.symbol: p.qty for p in positions}, at_cut)


def test_a_balance_read_while_fills_keep_arriving_names_no_consistent_cut(
    tmp_path: Path,
) -> None:
    """A fill lands during every balance read, the last one too: that balance lacks a fill
    the connector has queued (and the cut it stamps would hold). The answer must not claim
    that cut: the heartbeat would see the venue 0.01 BTC behind the OMS, a divergence that
    is not there."""
    venue = _Venue(tmp_path, trades_during_reads=POSITION_READS)
    result, _mark = venue.positions()
    assert venue.account.reads == POSITION_READS
    assert isinstance(result, NoConsistentCut), (
        f"a plain answer {result} claims the cut of {venue.tracker.fills_queued} fills, "
        f"its balance holds {venue.account.trades - 1}"
    )
    [btc] = result.answer
    assert btc.qty == D("0.02")  # the last balance read: shown, compared by nobody


def test_a_balance_read_again_after_a_fill_holds_the_cut(tmp_path: Path) -> None:
    """A fill lands during the first read only: the balance is read again, holds it, and the
    answer's cut is consistent: venue and OMS agree at it."""
    venue = _Venue(tmp_path, trades_during_reads=1)
    result, mark = venue.positions()
    assert venue.account.reads == 2
    assert isinstance(result, list), result
    assert [(p.symbol, p.qty) for p in result] == [(BTC, D("0.01"))]
    assert venue.heartbeat_diff(result, mark) == {}


def test_a_real_difference_is_still_compared_at_the_cut(tmp_path: Path) -> None:
    """A trade the exchange made whose fill never reached us (no flow meanwhile): the answer
    names a consistent cut and the heartbeat sees the venue 0.01 BTC ahead, at tolerance 0."""
    venue = _Venue(tmp_path, trades_during_reads=0)
    venue.account.trade("0.01")
    venue.hand_on()
    venue.account.trade("0.01", reported=False)
    result, mark = venue.positions()
    assert venue.account.reads == 1
    assert isinstance(result, list), result
    assert venue.heartbeat_diff(result, mark) == {BTC: D("0.01")}
