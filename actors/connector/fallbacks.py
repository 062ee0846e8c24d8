"""What the connector answers itself where the venue does not serve a request (issue 11,
finding 2). The venue's dialect (`[venues.dialect]`) says what it serves; a venue that
says it does not serve a request anyway (BusinessMessageReject 380=3, session Reject 373=11,
PosReqResult 4) is not asked again for the rest of this connector incarnation (logged once).

- OpenOrdersRequest (AF): `serves_mass_status = false` or refused -> VENUE_REFUSED without
  asking the venue (`venue_mass_status_unavailable`); the OMS then reconciles by
  OrderStatusRequest (H) for every open local order.
- GetPositions (AN): `serves_positions = false` or refused -> the connector's own fill
  ledger (`actors.connector.ledger`), `Positions.source = "ledger"` ("ledger_unseeded" for
  a ledger that does not know earlier positions) (`venue_positions_unavailable`).
- A mass status too big for one reply (`AnswerTooBig`, over 10,000 orders): VENUE_REFUSED,
  and for `TOO_BIG_HOLD_S` the venue is not asked AF again (each would make it send
  every open order once more, ahead of the H that ask by order): refused at once.
Either way VENUE_DOWN while the session is not logged on (the heartbeat's outage
detection sees a down venue as before). `tradepulse_venue_request_unserved{venue,request}`
is 1 while a request is answered here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from actors.connector.adapter import AnswerTooBig, NoConsistentCut, RequestFailed, VenueAdapter
from actors.connector.ledger import FillLedger
from actors.runtime import metrics
from protocol.fix_config import DialectCfg
from protocol.messages import ErrorCode, Positions, PositionView, VenueOrder

TOO_BIG_HOLD_S = 300.0

Answer = Callable[[Any], None]  # a result or a RequestFailed, as adapter callbacks get


class VenueFallbacks:
    def __init__(
        self,
        venue: str,
        dialect: DialectCfg,
        adapter: VenueAdapter,
        ledger: FillLedger,
        log: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.venue = venue
        self.adapter = adapter
        self.ledger = ledger
        self.log = log
        self.serves_mass_status = dialect.serves_mass_status
        self.serves_positions = dialect.serves_positions
        self._unserved = {
            r: metrics.VENUE_REQUEST_UNSERVED.labels(venue=venue, request=r)
            for r in ("mass_status", "positions")
        }
        self._unserved["mass_status"].set(0 if self.serves_mass_status else 1)
        self._unserved["positions"].set(0 if self.serves_positions else 1)
        self._too_big: tuple[float, str] | None = None  # (until, why): no AF meanwhile
        self._clock = clock

    def open_orders(self, answer: Answer) -> None:
        """OpenOrdersRequest: the venue's open orders, or VENUE_REFUSED where it serves none."""
        if not self._active(answer):
            return
        if not self.serves_mass_status:
            text = "the venue does not serve OrderMassStatusRequest (AF)"
            answer(RequestFailed(ErrorCode.VENUE_REFUSED, text))
            return
        if self._too_big is not None and self._clock() < self._too_big[0]:
            answer(RequestFailed(ErrorCode.VENUE_REFUSED, self._too_big[1]))
            return

        def done(result: list[VenueOrder] | RequestFailed) -> None:
            if isinstance(result, AnswerTooBig):
                self._too_big = (self._clock() + TOO_BIG_HOLD_S, str(result))
            if _refused(result) and self.serves_mass_status:
                self.serves_mass_status = False
                self._unserved["mass_status"].set(1)
                self.log.warning("venue_mass_status_unavailable", reason=str(result))
            answer(result)

        self.adapter.open_orders(done)

    def positions(self, answer: Answer) -> None:
        """GetPositions: the venue's positions, or the fill ledger's where it serves none."""
        if not self._active(answer):
            return
        if not self.serves_positions:
            answer(self.ledger_positions())
            return

        def done(
            result: list[PositionView] | NoConsistentCut[list[PositionView]] | RequestFailed,
        ) -> None:
            if _refused(result):
                if self.serves_positions:
                    self.serves_positions = False
                    self._unserved["positions"].set(1)
                    self.log.warning("venue_positions_unavailable", reason=str(result))
                answer(self.ledger_positions())
            elif isinstance(result, RequestFailed):
                answer(result)  # TIMEOUT / VENUE_DOWN: as before
            elif isinstance(result, NoConsistentCut):
                answer(NoConsistentCut(self._venue_positions(result.answer)))
            else:
                answer(self._venue_positions(result))

        self.adapter.positions(done)

    def _venue_positions(self, positions: list[PositionView]) -> Positions:
        return Positions(source="venue", venue=self.venue, positions=positions)

    def ledger_positions(self) -> Positions:
        source = "ledger_unseeded" if self.ledger.unseeded else "ledger"
        return Positions(source=source, venue=self.venue, positions=self.ledger.view(self.venue))

    def _active(self, answer: Answer) -> bool:
        if self.adapter.is_active:
            return True
        answer(RequestFailed(ErrorCode.VENUE_DOWN, "not logged on"))
        return False


def _refused(result: object) -> bool:
    """The venue said it does not serve the request (BusinessMessageReject 380=3, session
    Reject 373=11, PosReqResult 4): only that switches to the fallback; any other refusal
    (380=4 application not available, a bad field, not authorized) fails this one request
    like a timeout and the venue is asked again next time."""
    return (
        isinstance(result, RequestFailed)
        and result.code is ErrorCode.VENUE_REFUSED
        and result.unsupported
    )
