"""A hostile venue's flood of ResendRequests: bounded work and output per loop turn,
each skip counted and logged (rate-limited), every message the peer asked for still sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from actors.connector.fix import transmit
from actors.connector.fix.session import FixSession
from tests.connector.fix.test_session import FakeClock, frames, initiator, raw

ORDERS = 300


@pytest.fixture
def us(tmp_path: Path) -> Iterator[FixSession]:
    """An active initiator that sent ORDERS OrderCancelRequests (numbers 2..ORDERS+1): kept
    and resent on request (a NewOrderSingle is not: a gap fill, see fix transmit)."""
    clock = FakeClock()
    session = initiator(tmp_path, clock, clock)
    session.logon()
    session.data_to_send()
    session.receive(raw("A", 1, [(98, "0"), (108, "30")]))
    assert session.state == "active"
    for i in range(ORDERS):
        session.send("F", [(11, f"X{i}"), (41, f"C{i}"), (55, "AAPL"), (54, "1"), (38, "1")])
    session.data_to_send()
    yield session
    session.store.close()


def skipped(reason: str) -> float:
    labels = {"peer": "VENUE", "reason": reason}
    return REGISTRY.get_sample_value("tradepulse_fix_resend_requests_skipped_total", labels) or 0.0


def resent(data: bytes) -> list[int]:
    """MsgSeqNum of every PossDup cancel copy in `data`."""
    return [int(f[34]) for t, f in frames(data) if t == "F" and f.get(43) == b"Y"]


def test_many_resend_requests_in_one_read_are_answered_once(us: FixSession) -> None:
    """500 ResendRequests for everything in one read: the cancels go again once (not 500
    times: 150,000 copies, seconds of one loop turn), 499 skips counted, one log line."""
    before = skipped(transmit.COVERED)
    flood = b"".join(raw("2", 2 + k, [(7, "1"), (16, "0")]) for k in range(500))
    events = us.receive(flood)
    assert events == []
    assert us.state == "active"
    assert resent(us.data_to_send()) == list(range(2, ORDERS + 2))
    assert skipped(transmit.COVERED) - before == 499
    log = us._log  # type: ignore[attr-defined]  # the RecordingLog the fixture gave
    lines = [kw for _lvl, ev, kw in log.lines if ev == "fix_resend_request_skipped"]
    assert len(lines) == 1
    assert lines[0]["reason"] == transmit.COVERED


def test_resend_request_in_the_next_turn_is_answered_again(us: FixSession) -> None:
    """The bound is per batch (one loop turn): a request after our bytes went out is
    answered in full (the peer may have lost the first answer)."""
    us.receive(raw("2", 2, [(7, "1"), (16, "0")]))
    assert len(resent(us.data_to_send())) == ORDERS
    us.receive(raw("2", 3, [(7, "1"), (16, "0")]))
    assert len(resent(us.data_to_send())) == ORDERS


def test_growing_ranges_stop_at_the_turns_budget(
    us: FixSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests no earlier answer covers (ever earlier BeginSeqNo) are answered until the
    turn resent MAX_RESENT_PER_BATCH messages; the rest are skipped as over_budget."""
    monkeypatch.setattr(transmit, "MAX_RESENT_PER_BATCH", 1000)
    before = skipped(transmit.OVER_BUDGET)
    last = ORDERS + 1
    flood = b"".join(raw("2", 2 + k, [(7, str(last - k)), (16, "0")]) for k in range(ORDERS))
    us.receive(flood)
    copies = resent(us.data_to_send())
    # 1 + 2 + ... + 45 = 1035: the 45th request passes 1000, the 255 after it are skipped
    assert len(copies) == 1035
    assert skipped(transmit.OVER_BUDGET) - before == ORDERS - 45


def test_adjacent_ranges_join_and_a_range_past_the_last_covers_nothing(us: FixSession) -> None:
    """2..100 then 101..0 answer every order once; then 2..0 is covered (skipped). A
    request past our last number (nothing to send) covers nothing for later ones."""
    us.receive(raw("2", 2, [(7, "5000"), (16, "0")]))  # past the last: nothing
    us.receive(raw("2", 3, [(7, "2"), (16, "100")]))
    us.receive(raw("2", 4, [(7, "101"), (16, "0")]))
    us.receive(raw("2", 5, [(7, "2"), (16, "0")]))
    assert resent(us.data_to_send()) == list(range(2, ORDERS + 2))
