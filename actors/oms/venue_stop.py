"""A venue whose connector is stopped, as its `VenueLink` takes it: stopped by an operator
(`tradepulse stop connector.V`) or given up on by the supervisor, both read from the stops
file (`OmsActor.poll_stops`, `IntakeGate.poll_stops`).

Either way the venue is DISCONNECTED at the OMS from the moment the stop is read, so the
two are one rule: its never-sent orders are dropped (rejected, not sent at its next start),
nothing more is sent to that connector (no request, periodic pass or retry), and a cancel
or replace asked meanwhile is queued, as for any venue that is not connected: it is sent
once the next incarnation has logged on and its reconciliation pass has run (which may find
the order already done, then nothing is sent), once. Found by review: an operator's stop
left the venue CONNECTED and reconciled, so a cancel went to the stopped connector's socket
and was answered "cancel requested" while nothing reached the venue; it waited out
`oms.request_timeout_s` (`venue_request_unconfirmed`) while the socket kept it, and the
next incarnation then sent it before its pass had run, with the pass's own resend of the
unconfirmed cancel racing it: the same request twice.

They differ in what was in flight. A connector given up on is a dead process: what it
never answered fails at once (a PlaceOrder goes UNKNOWN, a pass fails). One an operator
stops is asked to stop after the stop is written, and logs out first: it may still answer
what it was sent (an Ack of a cancel it did send), so its requests run to their deadline
(one unanswered is queued again, `actors.oms.sent_answer`), and a CONNECTED it still sends
(a state refresh, a pass's open orders) is not taken (`hides`): that incarnation stays
DISCONNECTED here until the stop goes (`lifted`).

The stop is read every 0.1 s, and by a link before it hands a request to the connector
(`VenueLink.dispatch`): a connector with nothing to log out exits ~20 ms after the stop is
written, and a cancel sent in between went to a socket with no process behind it, kept for
the next incarnation (found in review: tests/integration/test_cancel_before_stop_read.py).
"""

from __future__ import annotations

from typing import Protocol

from actors.oms.link_host import VenuePeer
from actors.runtime.operator_stops import OperatorStop
from protocol.messages import VenueConnState


class StoppedLink(Protocol):
    """The slice of a `VenueLink` a stop acts on."""

    state: VenueConnState
    reconciled: bool
    connector_epoch: int | None
    peer: VenuePeer

    def drop_unsent(self, *, out_of_session: bool = False) -> None: ...

    def announce(self, state: VenueConnState, epoch: int, detail: str) -> None: ...


class StopHold:
    """One venue link's stop: `seen` when the OMS reads it, `lifted` when it goes."""

    def __init__(self, link: StoppedLink) -> None:
        self._link = link
        self._epoch: int | None = None  # the connector incarnation an operator stopped

    def seen(self, stop: OperatorStop) -> None:
        """The stop (`stop.gave_up`: the supervisor's give-up, why) stands for the
        DISCONNECTED its connector does not send (a killed process, or one stopping): not
        ready first, then its queued never-sent orders dropped (held: a Resubmit of them is
        rejected); a give-up also fails what its dead connector never answered (as at a
        restart: the pass in flight fails, a PlaceOrder goes UNKNOWN)."""
        link = self._link
        link.state, link.reconciled = VenueConnState.DISCONNECTED, False
        link.drop_unsent()
        if stop.gave_up is not None:
            link.peer.fail_pending()
            detail = f"connector gave up: {stop.gave_up}"
        else:
            self._epoch = link.connector_epoch
            detail = f"connector {stop.describe()}"
        link.announce(link.state, link.connector_epoch or 0, detail)

    def hides(self, epoch: int) -> bool:
        """A CONNECTED (state, or open orders answered) of connector incarnation `epoch` is
        not taken: the one an operator stopped, while the stop holds."""
        return epoch == self._epoch

    def lifted(self) -> None:
        """The stop went: its incarnation, if it ran on (a stop across hosts the edge did not
        carry out), is heard again (its next state refresh, the pass `hold_lifted` retries)."""
        self._epoch = None
