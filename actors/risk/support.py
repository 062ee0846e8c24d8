"""Pure helpers of the risk actor (no sockets, no clocks: callers pass the time).

- `VerdictCache`: the last verdict per client order id, so a re-sent check is answered
  exactly as before (the OMS retries a check whose verdict it did not get), kept while the
  check is in flight: bounded, and dropped once the OMS's event stream shows the verdict
  applied.
- `CancelTracker`: the mass-cancel round of a kill-switch engagement: every venue until its
  connector confirms, retries, and when to ask the supervisor to restart a silent connector.
- `trigger_label`: the bounded label of `tradepulse_kill_switch_triggers_total{reason}`.
- `SnapshotCoverage`: which OMS order events a rebuilt exposure already contains.
- `reference_prices`, `describe_reply`: the actor's reference prices, a reply for a log.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from protocol.messages import (
    TERMINAL_STATUSES,
    ControlReply,
    OrderStatus,
    OrderView,
    RequestRejected,
    RiskCheck,
    RiskVerdict,
)

VERDICT_CACHE_SIZE = 1024  # `[risk] verdict_cache_entries`

# Every value `trigger_label` can return (pre-created as metric children at startup).
TRIGGER_LABELS = (
    "operator",
    "limit_breach",
    "unmatched_fill",
    "position_divergence",
    "connector_outage",
    "restart_intensity",
    "state_corrupt",
    "state_unreadable",
    "other",
)
_NAMED_REASONS = frozenset(
    {"unmatched_fill", "position_divergence", "connector_outage", "state_unreadable"}
)


def trigger_label(reason: str, source: str) -> str:
    """The metric label of an engagement: the operator, a limit breach of the risk gate, or
    the reason's leading word (`position_divergence: simA AAPL ...` -> position_divergence)
    when it is one of the known triggers; anything else is `other` (labels stay bounded)."""
    if source == "operator":
        return "operator"
    head = reason.split(":", 1)[0].strip()
    if head in _NAMED_REASONS:
        return head
    for why in ("restart_intensity", "state_corrupt"):  # the supervisor's `<actor>_<why>`
        if head.endswith(f"_{why}"):
            return why
    if source == "risk":
        return "limit_breach"
    return "other"


class VerdictCache:
    """The last (check, verdict) per client order id, least recently used dropped first
    beyond `max_entries` (far more than the checks in flight at once), `settled` ones at once.

    `get` answers only an identical check: a check under the same id with other terms (a
    replace) is a new question and gets a fresh verdict. So is every check of an order
    `live` in risk's view (past PENDING_RISK: a replace), even on the same terms: the OMS
    never re-sends one (no verdict in time fails the client's replace), so an identical one
    is the client asking again, maybe after the exposure changed; neither kept nor served
    (found hunting: a replace the venue refused, asked again after a fill, got its old
    approval; one refused stayed refused after the room was made)."""

    def __init__(
        self, max_entries: int = VERDICT_CACHE_SIZE, live: Callable[[str], bool] | None = None
    ) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[RiskCheck, RiskVerdict]] = OrderedDict()
        self._live = live or (lambda _client_order_id: False)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, check: RiskCheck) -> RiskVerdict | None:
        if not self._entries:
            return None
        entry = self._entries.get(check.client_order_id)
        if entry is not None and self._live(check.client_order_id):
            return None
        if entry is None or entry[0] != check:
            return None
        self._entries.move_to_end(check.client_order_id)
        return entry[1]

    def put(self, check: RiskCheck, verdict: RiskVerdict) -> None:
        if self._live(check.client_order_id):
            self._entries.pop(check.client_order_id, None)
            return
        self._entries[check.client_order_id] = (check, verdict)
        self._entries.move_to_end(check.client_order_id)
        self._trim()

    def resize(self, max_entries: int) -> None:
        """A reload's `[risk] verdict_cache_entries`: the least recently used beyond it go."""
        self._max = max_entries
        self._trim()

    def _trim(self) -> None:
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def settled(self, order: OrderView) -> None:
        """The OMS published `order`: a verdict it has applied is never asked for again
        (the OMS retries a check only while the order waits for it), so its entry goes.
        Applied means: terminal, or out of PENDING_RISK on the very terms checked (a check
        of a replace's new terms stays until the replace shows or the order ends)."""
        entry = self._entries.get(order.client_order_id)
        if entry is None or order.status is OrderStatus.PENDING_RISK:
            return
        check = entry[0]
        if order.status in TERMINAL_STATUSES or (order.qty, order.price) == (
            check.qty,
            check.price,
        ):
            del self._entries[order.client_order_id]

    def clear(self) -> None:
        self._entries.clear()


# --------------------------------------------------------------------------- mass cancel


class CancelOutcome(StrEnum):
    DONE = "done"  # MassCancelDone(accepted=True)
    REFUSED = "refused"  # answered, but not done: venue not logged on, or rejected by the venue
    TIMEOUT = "timeout"  # no answer in time


class CancelAction(StrEnum):
    NONE = "none"  # confirmed: nothing more to do for this venue
    RESEND = "resend"  # send the MassCancel again now (a new round started while in flight)
    RETRY = "retry"  # send it again after the retry delay
    RESTART = "restart"  # ask the supervisor to restart the connector, then send again


@dataclass
class VenueCancel:
    venue: str
    done: bool = False
    in_flight: bool = False
    again: bool = False  # a new round began while a request was in flight
    retry_due: bool = False  # a retry is scheduled: it sends (nothing else starts a chain)
    attempts: int = 0
    timeouts: int = 0  # consecutive
    restarts: int = 0
    last_restart_s: float | None = None


class CancelTracker:
    """Mass cancel at every venue until each connector confirms.

    `start_round` begins a round (an engagement, a sweep, a reload that found the switch
    engaged) and returns the venues to send to now. Each answer (or timeout) is fed to
    `on_outcome`, which says what to do next. A connector that times out
    `restart_after_timeouts` times in a row is restarted, at most once per
    `restart_cooldown_s` (a restart takes a while; a venue that is merely down answers
    `REFUSED` and is only retried)."""

    def __init__(
        self,
        venues: Iterable[str],
        *,
        restart_after_timeouts: int = 1,
        restart_cooldown_s: float = 10.0,
    ) -> None:
        self.venues = {v: VenueCancel(v, done=True) for v in venues}
        self.restart_after_timeouts = restart_after_timeouts
        self.restart_cooldown_s = restart_cooldown_s
        self.active = False

    def start_round(self) -> list[str]:
        """A new round over every venue; returns those to send to now (not in flight)."""
        self.active = True
        send = []
        for vc in self.venues.values():
            vc.done = False  # the timeout streak carries over: a silent connector stays silent
            if vc.in_flight:
                vc.again = True
            elif not vc.retry_due:  # (a scheduled retry sends this round's request)
                send.append(vc.venue)
        return send

    def start_venue(self, venue: str) -> bool:
        """A new round at `venue` alone (a live order seen there while engaged); True: send
        to it now (else its request in flight is followed by one more)."""
        self.active = True
        vc = self.venues[venue]
        vc.done = False
        if vc.in_flight:
            vc.again = True
            return False
        return not vc.retry_due  # a scheduled retry sends it: never a second retry chain

    def retry_fired(self, venue: str) -> None:
        """The retry `on_outcome` asked for (`CancelAction.RETRY`) is due now."""
        self.venues[venue].retry_due = False

    def stop(self) -> None:
        """The switch was reset: forget the round (answers still in flight are ignored)."""
        self.active = False
        for vc in self.venues.values():
            vc.done, vc.again, vc.timeouts = True, False, 0

    def sent(self, venue: str) -> None:
        vc = self.venues[venue]
        vc.in_flight = True
        vc.attempts += 1

    def on_outcome(self, venue: str, outcome: CancelOutcome, now_s: float) -> CancelAction:
        vc = self.venues[venue]
        vc.in_flight = False
        if not self.active:
            return CancelAction.NONE
        action = self._next(vc, outcome, now_s)
        vc.retry_due = action is CancelAction.RETRY and not vc.again
        if vc.again:  # a round began while this request was out: it needs its own send
            vc.again = False
            if action is not CancelAction.RESTART:  # (a restart is followed by a send anyway)
                vc.done = False
                return CancelAction.RESEND
        return action

    def _next(self, vc: VenueCancel, outcome: CancelOutcome, now_s: float) -> CancelAction:
        if outcome is CancelOutcome.DONE:
            vc.done = True
            vc.timeouts = 0
            return CancelAction.NONE
        if outcome is CancelOutcome.REFUSED:
            vc.timeouts = 0
            return CancelAction.RETRY
        vc.timeouts += 1
        cooled = vc.last_restart_s is None or now_s - vc.last_restart_s >= self.restart_cooldown_s
        if vc.timeouts >= self.restart_after_timeouts and cooled:
            vc.restarts += 1
            vc.last_restart_s = now_s
            vc.timeouts = 0
            return CancelAction.RESTART
        return CancelAction.RETRY

    @property
    def pending(self) -> list[str]:
        return [v for v, vc in self.venues.items() if not vc.done]

    @property
    def complete(self) -> bool:
        return self.active and not self.pending

    def progress(self) -> dict[str, dict[str, object]]:
        return {
            v: {"done": vc.done, "attempts": vc.attempts, "restarts": vc.restarts}
            for v, vc in self.venues.items()
        }


# --------------------------------------------------------------------------- rebuild


class SnapshotCoverage:
    """Which OMS order events a rebuilt exposure already contains, by the OMS's `event_seq`.

    A rebuild reads the open orders (in pages) and then the positions; each answer carries
    the `event_seq` it reflects, so the positions' is the highest. For an event numbered s:

    - s <= the seq of the page that listed its order: in that page -> "skip";
    - its order not listed and s <= the first page's seq (`first_seq`): the order had
      ended by the time the listing passed its place (the cursor lists every order open
      throughout, and an order that existed at the first page is in the book before the
      cursor) and its fill is in the positions -> "skip" (applied, an event older than the
      order's end would bring it back as open exposure when the events after it were lost
      in a gap the rebuild covers);
    - s <= the positions' seq: its fill is in the positions, its order state may not be in
      the page (the order changed after its page was read, or was not open then) ->
      "state": apply the order state, not the fill;
    - later: "full".

    An event can arrive after the answers (the stream and the replies travel on different
    sockets), so the coverage stays in force until the next rebuild."""

    def __init__(
        self, page_seqs: Mapping[str, int], positions_seq: int, first_seq: int = 0
    ) -> None:
        self._page_seqs = dict(page_seqs)
        self.positions_seq = positions_seq
        self.first_seq = first_seq

    def classify(self, client_order_id: str, event_seq: int) -> Literal["skip", "state", "full"]:
        if event_seq > self.positions_seq:
            return "full"
        page = self._page_seqs.get(client_order_id)
        if page is None:
            return "skip" if event_seq <= self.first_seq else "state"
        return "skip" if event_seq <= page else "state"


# --------------------------------------------------------------------------- the actor's
# config and replies


def reference_prices(cfg: Any) -> dict[str, Decimal]:
    """Each symbol's first simulator reference price (the gate's price before any fill)."""
    prices: dict[str, Decimal] = {}
    for v in cfg.venues:
        if v.sim is not None:
            for symbol, px in v.sim.reference_prices.items():
                prices.setdefault(symbol, px)
    return prices


def describe_reply(body: Any) -> str:
    """A reply (or its absence) in a few words, for a log line."""
    if body is None:
        return "no answer"
    if isinstance(body, RequestRejected):
        return f"{body.code.value}: {body.reason}"
    if isinstance(body, ControlReply):
        return f"{body.status}: {body.reason}"
    return str(getattr(body, "type", type(body).__name__))
