"""The order state machine: the events an order goes through and the transition table that
says which (status, event) pairs are allowed and where they lead. Pure data, no I/O.

`LIVE` resolves to FILLED / PARTIALLY_FILLED / ACCEPTED by cum_qty (`live_status`), `STAY`
keeps the status (a fill during a pending cancel/replace, or a late fill on a CANCELLED /
EXPIRED / REJECTED order: applied, reported as a `late_fill` escalation). A pair missing
from `TRANSITIONS` is refused and never applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Final, Literal

from protocol.domain import member_of, status_of
from protocol.messages import OrderStatus

S = OrderStatus


class Event(StrEnum):
    RISK_APPROVED = "risk_approved"
    RISK_REJECTED = "risk_rejected"
    TIMEOUT = "timeout"  # no venue answer in time: outcome unknown
    RESUBMIT = "resubmit"  # the venue said it never saw the order: send again, same id
    RESUBMIT_UNSENT = "resubmit_unsent"  # that resend never left the connector: not counted
    CANCEL_REQUESTED = "cancel_requested"
    REPLACE_REQUESTED = "replace_requested"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE_REJECTED = "duplicate_rejected"  # venue refused a resend as duplicate ClOrdID
    PARTIAL_FILL = "partial_fill"
    FULL_FILL = "full_fill"
    CANCELLED = "cancelled"
    REPLACED = "replaced"
    # replaced at the venue by someone else (no request of ours): `actors.oms.executions`
    REPLACED_EXTERNALLY = "replaced_externally"
    CANCEL_REJECTED = "cancel_rejected"  # also a rejected replace (FIX 35=9)
    EXPIRED = "expired"


event_of: Final = member_of(Event)  # Event(value), as a dict lookup

LIVE: Final = "LIVE"
STAY: Final = "STAY"
Target = OrderStatus | Literal["LIVE", "STAY"]

NEVER_ACKNOWLEDGED: Final = (S.PENDING_SUBMIT, S.UNKNOWN)  # sent, no venue answer yet
WORKING: Final = (S.ACCEPTED, S.PARTIALLY_FILLED)  # live at the venue, nothing asked
REQUEST_PENDING: Final = (S.PENDING_CANCEL, S.PENDING_REPLACE)  # a cancel/replace asked
AT_VENUE: Final = NEVER_ACKNOWLEDGED + WORKING + REQUEST_PENDING
CUT_SHORT: Final = (S.CANCELLED, S.EXPIRED, S.REJECTED)  # terminal, not by filling


def _rows(
    states: Iterable[OrderStatus], event: Event, target: Target
) -> dict[tuple[OrderStatus, Event], Target]:
    return {(s, event): target for s in states}


TRANSITIONS: Mapping[tuple[OrderStatus, Event], Target] = MappingProxyType(
    {
        (S.PENDING_RISK, Event.RISK_APPROVED): S.PENDING_SUBMIT,
        (S.PENDING_RISK, Event.RISK_REJECTED): S.REJECTED,
        (S.PENDING_SUBMIT, Event.TIMEOUT): S.UNKNOWN,
        (S.PENDING_SUBMIT, Event.DUPLICATE_REJECTED): S.UNKNOWN,
        **_rows(NEVER_ACKNOWLEDGED, Event.RESUBMIT, S.PENDING_SUBMIT),
        **_rows(NEVER_ACKNOWLEDGED, Event.RESUBMIT_UNSENT, STAY),
        **_rows(NEVER_ACKNOWLEDGED, Event.ACCEPTED, S.ACCEPTED),
        **_rows(NEVER_ACKNOWLEDGED, Event.REJECTED, S.REJECTED),
        **_rows(NEVER_ACKNOWLEDGED + WORKING, Event.PARTIAL_FILL, S.PARTIALLY_FILLED),
        **_rows(REQUEST_PENDING + CUT_SHORT, Event.PARTIAL_FILL, STAY),
        **_rows(AT_VENUE, Event.FULL_FILL, S.FILLED),
        **_rows(CUT_SHORT, Event.FULL_FILL, STAY),
        **_rows(WORKING, Event.CANCEL_REQUESTED, S.PENDING_CANCEL),
        **_rows(WORKING, Event.REPLACE_REQUESTED, S.PENDING_REPLACE),
        **_rows(AT_VENUE, Event.CANCELLED, S.CANCELLED),
        **_rows(AT_VENUE, Event.EXPIRED, S.EXPIRED),
        (S.PENDING_REPLACE, Event.REPLACED): LIVE,
        # a replace confirmed after we gave up on it (checked by `Order.shows_replace`)
        **_rows(WORKING + (S.PENDING_CANCEL,), Event.REPLACED, STAY),
        **_rows(REQUEST_PENDING, Event.CANCEL_REJECTED, LIVE),
        # the venue says so: live on the reported terms; a request of ours stays pending
        **_rows(NEVER_ACKNOWLEDGED + WORKING, Event.REPLACED_EXTERNALLY, LIVE),
        **_rows(REQUEST_PENDING, Event.REPLACED_EXTERNALLY, STAY),
    }
)
"""(status, event) -> target. A pair that is missing is refused and never applied."""


def transition(status: OrderStatus, event: Event) -> Target | None:
    return TRANSITIONS.get((status, event))


def live_status(cum_qty: Decimal, qty: Decimal) -> OrderStatus:
    """The status of an order working at the venue with `cum_qty` of `qty` filled."""
    if cum_qty >= qty:
        return S.FILLED
    return S.PARTIALLY_FILLED if cum_qty > 0 else S.ACCEPTED


def resolve(
    status: OrderStatus, event: Event, cum_qty: Decimal, qty: Decimal
) -> OrderStatus | None:
    """The status `event` moves an order in `status` to (None: refused), `LIVE` and
    `STAY` resolved for an order with `cum_qty` of `qty` filled."""
    target = transition(status, event)
    if target is None or target == STAY:
        return None if target is None else status
    if target == LIVE:
        return live_status(cum_qty, qty)
    return status_of(target)
