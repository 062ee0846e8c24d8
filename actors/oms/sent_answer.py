"""What a `VenueLink` (actors/oms/venue_link.py) does with a request it handed to the
connector (PlaceOrder, CancelOrder, ReplaceOrder) that the connector did not acknowledge:

- refused as not sent (RequestRejected VENUE_DOWN: not logged on; OUT_OF_SESSION): queued
  for the next CONNECTED and pass; a new order refused out of session is rejected (nothing
  goes into a later session); a resubmission is taken back (`actors.oms.resubmit_unsent`)
  and the pass after its grace resubmits it;
- refused as never sendable (an invalid order, `refused_as_invalid`): rejected, never
  resubmitted;
- no answer, or another refusal: the connector may or may not have sent it, so venue
  evidence decides: a PlaceOrder goes UNKNOWN, a cancel or replace is queued again, and a
  pass runs, unless the venue is held off (its session closed, its connector stopped by an
  operator or given up on by the supervisor: `VenueLink.unconfirmed`); the connector's next
  CONNECTED runs it then. A connector given up on fails what it never answered at once
  (`actors.oms.venue_stop`): a pass started then went to a process that is gone.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from actors.oms.link_host import LinkHost
from actors.oms.resubmit_unsent import take_back, taken_back
from actors.oms.venue_request import refused_as_invalid
from actors.runtime.tally import TURN
from protocol.codec import Envelope
from protocol.messages import ErrorCode, OrderStatus, RequestRejected

_NOT_SENT = (ErrorCode.VENUE_DOWN, ErrorCode.OUT_OF_SESSION)  # a connector's refusals


class SentLink(Protocol):
    """The slice of a `VenueLink` an unacknowledged request is settled with."""

    venue: str
    host: LinkHost
    log: Any
    depth_gauge: Any

    @property
    def depth(self) -> int: ...

    def enqueue(self, client_order_id: str) -> None: ...

    def refused_sending(self) -> None:
        """The connector is not logged on: not ready until its next CONNECTED."""
        ...

    def unconfirmed(self) -> None:
        """A request's fate is unknown: not reconciled; a pass decides it now, unless the
        venue is held off."""
        ...


def unacknowledged(link: SentLink, coid: str, kind: str, reply: Envelope | None) -> None:
    """The connector's answer to the `kind` request of order `coid` was not an Ack (None:
    no answer by its deadline, or the connector is gone)."""
    host, body = link.host, None if reply is None else reply.body
    if isinstance(body, RequestRejected) and body.code in _NOT_SENT:
        closed = body.code is ErrorCode.OUT_OF_SESSION
        dropped = closed and host.drop_unsent(coid, out_of_session=True)
        order = host.book.get(coid) if kind == "place_order" and not dropped else None
        back = None if order is None else take_back(host.book, order, time.time_ns())
        if order is not None and back is not None and host.record(back).applied:
            taken_back(link, order, f"connector refused: {body.reason}")
        elif not dropped:
            link.enqueue(coid)
        link.refused_sending()
        TURN.set(link.depth_gauge, link.depth)
        return
    invalid = refused_as_invalid(reply) if kind == "place_order" else None
    if invalid is not None:  # never sent and never sendable: rejected, not resubmitted
        reason = f"connector refused: {invalid}"
        link.log.warning("order_unsendable", client_order_id=coid, reason=reason)
        rejected = host.book.apply_venue_status(
            coid, OrderStatus.REJECTED, time.time_ns(), reason=reason
        )
        host.record(rejected)
        return
    reason = "no connector answer" if reply is None else f"connector refused: {body}"
    link.log.warning("venue_request_unconfirmed", client_order_id=coid, request=kind, reason=reason)
    if kind == "place_order":
        order = host.book.get(coid)
        if order is not None and order.status is OrderStatus.PENDING_SUBMIT:
            host.record(host.book.mark_unknown(coid, reason, time.time_ns()))
    else:
        link.enqueue(coid)
    link.unconfirmed()
