"""The outbound queue bounds the work of one loop turn: a burst of thousands of status
requests (the OMS's chunks of 2,000) goes out 256 per turn, the loop asked to turn again
at once, in order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.connector.fix.outbound import MAX_SENDS_PER_TURN, Outbound, OutboundQueue
from actors.connector.fix.store import FixStore
from actors.connector.ratelimit import TokenBucket


class _Session:
    """What `OutboundQueue.pump` uses of a FixSession: `state` and `send`."""

    state = "active"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, msg_type: str, fields: Any) -> int:
        self.sent.append(dict(fields)[790])
        return len(self.sent)


def test_a_burst_goes_out_a_bounded_number_per_turn_in_order(tmp_path: Path) -> None:
    wakes: list[float] = []
    store = FixStore(tmp_path, fsync=False)
    out = OutboundQueue(TokenBucket(1e6, 100_000), wakes.append, store)
    for i in range(600):
        out.put(Outbound("H", [(790, f"S.{i}")], None, "S"))
    session = _Session()
    out.pump(session)  # type: ignore[arg-type]
    assert len(session.sent) == MAX_SENDS_PER_TURN and wakes == [0.0]
    out.woken()
    out.pump(session)  # type: ignore[arg-type]
    out.woken()
    out.pump(session)  # type: ignore[arg-type]
    assert session.sent == [f"S.{i}" for i in range(600)] and len(out) == 0
    store.close()
