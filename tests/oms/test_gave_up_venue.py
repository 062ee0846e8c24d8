"""A venue whose connector the supervisor gave up on (`gave_up` in the stops file,
`actors.runtime.operator_stops`): the OMS refuses its new orders at once, VENUE_DOWN with a
reason naming the connector and why (not accepted and sent to no connector, to go UNKNOWN
and be resubmitted hours later), rejects its queued never-sent orders, and tells a submitter
whose order it dropped during the risk round trip VENUE_DOWN; an operator's stop keeps its
own refusal (INTAKE_PAUSED). The real `IntakeGate`, `Intake` and `OmsActor.drop_unsent` on
the stub OMS of test_trading_after_close."""

from __future__ import annotations

import time
from decimal import Decimal as D
from pathlib import Path

from actors.oms.intake import Intake
from actors.oms.intake_state import IntakeGate, unsent_reason
from actors.oms.orders import DROPPED_GAVE_UP
from actors.runtime.operator_stops import OperatorStop, write_stops
from protocol.messages import ErrorCode, OrderStatus, OrdType, Side, SubmitOrder
from tests.oms.test_journal_space import V, _Reply
from tests.oms.test_trading_after_close import _Oms, _rig

CORRUPT = "its state is corrupt (state_corrupt in its log; runbook: Corrupt state files)"


def _gate(oms: _Oms, tmp_path: Path) -> Path:
    """The OMS's real gate, reading a stops file under `tmp_path` (returned)."""
    stops = tmp_path / "rt" / "operator_stops.json"
    stops.parent.mkdir()
    oms.gate = IntakeGate(tmp_path, stops, [V], oms.log)  # type: ignore[assignment]
    return stops


def _gave_up(stops: Path, why: str = "state_corrupt", reason: str = CORRUPT) -> None:
    stop = OperatorStop(f"connector.{V}", reason, time.time(), V, gave_up=why)
    write_stops(stops, {f"connector.{V}": stop})


def _submit(intake: Intake, coid: str = "o9") -> _Reply:
    msg = SubmitOrder(client_order_id=coid, venue=V, symbol="ABC", side=Side.BUY,
                      qty=D(1), order_type=OrdType.LIMIT, price=D(95))  # fmt: skip
    reply = _Reply()
    intake.submit(msg, reply)  # type: ignore[arg-type]
    return reply


def test_a_new_order_is_refused_venue_down_naming_the_connector_and_why(tmp_path: Path) -> None:
    oms, risk, intake = _rig()
    stops = _gate(oms, tmp_path)
    _gave_up(stops)
    reply = _submit(intake)
    assert oms.book.get("o9") is None and not risk.pending  # never journalled, nor asked
    [(code, reason, _field)] = reply.rejections
    assert code is ErrorCode.VENUE_DOWN
    assert reason.startswith(f"{V} is down: connector.{V} gave up: state_corrupt, its state")
    assert f"`tradepulse restart connector.{V}`" in reason
    assert oms.gate.venue_text(V, "reconciled") == "gave up (state_corrupt)"
    view = oms.gate.view()
    assert view["stopped"] == {} and view["gave_up"] == {V: f"state_corrupt: {CORRUPT}"}
    write_stops(stops, {})  # spawned again: its record goes, the venue takes orders
    assert _submit(intake, "o10").rejections == [] and len(risk.pending) == 1


def test_over_its_restart_budget_is_refused_the_same_way(tmp_path: Path) -> None:
    oms, _risk, intake = _rig()
    _gave_up(_gate(oms, tmp_path), "restart_intensity", "over its restart budget")
    [(code, reason, _field)] = _submit(intake).rejections
    assert code is ErrorCode.VENUE_DOWN and "gave up: restart_intensity" in reason


def test_an_operator_stop_keeps_its_own_refusal(tmp_path: Path) -> None:
    oms, _risk, intake = _rig()
    stops = _gate(oms, tmp_path)
    stop = OperatorStop(f"connector.{V}", "maintenance", time.time(), V)
    write_stops(stops, {f"connector.{V}": stop})
    [(code, reason, _field)] = _submit(intake).rejections
    assert code is ErrorCode.INTAKE_PAUSED and "stopped by an operator" in reason


def test_a_queued_never_sent_order_is_rejected_not_sent_later(tmp_path: Path) -> None:
    """Approved and queued before the give-up: once the OMS's poll sees it, the order is
    REJECTED with DROPPED_GAVE_UP (what `VenueLink.drop_unsent` does for each queued one);
    after the connector is spawned again (its record gone) an order is sent as usual."""
    oms, risk, intake = _rig()
    stops = _gate(oms, tmp_path)
    _submit(intake)
    risk.approve("o9")
    oms.run_pending()
    order = oms.book.get("o9")
    assert order is not None and order.status is OrderStatus.PENDING_SUBMIT
    assert oms.link.pushed == ["o9"]  # queued on the venue link
    _gave_up(stops)
    assert oms.gate.poll_stops().keys() == {V}
    assert unsent_reason(False, False, oms.gate, V) == DROPPED_GAVE_UP
    assert oms.drop_unsent("o9") is True
    order = oms.book.get("o9")
    assert order is not None and order.status is OrderStatus.REJECTED
    assert order.reason == DROPPED_GAVE_UP
    write_stops(stops, {})
    assert unsent_reason(False, False, oms.gate, V) is None


def test_a_give_up_during_the_risk_check_is_told_as_venue_down(tmp_path: Path) -> None:
    oms, risk, intake = _rig()
    stops = _gate(oms, tmp_path)
    reply = _submit(intake)
    _gave_up(stops)  # seen while risk decides
    oms.gate.poll_stops()
    risk.approve("o9")
    oms.run_pending()
    order = oms.book.get("o9")
    assert order is not None and order.status is OrderStatus.REJECTED
    assert order.reason == DROPPED_GAVE_UP and oms.link.pushed == []
    assert reply.answers == []
    assert [r[0] for r in reply.rejections] == [ErrorCode.VENUE_DOWN]
