"""A venue's trade bust (35=8 150=H, Trade Cancel) and trade correction (150=G, Trade
Correct): `mapping.to_exec_report` reads them as any execution (kinds ``trade_cancel`` /
``trade_correct``, their OrdStatus, CumQty, LeavesQty and AvgPx the venue's view after
them); here they get the fill they undo, ExecRefID (19), without which neither says
anything the OMS could apply: refused as malformed (`ReplyRouter`: counted in
``tradepulse_venue_answers_unreadable_total``, logged ``exec_not_forwarded`` with the
reason). A correction also needs its corrected LastQty (32) and LastPx (31), positive.

Each is then forwarded like a fill: kept in the exec outbox until the OMS acks its ExecID
(its own, not the ExecRefID), which the OMS applies once (`actors.oms.trade_busts`)."""

from __future__ import annotations

from typing import Final

import simplefix

from actors.connector.fix import codec as fc
from protocol.messages import ExecReport

KINDS: Final = frozenset({"trade_cancel", "trade_correct"})
_MAX_REF: Final = 256  # an ExecRefID longer than any ExecID a venue makes is no id


def completed(report: ExecReport, msg: simplefix.FixMessage) -> tuple[ExecReport | None, str]:
    """`report` (a bust or correction read from `msg`) with its ExecRefID, or (None, why
    it is malformed)."""
    ref = (fc.get_str(msg, 19) or "").strip()
    if not ref:
        return None, "no ExecRefID(19)"
    if len(ref) > _MAX_REF:
        return None, "ExecRefID(19) too long"
    if ref == report.exec_id:
        return None, "ExecRefID(19) is its own ExecID"
    if report.kind == "trade_correct" and not (report.last_qty > 0 and report.last_px > 0):
        return None, "no positive corrected LastQty(32) and LastPx(31)"
    return report.model_copy(update={"exec_ref_id": ref}), ""
