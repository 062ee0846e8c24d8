"""Did each order reach its venue once: the checker's `acked_order_at_venue_exactly_once`
(one order at the venue, or one refusal an exchange recorded) and `no_inflight_resubmit`
(a resubmit of an order the venue already had). Pure, called by `checker.check`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from actors.oms.orders import (
    DROPPED_OUT_OF_SESSION,
    DROPPED_OUTSIDE_TRADING_WINDOW,
    DROPPED_STOPPED,
    DROPPED_UNSENT,
)

if TYPE_CHECKING:
    from tests.chaos.checker import Invariant, Observations, _VenueOrder


def _refused(venues: Mapping[str, Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    """(venue, ClOrdID) -> how often the venue refused a new order under it and kept no
    order (an exchange's refusal: funds, filters); a duplicate's refusal (OrdRejReason 6)
    is not counted: the venue has the order it duplicates."""
    return Counter(
        (name, str(r.get("cl_ord_id")))
        for name, data in venues.items()
        for r in data.get("rejects", [])
        if r.get("ord_rej_reason") != 6
    )


def check_acked(
    inv: dict[str, Invariant],
    obs: Observations,
    submits: Mapping[str, Any],
    oms: Mapping[str, Any],
    by_head: Mapping[str, list[_VenueOrder]],
) -> None:
    """Each acknowledged order reached its venue once: one order there, or (an exchange,
    which keeps no order for a refusal) one refusal recorded there and the OMS REJECTED.
    More sends than one only if the OMS resubmitted it on the venue's word that it had
    none (`no_inflight_resubmit` judges those)."""
    refused = _refused(obs.venues)
    resubmitted = {(str(e.get("venue")), str(e.get("cl_ord_id"))) for e in obs.resubmits}
    for coid, s in submits.items():
        if s.result != "acked":
            continue
        order = oms.get(coid)
        if order is None:
            inv["no_acked_order_lost"].fail(
                f"{coid}: acknowledged to the client, unknown to the OMS"
            )
            continue
        at = by_head.get(coid, [])
        wrong = [vo.venue for vo in at if vo.venue != order["venue"]]
        mine = [vo for vo in at if vo.venue == order["venue"]]
        if wrong:
            inv["acked_order_at_venue_exactly_once"].fail(
                f"{coid}: at venue(s) {wrong}, sent to {order['venue']}"
            )
        refusals = refused[(order["venue"], coid)]
        if len(mine) > 1:
            ids = [vo.data.get("order_id") for vo in mine]
            inv["acked_order_at_venue_exactly_once"].fail(
                f"{coid}: {len(mine)} orders at {order['venue']}: {ids}"
            )
        elif len(mine) + refusals > 1 and (order["venue"], coid) not in resubmitted:
            inv["acked_order_at_venue_exactly_once"].fail(
                f"{coid}: sent {len(mine) + refusals} times to {order['venue']}: "
                f"{len(mine)} order(s), {refusals} refusal(s)"
            )
        elif (
            not mine
            and not (refusals and order["status"] == "REJECTED")
            and order["status"] != "UNKNOWN"
            and not _dropped_unsent(order)
        ):
            why = f" ({order.get('reason')})" if order.get("reason") else ""
            inv["acked_order_at_venue_exactly_once"].fail(
                f"{coid}: acknowledged, OMS says {order['status']}{why}, not at {order['venue']}"
            )


def _dropped_unsent(order: Mapping[str, Any]) -> bool:
    """Acknowledged, then rejected unsent because the kill-switch was engaged meanwhile
    (or the venue's trading session closed, the trading window closed, or an operator
    stopped its connector)."""
    reasons = (
        DROPPED_UNSENT,
        DROPPED_OUT_OF_SESSION,
        DROPPED_OUTSIDE_TRADING_WINDOW,
        DROPPED_STOPPED,
    )
    return order["status"] == "REJECTED" and order.get("reason") in reasons


def check_resubmits(inv: dict[str, Invariant], obs: Observations) -> None:
    """A resubmitted order must be one the venue never had: a resubmit the venue refused
    as a duplicate ClOrdID (OrdRejReason 6), or that an exchange now holds twice, was of an
    order whose submit was still in flight when a reconciliation pass judged it (issue 16).
    A duplicate refused in a PossDup copy is not a second send: the venue asked for its
    messages again (it restarted and lost its inbound sequence) and got the same D."""
    duplicates = {
        (venue, str(r.get("cl_ord_id")))
        for venue, data in obs.venues.items()
        for r in data.get("rejects", [])
        if r.get("ord_rej_reason") == 6 and not r.get("poss_dup")
    } | {
        (venue, str(cl))
        for venue, data in obs.venues.items()
        for cl in data.get("duplicate_client_ids", [])
    }
    for e in obs.resubmits:
        key = (str(e.get("venue")), str(e.get("cl_ord_id")))
        if key in duplicates:
            inv["no_inflight_resubmit"].fail(
                f"{key[1]}@{key[0]}: resubmitted, and the venue already had it (duplicate)"
            )
