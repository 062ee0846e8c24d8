"""A cold start's positions answer without a cut the OMS can account for is not taken as
the opening position: the pass asks again with a backoff (actors/oms/opening_ask.py) and
ends only with an answer it can take; past `ASKS` the pass fails and is retried as a pass.
The real `VenueLink` and `PlanApplier` on the stub OMS of `tests.oms.test_venue_link`."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import structlog
from structlog.testing import capture_logs

from actors.oms import opening_ask
from actors.oms.exec_cut import ExecLog
from actors.oms.venue_link import VenueLink
from actors.runtime import metrics
from protocol.messages import (
    OPENING_POSITIONS,
    GetPositions,
    OpenOrders,
    OpenOrdersRequest,
    OrderStatus,
    Positions,
    PositionView,
    Side,
    VenueConnState,
    VenueOrder,
)
from protocol.venue_messages import ExecCut, ExecReport
from tests.oms.test_cold_opening_cut import CONNECTOR_EPOCH, OMS_EPOCH, _ColdOms
from tests.oms.test_venue_link import CONNECTOR, StubPeer, V

EXT2 = VenueOrder(cl_ord_id="EXT2", venue_order_id="V2", symbol="ABC", side=Side.BUY,
                  order_qty=D(60), price=D(100), status=OrderStatus.ACCEPTED, cum_qty=D(0),
                  avg_px=D(0), leaves_qty=D(60))  # fmt: skip
NO_CUT = ExecCut(connector_epoch=CONNECTOR_EPOCH, exec_seq=6, oms_epoch=None)
CUT_6 = ExecCut(connector_epoch=CONNECTOR_EPOCH, exec_seq=6, oms_epoch=OMS_EPOCH)


def _positions(cut: ExecCut, qty: int = 40) -> Positions:
    held = PositionView(venue=V, symbol="ABC", qty=D(qty), avg_px=D(100))
    return Positions(source="venue", venue=V, cut=cut, positions=[held])


def _cold_link(tmp_path: Path) -> tuple[VenueLink, _ColdOms, StubPeer, ExecLog]:
    """A cold start's pass with EXT2 adopted, the venue listing it (consistent cut at 5):
    the pass now waits for the venue's positions."""
    oms = _ColdOms(tmp_path / "cold")
    oms.book.adopt(V, EXT2, 1)
    exec_log, peer = ExecLog(), StubPeer()
    link = VenueLink(V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger(),
                     exec_log=exec_log, oms_epoch=OMS_EPOCH, rand=lambda: 0.5)  # fmt: skip
    link.on_state(VenueConnState.CONNECTED, CONNECTOR_EPOCH, "logged on")
    open_cut = ExecCut(connector_epoch=CONNECTOR_EPOCH, exec_seq=5, oms_epoch=OMS_EPOCH)
    assert isinstance(peer.answer(OpenOrders(venue=V, orders=[EXT2], cut=open_cut)),
                      OpenOrdersRequest)  # fmt: skip
    return link, oms, peer, exec_log


def _fill_6(oms: _ColdOms, exec_log: ExecLog) -> None:
    """EXT2 fills 10 (exec_seq 6) and the OMS applies it (its ack late, not lost)."""
    fill = ExecReport(venue=V, exec_id="E6", kind="fill", cl_ord_id="EXT2", exec_seq=6,
                      last_qty=D(10), last_px=D(100), cum_qty=D(10))  # fmt: skip
    exec_log.note_outcome(fill, CONNECTOR_EPOCH, oms.book.apply_exec(fill, 2))


def _fire(oms: _ColdOms) -> float:
    """Run the one timer set (the stub OMS's loop), returning its delay."""
    assert len(oms.timers) == 1, oms.timers
    delay_s, fn = oms.timers.pop()
    fn()
    return delay_s


def _opening(oms: _ColdOms) -> list[str]:
    return [e for e, _ in oms.streams if e == OPENING_POSITIONS]


