"""`queued_note` (actors/oms/queued_request.py): the operator's `cancel` of an order whose
venue cannot be sent to says it is queued at the OMS, why, and what sends it; by the
venue's connector stopped by an operator, given up on, or just not connected."""

from __future__ import annotations

from decimal import Decimal
from typing import cast

from actors.oms.queued_request import QUEUED, NotedReply, note, queued_note
from actors.runtime.operator_stops import OperatorStop
from actors.runtime.peer import Replier
from protocol.messages import (
    Ack,
    ErrorCode,
    Message,
    OrderAck,
    OrderStatus,
    OrderView,
    OrdType,
    RequestRejected,
    Side,
    VenueConnState,
)
from tests.oms.test_cancel_during_place import placing
from tests.oms.test_venue_link import CONNECTED, V

BY = "alice (uid 1000, pid 9)"


def test_a_stopped_connector_is_named_with_who_stopped_it_and_start() -> None:
    stop = OperatorStop("connector.simB", "maintenance", 0.0, "simB", by=BY)
    assert queued_note("simB", "DISCONNECTED", stop) == (
        "queued at the OMS, not sent: connector.simB is stopped (by operator alice:"
        " maintenance); sent once `tradepulse start connector.simB` and simB is reconciled"
    )


def test_a_connector_given_up_on_is_named_with_why_and_restart() -> None:
    stop = OperatorStop("connector.simB", "exit 65", 0.0, "simB", gave_up="state_corrupt")
    assert queued_note("simB", "DISCONNECTED", stop) == (
        "queued at the OMS, not sent: connector.simB gave up (state_corrupt); sent once"
        " `tradepulse restart connector.simB` and simB is reconciled"
    )


def test_a_venue_not_connected_otherwise_is_named_with_its_state() -> None:
    assert queued_note("simB", "DOWN", None) == (
        "queued at the OMS, not sent: simB is DOWN; sent once its connector is logged on and"
        " simB is reconciled"
    )


class _Link:
    def __init__(
        self, *, ready: bool = False, queued: bool = True, in_flight: bool = False
    ) -> None:
        self.ready, self.status_text = ready, "DISCONNECTED"
        self.state = VenueConnState.DISCONNECTED
        self._queued, self._in_flight = queued, in_flight

    def is_waiting(self, client_order_id: str) -> bool:
        return self._queued or self._in_flight

    def is_in_flight(self, client_order_id: str) -> bool:
        return self._in_flight


class _Gate:
    def stopped(self) -> dict[str, OperatorStop]:
        return {"simB": OperatorStop("connector.simB", "maintenance", 0.0, "simB", by=BY)}


def _view(status: OrderStatus) -> OrderView:
    return OrderView(
        client_order_id="x-1", venue="simB", symbol="AAPL", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=Decimal("95"), status=status,
    )  # fmt: skip


def test_only_a_request_waiting_in_the_queue_of_a_venue_not_ready_gets_the_note() -> None:
    """Not one handed to the connector (in flight, or sent: it may reach the venue), nor one
    to a ready venue, nor an order with no cancel or replace pending."""
    gate, pending = _Gate(), _view(OrderStatus.PENDING_CANCEL)
    assert (note({"simB": _Link()}, gate, pending) or "").startswith(QUEUED)
    assert note({"simB": _Link()}, gate, _view(OrderStatus.PENDING_REPLACE)) is not None
    assert note({"simB": _Link(in_flight=True)}, gate, pending) is None
    assert note({"simB": _Link(queued=False)}, gate, pending) is None
    assert note({"simB": _Link(ready=True)}, gate, pending) is None
    assert note({"simB": _Link()}, gate, _view(OrderStatus.ACCEPTED)) is None


def test_the_note_is_the_answers_reason_and_nothing_else_changes() -> None:
    answered: list[Message] = []
    reply = NotedReply(cast(Replier, answered.append), {"simB": _Link()}, _Gate())
    reply(OrderAck(order=_view(OrderStatus.PENDING_CANCEL), duplicate=True))
    [ack] = answered
    assert isinstance(ack, OrderAck) and ack.duplicate
    assert ack.order.reason.startswith(QUEUED + "connector.simB is stopped (by operator alice")
    assert ack.order.model_copy(update={"reason": ""}) == _view(OrderStatus.PENDING_CANCEL)
    reply.reject(ErrorCode.UNKNOWN_ORDER, "no order")
    assert isinstance(answered[-1], RequestRejected)


class _NoStops:
    def stopped(self) -> dict[str, OperatorStop]:
        return {}


def test_a_cancel_waiting_for_the_pass_of_a_logged_on_venue_is_not_told_to_wait_for_a_logon() -> (
    None
):
    """Found in review: a venue CONNECTED but not reconciled yet (its connector restarted or
    logged on again, the pass under way) queues a cancel too, and the note said "simB is
    CONNECTED; sent once its connector is logged on", which it is. It now says the venue is
    logged on and waits for its reconciliation pass, and names nothing else to do."""
    link, oms, peer = placing()
    assert peer.answer(Ack(ref="p")).type == "place_order"
    oms.book.apply_venue_status("x-1", OrderStatus.ACCEPTED, 3)
    link.on_state(CONNECTED, 8, "logged on")  # a new incarnation: its pass under way
    assert link.state is VenueConnState.CONNECTED and not link.ready
    assert oms.book.request_cancel("x-1", 4).applied
    link.push("x-1")
    view = oms.book.get("x-1")
    assert view is not None and link.is_waiting("x-1") and not link.is_in_flight("x-1")
    said = note({V: link}, _NoStops(), view.view())
    assert said is not None and said.startswith(QUEUED), said
    assert "logged on" not in said.split("; sent once", 1)[1], said
    assert said == (
        f"{QUEUED}{V} is logged on, its reconciliation pass not done yet (CONNECTED);"
        f" sent once {V} is reconciled"
    )
