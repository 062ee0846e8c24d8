"""An outcome's escalation (an unmatched or bad fill, a late fill, an order replaced at the
venue by someone else, a trade the venue busted): logged as an error, published on the
client stream, counted where it has a counter of its own, and - a trade the book cannot
account for - the kill-switch engaged if `oms.unmatched_fill_engages_kill_switch`."""

from __future__ import annotations

from typing import Any, Protocol

from actors.oms import trade_busts as tb
from actors.oms.orders import Order
from actors.oms.outside_replace import REPLACED_EXTERNALLY
from actors.runtime import metrics
from actors.runtime.ratelog import LogBudget
from protocol.config import SystemConfig

_COUNTED = {  # escalations with a counter of their own
    "unmatched_fill": metrics.UNMATCHED_FILLS,
    "bad_fill": metrics.BAD_FILLS,
    "bad_fee": metrics.BAD_FEES,
    REPLACED_EXTERNALLY: metrics.ORDERS_REPLACED_EXTERNALLY,
}

# a venue's trade busts and corrections (`actors.oms.trade_busts`): logged under their own
# event names, counted by outcome; the applied ones are warnings (the book follows)
_BUSTS = {
    tb.BUSTED_KIND: "busted", tb.CORRECTED_KIND: "corrected",
    tb.UNKNOWN_FILL: "unknown_fill", tb.CUM_MISMATCH: "cum_mismatch",
}  # fmt: skip
_APPLIED_BUSTS = (tb.BUSTED_KIND, tb.CORRECTED_KIND)
# their lines: at most 10 a second of each (a venue flooding 150=H: every one counted and
# on the client stream, the log shows how many it left out, `suppressed`)
_BUST_LOGS = {kind: LogBudget() for kind in _BUSTS}


class _Host(Protocol):
    """What an escalation needs of the OMS (`actors.oms.actor.OmsActor`)."""

    cfg: SystemConfig

    @property
    def log(self) -> Any: ...

    @property
    def kill_switch(self) -> Any: ...

    def publish_stream(self, event: str, data: dict[str, Any]) -> None: ...


def escalate(
    host: _Host, kind: str, detail: str, coid: str, order: Order | None, venue: str
) -> None:
    """`venue` names the venue of one that matches no order (an unmatched fill)."""
    venue = order.venue if order is not None else venue
    event = "unmatched_fill" if kind == "unmatched_fill" else "order_escalation"
    log_event = kind if kind in (REPLACED_EXTERNALLY, *_BUSTS) else event
    level = host.log.warning if kind in _APPLIED_BUSTS else host.log.error
    budget = _BUST_LOGS.get(kind)
    if budget is None:
        level(log_event, kind=kind, detail=detail, client_order_id=coid, venue=venue)
    elif (skipped := budget.take()) is not None:
        level(log_event, kind=kind, detail=detail, client_order_id=coid, venue=venue,
              suppressed=skipped)  # fmt: skip
    if (outcome := _BUSTS.get(kind)) is not None:
        metrics.TRADE_BUSTS.labels(venue=venue or "unknown", outcome=outcome).inc()
    data = {"kind": kind, "detail": detail, "client_order_id": coid, "venue": venue}
    host.publish_stream(event, data)
    if (counter := _COUNTED.get(kind)) is not None:
        counter.labels(venue=venue or "unknown").inc()
    if kind in ("unmatched_fill", "bad_fill"):  # a trade the book cannot account for
        if host.cfg.oms.unmatched_fill_engages_kill_switch:
            host.kill_switch.engage(kind)