def test_positions_asked_again_are_taken_once_an_answer_comes_with_a_consistent_cut(
    tmp_path: Path,
) -> None:
    """The first answer's cut names no OMS epoch (the connector's wait for our ack of fill
    6 ran out) and the fill reaches the OMS after it: not taken, the venue is not
    reconciled (nothing sent, new orders refused), risk is told nothing; positions are
    asked again after a backoff, letting the connector wait longer for our acks, logged and
    counted. The second answer again has no consistent cut: asked again, after a longer
    delay, with a longer wait. The third's cut is at 6, with the
    fill applied here: the opening position is the venue's 40 (not 50), risk is told, the
    pass ends."""
    link, oms, peer, exec_log = _cold_link(tmp_path)
    counter = metrics.OPENING_POSITIONS_RETRIES.labels(venue=V)
    before = counter._value.get()  # noqa: SLF001
    with capture_logs() as logs:
        assert isinstance(peer.answer(_positions(NO_CUT)), GetPositions)
        _fill_6(oms, exec_log)
        assert not link.ever_reconciled and not link.ready and oms.reconciled == []
        assert _opening(oms) == [] and peer.sent == []
        first_s = _fire(oms)
        first = peer.answer(_positions(NO_CUT))
        assert not link.ever_reconciled and _opening(oms) == []
        second_s = _fire(oms)
        second = peer.answer(_positions(CUT_6))
    # each ask lets the connector wait longer for our acks than its own 0.1 s
    assert isinstance(first, GetPositions) and isinstance(second, GetPositions)
    assert (first.wait_s, second.wait_s) == (0.25, 0.5)
    retries = [e for e in logs if e["event"] == "opening_positions_retry"]
    assert [(e["attempt"], e["reason"], e["wait_s"]) for e in retries] == [
        (1, "no consistent execution cut", 0.25),
        (2, "no consistent execution cut", 0.5),
    ]
    assert 0 < first_s < second_s, (first_s, second_s)
    assert counter._value.get() - before == 2  # noqa: SLF001
    assert link.ever_reconciled and link.ready and oms.reconciled == [True]
    assert oms.book.position(V, "ABC").qty == 40
    assert _opening(oms) == [OPENING_POSITIONS]
    assert oms.timers == [] and peer.sent == [] and link.status_text == "reconciled"


def test_a_venue_never_answering_with_a_consistent_cut_fails_the_pass_then_a_later_pass_takes(
    tmp_path: Path,
) -> None:
    """Constant fills: no answer comes with a consistent cut. Every ask waits a backoff (no
    request without a timer between: the loop is never spun); past `ASKS` asks the pass
    fails (`reconcile_failing: opening positions: ...` for the operator) and the link's
    retry runs a whole pass later; once executions pause its answer has a consistent cut
    and is taken."""
    link, oms, peer, _ = _cold_link(tmp_path)
    delays: list[float] = []
    assert isinstance(peer.answer(_positions(NO_CUT, 30)), GetPositions)
    for _ in range(opening_ask.ASKS):
        delays.append(_fire(oms))
        assert isinstance(peer.answer(_positions(NO_CUT, 30)), GetPositions)
    assert delays == sorted(delays) and delays[0] >= opening_ask.INITIAL_S * 0.9
    assert not link.ever_reconciled and _opening(oms) == []
    assert link.status_text == "reconcile_failing: opening positions: no consistent execution cut"
    assert link.retry.failures == 1 and peer.sent == []
    _fire(oms)  # the link's retry of the failed pass
    cut = ExecCut(connector_epoch=CONNECTOR_EPOCH, exec_seq=5, oms_epoch=OMS_EPOCH)
    assert isinstance(peer.answer(OpenOrders(venue=V, orders=[EXT2], cut=cut)), OpenOrdersRequest)
    assert isinstance(peer.answer(_positions(cut, 30)), GetPositions)
    assert link.ever_reconciled and link.status_text == "reconciled"
    assert oms.book.position(V, "ABC").qty == 30 and _opening(oms) == [OPENING_POSITIONS]


def test_an_ask_answered_after_the_connector_restarted_is_ignored(tmp_path: Path) -> None:
    """The connector restarts while positions are asked again: the pass is given up (a new
    one owns the venue); the late answer takes nothing."""
    link, oms, peer, _ = _cold_link(tmp_path)
    assert isinstance(peer.answer(_positions(NO_CUT)), GetPositions)
    _fire(oms)
    asked, late = peer.sent.pop(0)
    assert isinstance(asked, GetPositions) and peer.sent == []
    link.on_state(VenueConnState.CONNECTED, CONNECTOR_EPOCH + 1, "logged on")
    assert isinstance(peer.sent[0][0], OpenOrdersRequest)  # the new incarnation's pass
    late(CONNECTOR.envelope(_positions(CUT_6)))
    assert not link.ever_reconciled and _opening(oms) == []


def test_an_answer_with_no_cut_at_all_is_not_taken(tmp_path: Path) -> None:
    """Every connector of this build stamps a cut: an answer without one (another build, a
    bug) could hold a fill the OMS applies only later, so it is asked again like an
    inconsistent one, never taken as the opening position (review rev15)."""
    link, oms, peer, _ = _cold_link(tmp_path)
    held = PositionView(venue=V, symbol="ABC", qty=D(40), avg_px=D(100))
    with capture_logs() as logs:
        asked = peer.answer(Positions(source="venue", venue=V, positions=[held]))
    assert isinstance(asked, GetPositions)
    assert peer.sent == [] and not link.ever_reconciled and _opening(oms) == []
    _fire(oms)  # asked again after the backoff
    assert isinstance(peer.sent[0][0], GetPositions) and not link.ever_reconciled
    assert oms.book.position(V, "ABC").qty == 0
    retry = [e for e in logs if e["event"] == "opening_positions_retry"]
    assert [e["reason"] for e in retry] == ["no execution cut"], logs
