"""The connector's open-orders answer names the connection it came from: its state version
while CONNECTED (`OpenOrders.version`), so the OMS tells a reconnect whose CONNECTED it has
not heard yet from one it has (`actors.oms.conn_version`); no version otherwise."""

from __future__ import annotations

from types import SimpleNamespace

from actors.connector.actor import ConnectorActor
from protocol.messages import VenueConnState
from protocol.venue_messages import ExecCut


def _answer(state: VenueConnState, version: int) -> int | None:
    conn = SimpleNamespace(venue="simA", state=state, _state_version=version)
    cut = ExecCut(connector_epoch=7, exec_seq=0)
    return ConnectorActor._open_orders(conn, [], cut).version  # type: ignore[arg-type]


def test_an_answer_while_connected_carries_the_state_version() -> None:
    assert _answer(VenueConnState.CONNECTED, 5) == 5


def test_an_answer_while_not_connected_carries_none() -> None:
    """Should one come while the session is not up: no connection to name, nothing the
    OMS would take for a logon."""
    assert _answer(VenueConnState.DISCONNECTED, 6) is None
