"""ExecLog allocates a venue's arrays (~1.5 MiB) only at its first execution: a read naming a
venue with none, or a name no venue has (a client's GetPositions as_of), allocates nothing.
An epoch or exec_seq past int64 is not stored, and a cut before it is refused."""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from actors.oms import reads
from actors.oms.exec_cut import ExecLog
from protocol.messages import ExecCut, GetPositions


class _Book:
    def positions(self, venue: str | None = None) -> list[Any]:
        return []


class _Views:
    def wire_positions(self, venue: str | None = None) -> list[Any]:
        return []


@dataclass
class _Host:
    book: Any = field(default_factory=_Book)
    views: Any = field(default_factory=_Views)
    exec_log: ExecLog = field(default_factory=ExecLog)
    epoch: int = 42
    event_seq: int = 0


class _Reply:
    def __init__(self) -> None:
        self.got: list[Any] = []

    def __call__(self, msg: Any) -> None:
        self.got.append(msg)

    def reject(self, code: Any, reason: str) -> None:
        self.got.append((code, reason))


def test_unknown_venue_names_do_not_cost_a_venue_log_each() -> None:
    host = _Host()
    host.exec_log.note("simA", 7, 1, "o1", "AAPL", Decimal(1))  # the real venue, allocated
    reply = _Reply()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(20):
            req = GetPositions(
                venue=f"nosuch-{n}",
                as_of=ExecCut(connector_epoch=1, exec_seq=1, oms_epoch=host.epoch),
            )
            reads.positions(reply, host, req)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(reply.got) == 20
    assert grown < 200 * 1024, grown


def test_mark_of_a_venue_without_executions_is_free() -> None:
    """The reconciliation pass calls mark() for every configured venue at its start: the
    commit says the arrays come with a venue's first execution, but mark() allocates."""
    log = ExecLog()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(16):
            log.mark(f"venue-{n}")
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 200 * 1024, grown


def test_a_fill_numbered_past_int64_is_refused_by_cuts_before_it_not_lost() -> None:
    log = ExecLog(ring=4, touched=4)
    log.note("v", 7, 1, "a", "X", Decimal(1))
    log.note("v", 7, 2**63, "b", "X", Decimal(5))  # no exception out of the OMS's turn
    now = {"X": Decimal(6)}
    assert log.positions_as_of("v", ExecCut(connector_epoch=7, exec_seq=0), now) is None
    assert log.positions_as_of("v", ExecCut(connector_epoch=8, exec_seq=0), now) == now
    log.note("v", 8, 1, "c", "X", Decimal(2))  # the ring goes on
    assert log.positions_as_of("v", ExecCut(connector_epoch=8, exec_seq=0), {"X": Decimal(8)}) == {
        "X": Decimal(6)
    }
