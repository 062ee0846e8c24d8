"""A resubmission the connector never sent is not an attempt: it is taken back.

Reconciliation resubmits an order the venue says it never saw, journalling a `resubmit`
(counted toward `max_resubmits`, `actors.oms.reconcile_rules`) before the PlaceOrder goes
out. The connector may then not send it after all:

- the ccxt connector looks a resend up by client id first (never sent twice), and when
  that lookup is inconclusive (the exchange does not answer), or its session ended before
  the submit ran, it sends nothing and says so: an `ExecReport` of kind "unsent" (exec id
  `<ClOrdID>:unsent:<ns>`, delivered and applied once like any execution);
- any connector refuses a PlaceOrder it cannot send (RequestRejected VENUE_DOWN: not
  logged on, the session dropped before it went out; FIX's way). One refused
  OUT_OF_SESSION is rejected instead, as any order not sent before the close
  (`VenueLink`), and taken back only if it is not.

Either way the OMS journals a `resubmit_unsent` event, which takes one back from
`Order.resubmits` (in memory and on replay alike, so the count is right after a kill -9).
It keeps the resubmission's grace (`resubmitted_at_s`): the next resend comes only after
`resubmit_grace_s`, as after one that went out. Not every "unsent" means nothing is in
flight ("a submit of this client id is running" means one is), and a resend that keeps
going unsent (the exchange failing its lookups for good) then costs one lookup, two
journal records and a warning per grace, not per pass. So an order the venue cannot be
asked about for minutes is not escalated for that; one the venue keeps not knowing after
`max_resubmits` resends that did go out still is. Only a never-acknowledged order with a
resubmission to take back changes: an initial send refused unsent is queued again as
before, and a report for an order that moved on since is acknowledged and changes nothing.
"""

from __future__ import annotations

from typing import Any, Protocol

from actors.oms.lifecycle import NEVER_ACKNOWLEDGED, Event
from actors.oms.orders import Order, Outcome

EVENT = "order_resubmit_unsent"  # logged (warning) for each resubmission taken back,
# counted in tradepulse_oms_resubmits_unsent_total{venue}


class _Book(Protocol):
    def record_event(
        self, client_order_id: str, event: Event, ts_ns: int, **fields: Any
    ) -> Outcome: ...


class UnsentLink(Protocol):
    """The slice of a `VenueLink` a take-back is logged and counted with."""

    venue: str
    log: Any


def take_back(book: _Book, order: Order, ts_ns: int, exec_id: str = "") -> Outcome:
    """The order's latest resend was not sent: its `resubmit_unsent` record, or a
    "duplicate" outcome (nothing to take back) that changes nothing."""
    if order.resubmits <= 0 or order.ever_acknowledged or order.status not in NEVER_ACKNOWLEDGED:
        return Outcome("duplicate", order, reason="no resubmission to take back")
    return book.record_event(order.client_order_id, Event.RESUBMIT_UNSENT, ts_ns, exec_id=exec_id)


def taken_back(link: UnsentLink, order: Order, why: str) -> None:
    """After `take_back` applied: logged and counted. The grace stays (see above)."""
    # imported here: the book imports this module, and the fork server loads the book before
    # its setup gives prometheus_client its metrics dir (`forkserver.WARM_BY_KIND`)
    from actors.runtime import metrics  # noqa: PLC0415 - see above

    metrics.RESUBMITS_UNSENT.labels(venue=link.venue).inc()
    link.log.warning(
        EVENT,
        venue=link.venue,
        client_order_id=order.client_order_id,
        cl_ord_id=order.cl_ord_id,
        resubmits=order.resubmits,
        reason=why[:200],
    )
