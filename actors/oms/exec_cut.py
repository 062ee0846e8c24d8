"""What the OMS applied recently, by the connectors' execution numbers (`ExecCut`), so it
can answer "as of the cut" and a reconciliation pass can tell which orders changed since.

Per venue:
- a bounded ring of the fills applied (connector epoch, exec_seq, position delta):
  the OMS's position as of a cut is the position now minus what was applied after it
  (`positions_as_of`). Every execution up to the cut is applied already (the connector
  holds its answer until they are acked: actors/connector/exec_cut.py), so this is exact
  while the ring still holds everything after the cut, and refused (None) otherwise;
- the orders touched by an execution, with a running count (`mark` / `touched_after` /
  `touched_since`): an order an execution changed after a pass began is judged by the next
  pass (its answer and our book may each hold executions the other lacks). Bounded too: a
  pass whose mark fell out of it can no longer tell (`remembers` is False, `touched_since`
  returns None).

Only applied executions are noted (a duplicate changed nothing now; one applied by an
earlier OMS incarnation is numbered below any cut the connector still names with this
OMS's epoch).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import NamedTuple

from actors.oms.orders import Outcome
from protocol.messages import ExecCut, ExecReport, Side

RING = 16_384  # fills per venue (~3 s at 5,000 fills/s)
TOUCHED = 32_768  # orders per venue remembered as touched


class _Applied(NamedTuple):
    epoch: int
    seq: int
    symbol: str
    delta: Decimal  # signed change of the position


def after(epoch: int, seq: int, cut: ExecCut) -> bool:
    """Numbered after the cut: a later connector incarnation, or later in the same one
    (epochs grow: `actors.supervisor.daemon`)."""
    return epoch > cut.connector_epoch or (epoch == cut.connector_epoch and seq > cut.exec_seq)


class _VenueLog:
    def __init__(self, ring: int, touched: int) -> None:
        self.ring: deque[_Applied] = deque()
        self.ring_size = ring
        self.evicted: tuple[int, int] = (0, 0)  # the latest (epoch, seq) that left the ring
        self.count = 0  # executions noted
        self.touched: dict[str, int] = {}  # client_order_id -> count when last touched
        self.touched_size = touched
        self.forgotten_below = 0  # touches before this count may have been forgotten


class ExecLog:
    def __init__(self, ring: int = RING, touched: int = TOUCHED) -> None:
        self._ring, self._touched = ring, touched
        self._venues: dict[str, _VenueLog] = {}

    def _log(self, venue: str) -> _VenueLog:
        log = self._venues.get(venue)
        if log is None:
            log = self._venues[venue] = _VenueLog(self._ring, self._touched)
        return log

    def note(
        self,
        venue: str,
        epoch: int,
        seq: int,
        client_order_id: str | None,
        symbol: str,
        delta: Decimal,
    ) -> None:
        """An execution was applied (`seq` 0: a connector that does not number them)."""
        log = self._log(venue)
        log.count += 1
        if client_order_id:
            log.touched.pop(client_order_id, None)  # newest last: the oldest go first
            log.touched[client_order_id] = log.count
            if len(log.touched) > log.touched_size:
                oldest = next(iter(log.touched))
                log.forgotten_below = log.touched.pop(oldest) + 1
        if seq and delta:  # only fills move positions: the ring keeps only them
            log.ring.append(_Applied(epoch, seq, symbol, delta))
            if len(log.ring) > log.ring_size:
                gone = log.ring.popleft()
                log.evicted = max(log.evicted, (gone.epoch, gone.seq))

    def note_outcome(self, report: ExecReport, epoch: int, outcome: Outcome) -> None:
        """What applying `report` (from connector incarnation `epoch`) did."""
        order = outcome.order
        if not outcome.applied or order is None:
            return
        fill = outcome.fill_qty or Decimal(0)
        delta = fill if order.side == Side.BUY else -fill
        self.note(report.venue, epoch, report.exec_seq, order.client_order_id, order.symbol, delta)

    def mark(self, venue: str) -> int:
        """Where the venue's executions stand now (for `touched_since`)."""
        return self._log(venue).count

    def remembers(self, venue: str, mark: int) -> bool:
        """Whether every order touched after `mark` is still remembered (`touched_after`)."""
        return mark + 1 >= self._log(venue).forgotten_below

    def touched_after(self, venue: str, mark: int, client_order_id: str) -> bool:
        """An execution changed the order after `mark` (exact while `remembers(mark)`)."""
        return self._log(venue).touched.get(client_order_id, 0) > mark

    def touched_since(self, venue: str, mark: int, orders: Iterable[str]) -> set[str] | None:
        """Which of `orders` an execution changed after `mark`; None if that is no longer
        known (more orders touched since than remembered)."""
        log = self._log(venue)
        if mark + 1 < log.forgotten_below:
            return None
        return {c for c in orders if log.touched.get(c, 0) > mark}

    def positions_as_of(
        self, venue: str, cut: ExecCut, now: Mapping[str, Decimal]
    ) -> dict[str, Decimal] | None:
        """The venue's positions (symbol -> qty, `now`) as of `cut`; None if executions
        after the cut may have left the ring."""
        log = self._log(venue)
        if after(*log.evicted, cut):
            return None
        then = dict(now)
        for e in log.ring:
            if after(e.epoch, e.seq, cut):
                then[e.symbol] = then.get(e.symbol, Decimal(0)) - e.delta
        return then
