"""The allowed-sender table (actors.runtime.senders): who may send which message to an
internal ROUTER, by the routing identity of a connection the gate let in."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.runtime.senders import ALLOWED, refusal, sender_of
from protocol.domain import OrdType, Side, VenueConnState
from protocol.messages import (
    CancelOrder,
    ExecReport,
    GetPositions,
    KillSwitchCommand,
    MassCancel,
    Message,
    OpenOrdersRequest,
    PlaceOrder,
    RiskCheck,
    StreamEvent,
    SubmitOrder,
    VenueStateChanged,
)

PLACE = PlaceOrder(cl_ord_id="c1", symbol="AAPL", side=Side.BUY, qty=Decimal(1),
                   order_type=OrdType.LIMIT, price=Decimal(1))  # fmt: skip
FILL = ExecReport(venue="simA", exec_id="E1", kind="fill", cl_ord_id="c1")
CHECK = RiskCheck(client_order_id="c1", venue="simA", symbol="AAPL", side=Side.BUY,
                  qty=Decimal(1), order_type=OrdType.LIMIT, price=Decimal(1))  # fmt: skip
SUBMIT = SubmitOrder(client_order_id="c1", venue="simA", symbol="AAPL", side=Side.BUY,
                     qty=Decimal(1), order_type=OrdType.LIMIT, price=Decimal(1))  # fmt: skip


def test_sender_of_reads_actor_id_and_kind_from_the_routing_identity() -> None:
    assert sender_of(b"connector.simA:17") == ("connector.simA", "connector")
    assert sender_of(b"oms:1") == ("oms", "oms")
    assert sender_of(b"\x00\x8b\x45") == ("\x00\ufffdE", "\x00\ufffdE")  # a random id


@pytest.mark.parametrize(
    ("identity", "body", "allowed"),
    [
        (b"oms:5", PLACE, True),
        (b"heartbeat:5", PLACE, False),
        (b"risk:5", PLACE, False),
        (b"connector.simB:5", PLACE, False),
        (b"oms:5", OpenOrdersRequest(), True),
        (b"heartbeat:5", OpenOrdersRequest(), False),
        (b"risk:5", MassCancel(reason="ks"), True),
        (b"oms:5", MassCancel(reason="ks"), False),
        (b"connector.simA:5", FILL, True),
        (b"connector.simB:5", FILL, False),  # another venue's connector
        (b"oms:5", FILL, False),
        (
            b"connector.simA:5",
            VenueStateChanged(venue="simA", state=VenueConnState.CONNECTED),
            True,
        ),
        (
            b"connector.simB:5",
            VenueStateChanged(venue="simA", state=VenueConnState.CONNECTED),
            False,
        ),
        (b"oms:5", CHECK, True),
        (b"heartbeat:5", CHECK, False),
        (b"heartbeat:5", StreamEvent(event_seq=0, event="position_snapshot"), True),
        (b"connector.simA:5", StreamEvent(event_seq=0, event="position_snapshot"), False),
        (b"risk:5", StreamEvent(event_seq=0, event="kill_switch"), True),
        (b"heartbeat:5", StreamEvent(event_seq=0, event="kill_switch"), False),
        (b"oms:5", SUBMIT, False),  # client requests only on the client endpoint
        (b"oms:5", CancelOrder(client_order_id="c1"), False),
        (b"heartbeat:5", GetPositions(), True),  # a read: any system actor
        (b"connector.simA:5", GetPositions(), True),
    ],
)
def test_each_privileged_message_is_taken_only_from_its_senders(
    identity: bytes, body: Message, allowed: bool
) -> None:
    assert (refusal(identity, body) is None) is allowed, refusal(identity, body)


@pytest.mark.parametrize(
    ("identity", "source", "allowed"),
    [
        (b"oms:5", "oms", True),
        (b"heartbeat:5", "heartbeat", True),
        (b"oms:5", "", True),
        (b"oms:5", "operator", False),
        (b"oms:5", "heartbeat", False),
        (b"heartbeat:5", "supervisor", False),
        (b"connector.simA:5", "connector", False),  # connectors do not engage at all
    ],
)
def test_an_engagement_source_must_be_its_sender(
    identity: bytes, source: str, allowed: bool
) -> None:
    cmd = KillSwitchCommand(action="engage", reason="r", source=source)
    assert (refusal(identity, cmd) is None) is allowed


def test_status_of_the_switch_is_a_read_whatever_its_default_source() -> None:
    assert refusal(b"oms:5", KillSwitchCommand(action="status")) is None


def test_every_type_in_the_table_is_a_message_type() -> None:
    from protocol.messages import MESSAGE_TYPES

    assert set(ALLOWED) <= set(MESSAGE_TYPES)


@pytest.mark.parametrize(
    ("identity", "sender", "allowed"),
    [
        (b"oms:5", "oms", True),
        (b"oms:5", "heartbeat", False),
        (b"connector.simA:5", "connector.simB", False),
        (b"connector.simA:5", "connector.simA", True),
    ],
)
def test_the_envelope_sender_must_be_the_connections_actor(
    identity: bytes, sender: str, allowed: bool
) -> None:
    assert (refusal(identity, GetPositions(), sender) is None) is allowed  # reads too


def test_an_engagement_without_source_under_another_sender_is_refused() -> None:
    body = KillSwitchCommand(action="engage", reason="r", source="")
    assert refusal(b"oms:5", body, "oms") is None
    assert refusal(b"oms:5", body, "heartbeat") is not None
