"""The position heartbeat at a consistent cut (issue 16): a busy venue and the OMS always
differ by the executions in flight, so a venue answer that names its cut (`ExecCut`: the
last execution it reflects, every one up to it already applied by the OMS) is compared
with the OMS's positions as of that same execution (`GetPositions(as_of=cut)`, answered
from `actors.oms.exec_cut.ExecLog`), never with the OMS's positions now. Then a real
divergence shows at `position_tolerance = 0` and executions in flight never do.

An answer whose cut names no OMS incarnation (the connector's wait for the OMS's acks ran
out) or one the OMS cannot view at (it restarted, or the cut is older than its log) is
shown and logged like an older answer but not counted: the next beat at the venue's
interval asks again. An answer without a cut (a connector that does not stamp) is
compared with the OMS's positions now, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from actors.runtime.peer import Peer
from protocol.codec import Envelope
from protocol.messages import ExecCut, GetPositions, Positions, RequestRejected

AtCut = Callable[[dict[str, Decimal] | None, str], None]


def ask_oms(oms: Peer, venue: str, cut: ExecCut, timeout_s: float, done: AtCut) -> None:
    """Ask the OMS for its positions at `venue` as of `cut`; `done(positions, "ok")` or
    `done(None, why not)`."""

    def answered(reply: Envelope | None) -> None:
        body = reply.body if reply is not None else None
        if isinstance(body, Positions) and body.cut == cut:
            done({p.symbol: p.qty for p in body.positions if p.venue == venue}, "ok")
        elif isinstance(body, RequestRejected):
            done(None, f"oms has no view at the cut: {body.reason}")
        else:
            done(None, "oms did not answer at the cut")

    oms.request(GetPositions(venue=venue, as_of=cut), answered, timeout_s)
