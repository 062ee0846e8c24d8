"""A hostile venue's session messages: what the session keeps of the peer's text, and a
flood of messages it must refuse."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from actors.connector.fix.events import Disconnect, LoggedOut
from actors.connector.fix.session import FixSession
from tests.connector.fix.test_session import FakeClock, frames, initiator, raw

HUGE = 900_000


@pytest.fixture
def us(tmp_path: Path) -> Iterator[FixSession]:
    clock = FakeClock()
    session = initiator(tmp_path, clock, clock)
    session.logon()
    session.data_to_send()
    yield session
    session.store.close()


def test_logon_refused_with_a_huge_text_keeps_a_bounded_reason(us: FixSession) -> None:
    """A Logout answering our Logon with 900,000 characters of Text: the LoggedOut text
    and the Disconnect reason (logged, sent to the OMS and the supervisor at every
    reconnect) are cut, saying how long the text was."""
    events = us.receive(raw("5", 1, [(58, "x" * HUGE)]))
    [out] = [e for e in events if isinstance(e, LoggedOut)]
    [gone] = [e for e in events if isinstance(e, Disconnect)]
    assert len(out.text) < 300 and out.text.startswith("x" * 200)
    assert f"({HUGE} chars)" in out.text
    assert len(gone.reason) < 300 and gone.reason.startswith("logon refused: xxx")
    log = us._log  # type: ignore[attr-defined]  # the RecordingLog the fixture gave
    assert all(len(str(kw)) < 1000 for _lvl, _ev, kw in log.lines)


def test_logout_of_an_active_session_with_a_huge_text_is_cut(us: FixSession) -> None:
    us.receive(raw("A", 1, [(98, "0"), (108, "30")]))
    assert us.state == "active"
    events = us.receive(raw("5", 2, [(58, "y" * HUGE)]))
    [out] = [e for e in events if isinstance(e, LoggedOut)]
    assert len(out.text) < 300 and f"({HUGE} chars)" in out.text
    assert any(isinstance(e, Disconnect) for e in events)


def test_short_logout_text_is_kept_as_sent(us: FixSession) -> None:
    events = us.receive(raw("5", 1, [(58, "Invalid password")]))
    assert [e.text for e in events if isinstance(e, LoggedOut)] == ["Invalid password"]


def _metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_flood_of_bad_messages_is_each_rejected_counted_and_logged_within_a_budget(
    us: FixSession,
) -> None:
    """250 messages of a MsgType FIX 4.4 does not define in one read (38 KB): each gets its
    Reject 373=11 and is counted; the log has 10 lines (one a message filled the log: 250
    warnings a read), the last of the second's window saying how many it left out."""
    us.receive(raw("A", 1, [(98, "0"), (108, "30")]))
    labels = {"peer": "VENUE", "kind": "session", "reason": "11"}
    before = _metric("tradepulse_fix_rejects_sent_total", **labels)
    us.receive(b"".join(raw("ZZ", 2 + k) for k in range(250)))
    assert us.state == "active" and us.store.next_in == 252
    rejects = [f for t, f in frames(us.data_to_send()) if t == "3"]
    assert [int(f[45]) for f in rejects] == list(range(2, 252))
    assert _metric("tradepulse_fix_rejects_sent_total", **labels) - before == 250
    log = us._log  # type: ignore[attr-defined]  # the RecordingLog the fixture gave
    lines = [kw for _lvl, ev, kw in log.lines if ev == "fix_reject_sent"]
    assert len(lines) == 10 and lines[0]["reason"] == 11
    us._mono.advance(1.0)  # type: ignore[attr-defined]  # the FakeClock: next window
    us.receive(raw("ZZ", 252))
    lines = [kw for _lvl, ev, kw in log.lines if ev == "fix_reject_sent"]
    assert len(lines) == 11 and lines[-1]["suppressed"] == 240
