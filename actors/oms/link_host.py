"""What a `VenueLink` (actors/oms/venue_link.py) needs of its venue's connector and of the
OMS: the link and the OMS do not import each other."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from actors.oms.order_book import OrderBook
from actors.oms.orders import Outcome
from actors.oms.plan import Action, Plan
from actors.runtime.operator_stops import OperatorStop
from protocol.codec import Envelope
from protocol.messages import Message, Positions

# `link` below is the calling `actors.oms.venue_link.VenueLink` (Any: naming it here would
# be an import circle)
VenueLink = Any


class VenuePeer(Protocol):
    """The venue's connector as the link talks to it (`actors.runtime.actor.Peer`)."""

    def request(
        self, body: Message, callback: Callable[[Envelope | None], None], timeout_s: float
    ) -> str: ...

    def request_many(
        self, items: Sequence[tuple[Message, Callable[[Envelope | None], None]]], timeout_s: float
    ) -> None: ...

    def fail_pending(self) -> None: ...


class UnsentHolder(Protocol):
    def hold(self, venue: str, *, out_of_session: bool = False) -> None:
        """At a queue drop: a Resubmit of the venue's never-sent book orders is rejected."""
        ...


class OperatorStops(Protocol):
    @property
    def stopped_venues(self) -> frozenset[str]:
        """The venues whose connector the operator stopped (as of the last poll)."""
        ...

    def stopped(self) -> Mapping[str, OperatorStop]:
        """venue -> its connector's stop, as the stops file reads this loop turn."""
        ...

    def stopped_now(self) -> Mapping[str, OperatorStop]:
        """`stopped`, the file read now (not as this loop turn first read it)."""
        ...


class LinkHost(Protocol):
    """What a VenueLink needs of the OMS (`actors.oms.actor.OmsActor` provides it)."""

    def after_commit(self, fn: Callable[[], None], *, first: bool = False) -> None: ...

    @property
    def book(self) -> OrderBook: ...

    def record(self, outcome: Outcome) -> Outcome:
        """Journal an outcome's records (durable before anything it causes is sent)."""
        ...

    def drop_unsent(self, client_order_id: str, *, out_of_session: bool = False) -> bool:
        """True if the order must not be sent now (it was rejected instead);
        `out_of_session`: its venue's trading session has closed."""
        ...

    @property
    def gate(self) -> OperatorStops:
        """`actors.oms.intake_state.IntakeGate`."""
        ...

    @property
    def unsent(self) -> UnsentHolder:
        """`actors.oms.unsent_guard.UnsentGuard`: the book's never-sent orders."""
        ...

    def poll_stops(self) -> None:
        """Act on the stops file now: a new stop takes its venue DISCONNECTED."""
        ...

    def publish_stream(self, event: str, data: dict[str, Any]) -> None: ...

    def crash_point(self, name: str) -> None: ...

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None: ...

    def next_turn(self, fn: Callable[[], None]) -> None:
        """Run `fn` in a later loop turn, after what waits now (requests, beats): a
        reconciliation pass's next slice."""
        ...

    def reconcile_plan_ready(self, link: VenueLink, plan: Plan) -> None:
        """A pass's plan is made and is carried out next, in slices (logged)."""
        ...

    def apply_reconcile_steps(
        self, link: VenueLink, plan: Plan, steps: Sequence[tuple[int, Action]]
    ) -> None:
        """Carry out these actions of `plan` (each with its index in `plan.actions`),
        journalled; Resubmits are queued on `link`."""
        ...

    def reconcile_plan_applied(
        self, link: VenueLink, plan: Plan, venue_positions: Positions | None
    ) -> None:
        """Every step of the plan is carried out; no `venue_positions` when the venue does
        not serve them."""
        ...

    def on_venue_reconciled(self, link: VenueLink, plan: Plan, first: bool) -> None:
        """A pass completed while CONNECTED; `first` since this OMS started."""
        ...
