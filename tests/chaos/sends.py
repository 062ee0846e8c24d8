"""Did each order reach its venue once: the checker's `acked_order_at_venue_exactly_once`
(one order at the venue, or one refusal an exchange recorded) and `no_inflight_resubmit`
(a resubmit of an order the venue already had). Pure, called by `checker.check`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from actors.oms.orders import (
    DROPPED_GAVE_UP,
    DROPPED_OUT_OF_SESSION,
    DROPPED_OUTSIDE_TRADING_WINDOW,
    DROPPED_STOPPED,
    DROPPED_UNSENT,
)

if TYPE_CHECKING:
    from tests.chaos.checker import Invariant, Observations, _VenueOrder


def _refused(venues: Mapping[str, Mapping[str, Any]]) -> dict[tuple[str, str], list[Any]]:
    """(venue, ClOrdID) -> the venue's refusals of a new order under it for which it kept
    no order (an exchange's refusal: funds, filters); a duplicate's refusal (OrdRejReason 6)
    is not one: the venue has the order it duplicates."""
    out: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for name, data in venues.items():
        for r in data.get("rejects", []):
            if r.get("ord_rej_reason") != 6:
                out[(name, str(r.get("cl_ord_id")))].append(r)
    return out


def _refused_this(refusals: list[Mapping[str, Any]], order: Mapping[str, Any]) -> bool:
    """Is one of `refusals` (under the order's ClOrdID) of this order: its symbol, side and
    quantity (a refusal recorded without one of them, by an older exchange log, is not
    compared on it)? Another order under the same ClOrdID says nothing about this one."""
    return any(
        r.get("symbol") in (None, order.get("symbol"))
        and r.get("side") in (None, order.get("side"))
        and (r.get("qty") is None or _dec(r["qty"]) == _dec(order.get("qty")))
        for r in refusals
    )


def _dec(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


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
    resubmitted = Counter((str(e.get("venue")), str(e.get("cl_ord_id"))) for e in obs.resubmits)
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
        key = (order["venue"], coid)
        refusals = len(refused[key])
        if len(mine) > 1:
            ids = [vo.data.get("order_id") for vo in mine]
            inv["acked_order_at_venue_exactly_once"].fail(
                f"{coid}: {len(mine)} orders at {order['venue']}: {ids}"
            )
        elif len(mine) + refusals > 1 + resubmitted[key]:
            inv["acked_order_at_venue_exactly_once"].fail(
                f"{coid}: sent {len(mine) + refusals} times to {order['venue']}: "
                f"{len(mine)} order(s), {refusals} refusal(s)"
            )
        elif (
            not mine
            and not (order["status"] == "REJECTED" and _refused_this(refused[key], order))
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
    stopped its connector, or the supervisor gave up on it)."""
    reasons = (
        DROPPED_UNSENT,
        DROPPED_OUT_OF_SESSION,
        DROPPED_OUTSIDE_TRADING_WINDOW,
        DROPPED_STOPPED,
        DROPPED_GAVE_UP,
    )
    return order["status"] == "REJECTED" and order.get("reason") in reasons


def check_resubmits(inv: dict[str, Invariant], obs: Observations) -> None:
    """A resubmitted order must be one the venue never had: a resubmit the venue refused
    as a duplicate ClOrdID (OrdRejReason 6), that an exchange now holds twice, or that an
    exchange refused (funds, filters) after it had taken the order (`after_order`), was of
    an order whose submit was still in flight when a reconciliation pass judged it (issue
    16). A duplicate refused in a PossDup copy is not a second send: the venue asked for
    its messages again (it restarted and lost its inbound sequence) and got the same D.
    A ClOrdID a venue refused as a duplicate (not in a PossDup copy), or an exchange refused
    after taking it, and nobody resubmitted (a replace's leg, an order sent again) was sent
    twice (`no_duplicate_cl_ord_id`), at a FIX venue as at an exchange."""
    again = {
        (venue, str(r.get("cl_ord_id")))
        for venue, data in obs.venues.items()
        for r in data.get("rejects", [])
        if r.get("after_order") or (r.get("ord_rej_reason") == 6 and not r.get("poss_dup"))
    }
    duplicates = again | {
        (venue, str(cl))
        for venue, data in obs.venues.items()
        for cl in data.get("duplicate_client_ids", [])
    }
    resubmitted = set()
    for e in obs.resubmits:
        key = (str(e.get("venue")), str(e.get("cl_ord_id")))
        resubmitted.add(key)
        if key in duplicates:
            inv["no_inflight_resubmit"].fail(
                f"{key[1]}@{key[0]}: resubmitted, and the venue already had it (duplicate)"
            )
    for venue, cl in sorted(again - resubmitted):
        inv["no_duplicate_cl_ord_id"].fail(
            f"{venue}: client id {cl} sent again while the venue had it (refused)"
        )
