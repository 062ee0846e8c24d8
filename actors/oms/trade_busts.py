"""A venue's trade bust (FIX 150=H) or trade correction (150=G) of a fill the OMS booked
(pure logic, no I/O): `apply` decides, one ``trade_bust`` journal record applies it
(`OrderBook.apply_record`, on the live path and on replay alike).

The fill named by ExecRefID (`ExecReport.exec_ref_id`) is taken back as the order booked
it (`actors.oms.fill_terms`: its qty, price and fee): the order's cum_qty and notional,
the position (`protocol.fees.unbook_fill`: its mirror, fee included) and so the realised
P&L; a correction then books the corrected qty and price in its place (its fee unchanged).
The order's status is the venue's OrdStatus after it (a bust of a FILLED order's fill may
reopen it or leave it done with less: the venue says which); one it does not say leaves a
finished order finished and a live one live at its new cum. A cancel or replace pending
stays pending. The venue's CumQty is checked against our arithmetic: a difference is
escalated (``trade_bust_cum_mismatch``; reconciliation then settles the order), never
guessed over.

Refused and escalated, nothing booked: an ExecRefID the order never booked under that id
(``trade_bust_unknown_fill``: a fill counted from venue state, another order's, a typo at
the venue), an order we do not know; a correction to terms no fill could have
(``bad_fill``, as a fill: `positions.fill_problem`, its notional out of bounds, say). A
second bust of a fill already busted is a duplicate. Applied ones are escalated too
(``trade_busted`` / ``trade_corrected``): an operator should know the venue took a trade
back. The order's event carries the bust as a negative fill (`Outcome.fill_qty` -qty at
the busted price, its fees negated), which is how risk takes it back
(`actors.risk.exposure`); a correction is two events, the fill taken back then booked on
its new terms (`actors.oms.event_wire.event_parts`); no new event field.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final, Protocol

from actors.oms.fill_terms import ALIAS, BUSTED, terms
from actors.oms.lifecycle import REQUEST_PENDING
from actors.oms.orders import Escalation, Order, Outcome
from actors.oms.positions import TRADE_BUST, fee_fields, fill_problem
from protocol.messages import TERMINAL_STATUSES, ExecReport, OrderStatus

KINDS: Final = frozenset({"trade_cancel", "trade_correct"})
BUSTED_KIND: Final = "trade_busted"
CORRECTED_KIND: Final = "trade_corrected"
UNKNOWN_FILL: Final = "trade_bust_unknown_fill"
CUM_MISMATCH: Final = "trade_bust_cum_mismatch"
S = OrderStatus
# OrdStatus values a bust's report may leave the order in (pending ones say nothing)
_VENUE_SAYS: Final = frozenset({S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELLED, S.EXPIRED})


class BustBook(Protocol):
    def apply_record(self, record: Mapping[str, Any]) -> None: ...


def apply(book: BustBook, order: Order, report: ExecReport, ts_ns: int) -> Outcome:
    """Apply the bust or correction `report` (an exec id not applied yet) to `order`."""
    ref, coid, correct = report.exec_ref_id, order.client_order_id, report.kind == "trade_correct"
    what = "correction" if correct else "bust"
    booked = (order.fills or {}).get(ref)
    if booked and booked.startswith(ALIAS):  # a correction's exec id: the fill it corrected
        ref = booked[len(ALIAS) :]
        booked = (order.fills or {}).get(ref)
    if booked == BUSTED:
        if not correct:
            return Outcome("duplicate", order, reason=f"fill {ref} already busted")
        detail = f"{report.exec_id}: correction of fill {ref}, busted already"
        return Outcome.refused(order, UNKNOWN_FILL, Escalation(UNKNOWN_FILL, detail, coid))
    if booked is None or not ref:
        counted = " (counted from venue state, terms unknown)" if ref in order.exec_ids else ""
        detail = f"{report.exec_id}: {what} of fill {ref!r}, never booked on the order{counted}"
        return Outcome.refused(order, UNKNOWN_FILL, Escalation(UNKNOWN_FILL, detail, coid))
    if correct and (problem := fill_problem(report.last_qty, report.last_px)) is not None:
        bad = Escalation("bad_fill", f"{report.exec_id}: correction of {ref}: {problem}", coid)
        return Outcome.refused(order, "bad_fill", bad)  # as a fill on its terms would be
    old = terms(booked)
    cum = order.cum_qty - old.qty + (report.last_qty if correct else 0)
    if cum > order.qty:
        detail = f"{report.exec_id}: correction of {ref} to {report.last_qty} overfills {order.qty}"
        return Outcome.refused(order, "overfill", Escalation("overfill", detail, coid))
    rec: dict[str, Any] = {
        "kind": TRADE_BUST, "id": coid, "exec_id": report.exec_id, "ref": ref,
        "qty": str(old.qty), "px": str(old.px), "status": str(_status(order, report, cum)),
        "ts_ns": ts_ns,
    }  # fmt: skip
    if correct:
        rec |= {"new_qty": str(report.last_qty), "new_px": str(report.last_px)}
    else:
        rec |= fee_fields(-old.fee, old.fee_asset)  # given back: booked negated
    kind = CORRECTED_KIND if correct else BUSTED_KIND
    to = f" to {report.last_qty} @ {report.last_px}" if correct else ""
    said = f"fill {ref} ({old.qty} @ {old.px}) {kind[6:]}{to} by the venue"
    rec["reason"] = f"{said} ({report.exec_id})"  # the order's: what its clients read
    book.apply_record(rec)
    detail = f"{report.exec_id}: {said}; cum {cum}"
    esc = [Escalation(kind, detail, coid)]
    if report.cum_qty != cum:
        said = (
            f"{report.exec_id}: venue cum {report.cum_qty} after the {what} of {ref}, local {cum}"
        )
        esc.append(Escalation(CUM_MISMATCH, said, coid))
    fill_qty, fill_px = (-old.qty, old.px) if not correct else _correction_fill(old, report)
    return Outcome(
        "applied", order, (rec,), fill_qty=fill_qty, fill_px=fill_px, escalations=tuple(esc)
    )


def unknown_order(report: ExecReport) -> Outcome:
    """A bust or correction (or other report) naming no order we know: refused; a bust's
    escalated (the venue took back a trade we cannot place)."""
    reason = f"unknown ClOrdID {report.cl_ord_id!r}"
    if report.kind not in KINDS:
        return Outcome.refused(None, reason)
    detail = f"{report.exec_id}: {report.kind} of fill {report.exec_ref_id!r}: {reason}"
    return Outcome.refused(None, reason, Escalation(UNKNOWN_FILL, detail))


def _status(order: Order, report: ExecReport, cum: Decimal) -> OrderStatus:
    said = report.ord_status
    if said in _VENUE_SAYS:
        live = said not in TERMINAL_STATUSES
        return order.status if live and order.status in REQUEST_PENDING else said
    if order.is_terminal or order.status in REQUEST_PENDING:
        return order.status
    return S.PARTIALLY_FILLED if cum else S.ACCEPTED


def _correction_fill(old: Any, report: ExecReport) -> tuple[Decimal | None, Decimal | None]:
    """A correction as one fill (the exec cut's position move; its order's events come
    from its record, `event_wire.merge_fill`): the change of qty at the price that moves
    the notional as much; none for a price-only one."""
    delta = report.last_qty - old.qty
    if not delta:
        return None, None
    return delta, (report.last_qty * report.last_px - old.qty * old.px) / delta
