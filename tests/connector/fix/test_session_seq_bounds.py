"""Sequence numbers a venue's session messages name that no correct peer sends: a
ResendRequest from 0 or past our last message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.connector.fix import codec as fc
from actors.connector.fix.events import SessionRejectSent
from tests.connector.fix.test_session import FakeClock, Link, frames, raw


@pytest.fixture
def link(tmp_path: Path) -> Iterator[Link]:
    link = Link(tmp_path, FakeClock())
    link.logon()  # our next-out 2, next-in 2
    for i in range(4):
        link.us.send("D", [(11, f"c{i}")])  # 2..5: our last is 5
    link.pump()
    yield link
    link.us_store.close()
    link.venue_store.close()


def _resend_request(link: Link, begin: str, end: str) -> list[object]:
    return list(link.us.receive(raw("2", 2, [(7, begin), (16, end)], sent_s=link.clock())))


def _logged(link: Link, word: str) -> list[str]:
    return [ev for _lvl, ev, _kw in link.log.lines if word in ev]


def test_resend_request_from_zero_gets_a_reject_naming_begin_seq_no(link: Link) -> None:
    """BeginSeqNo(7)=0 names no message (numbers start at 1): a session Reject 373=5
    371=7, nothing resent, the number consumed, the session goes on. It was read as 1 and
    everything from 1 was resent."""
    events = _resend_request(link, "0", "0")
    text = "BeginSeqNo(7) 0: sequence numbers start at 1"
    assert events == [SessionRejectSent(2, fc.REASON_VALUE_INCORRECT, text)]
    [(msg_type, reject)] = frames(link.us.data_to_send())
    assert msg_type == "3"
    assert [reject[t] for t in (45, 371, 372, 373)] == [b"2", b"7", b"2", b"5"]
    assert link.us_store.next_in == 3 and link.us.state == "active"
    assert link.us.resends == 0 and _logged(link, "resend_served") == []


@pytest.mark.parametrize("end", ["0", "9"])
def test_resend_request_past_our_last_message_gets_a_reject_and_a_warning(
    link: Link, end: str
) -> None:
    """BeginSeqNo 6 when our last is 5 (EndSeqNo 0, infinity, or 9): the venue asks for
    numbers we never sent. A Reject 373=5 371=7 says so (it went unanswered: a venue
    waiting for those numbers learnt nothing), and ``fix_resend_request_beyond_last_sent``
    warns the operator: the venue believes our numbers are further than our store's."""
    events = _resend_request(link, "6", end)
    text = "BeginSeqNo(7) 6 above our last MsgSeqNum 5"
    assert events == [SessionRejectSent(2, fc.REASON_VALUE_INCORRECT, text)]
    [(msg_type, reject)] = frames(link.us.data_to_send())
    assert msg_type == "3" and [reject[t] for t in (45, 371, 373)] == [b"2", b"7", b"5"]
    assert link.us_store.next_in == 3 and link.us_store.next_out == 7
    assert link.us.state == "active" and link.us.resends == 0
    [(level, kw)] = [
        (lvl, kw) for lvl, ev, kw in link.log.lines if ev == "fix_resend_request_beyond_last_sent"
    ]
    assert level == "warning"
    assert kw == {"begin": 6, "end": int(end), "last_sent": 5, "suppressed": 0}


def test_resend_request_of_our_last_message_is_still_served(link: Link) -> None:
    """The bound is our last number, not below it: BeginSeqNo 5 brings message 5 again."""
    assert _resend_request(link, "5", "0") == []
    [(msg_type, resent)] = frames(link.us.data_to_send())
    assert msg_type == "D" and resent[34] == b"5" and resent[43] == b"Y"
