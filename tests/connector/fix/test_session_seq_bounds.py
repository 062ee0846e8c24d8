"""Sequence numbers a venue's session messages name that no correct peer sends: a
ResendRequest from 0 or past our last message, a gap fill that jumps absurdly far."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.connector.fix import codec as fc
from actors.connector.fix.events import AppMessage, Disconnect, SessionRejectSent
from actors.connector.fix.inbound import MAX_GAP_FILL_JUMP
from tests.connector.fix.test_session import (
    Link,
    apps,
    exec_report,
    frames,
    orders_sent,
    raw,
)


@pytest.fixture
def link(tmp_path: Path) -> Iterator[Link]:
    yield from orders_sent(tmp_path)  # Ds at 2..5: our last is 5


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


@pytest.mark.parametrize("new_seq", [2_147_483_647, 2 + MAX_GAP_FILL_JUMP + 1])
def test_gap_fill_jumping_absurdly_far_is_rejected_and_the_session_goes_on(
    link: Link, new_seq: int
) -> None:
    """A GapFill at 2 to NewSeqNo 2^31-1 (or one past the bound) with nothing seen there:
    a Reject 373=5 371=36, only its own number consumed, and the venue's next message (3)
    is delivered. It was accepted: next-in 2^31-1 was stored, every later message was
    "MsgSeqNum too low" and the session ended, at every logon after too."""
    fill = raw("4", 2, [(123, "Y"), (36, str(new_seq))], sent_s=link.clock())
    [event] = link.us.receive(fill)
    assert isinstance(event, SessionRejectSent) and event.reason == fc.REASON_VALUE_INCORRECT
    [(msg_type, reject)] = frames(link.us.data_to_send())
    assert msg_type == "3" and [reject[t] for t in (45, 371, 373)] == [b"2", b"36", b"5"]
    assert link.us_store.next_in == 3
    events = link.us.receive(raw("8", 3, exec_report("e3"), sent_s=link.clock()))
    assert apps(events) == [(3, "e3", False)] and link.us.state == "active"


def test_gap_fill_within_the_bound_is_taken(link: Link) -> None:
    """A skip of exactly `MAX_GAP_FILL_JUMP` numbers is a gap fill like any other."""
    new_seq = 2 + MAX_GAP_FILL_JUMP
    assert link.us.receive(raw("4", 2, [(123, "Y"), (36, str(new_seq))], sent_s=link.clock())) == []
    assert link.us_store.next_in == new_seq


def test_a_far_jump_the_venue_really_made_is_taken_once_its_messages_come(link: Link) -> None:
    """The venue really skipped (a refused jump costs one round trip): its next message at
    the far number opens a gap, our ResendRequest brings the GapFill again, and this time
    it is taken (a message at that number was seen) and the queued message delivered."""
    far = 2 + MAX_GAP_FILL_JUMP * 10
    link.us.receive(raw("4", 2, [(123, "Y"), (36, str(far))], sent_s=link.clock()))
    assert link.us_store.next_in == 3
    link.us.data_to_send()
    assert link.us.receive(raw("8", far, exec_report("far"), sent_s=link.clock())) == []
    [(msg_type, request)] = frames(link.us.data_to_send())
    assert msg_type == "2" and request[7] == b"3"
    again = raw("4", 3, [(123, "Y"), (36, str(far))], poss_dup=True, sent_s=link.clock())
    assert apps(link.us.receive(again)) == [(far, "far", False)]
    assert link.us_store.next_in == far + 1 and link.us.state == "active"


def test_reset_logon_mid_session_starts_both_numbers_again_and_keeps_the_session(
    link: Link,
) -> None:
    """The venue sends Logon ResetSeqNumFlag=Y at MsgSeqNum 1 while logged on (FIX's way to
    start new numbers on a 24-hour connection): our numbers start again too, our own reset
    Logon (34=1, 141=Y, our HeartBtInt) answers it, the old kept messages are gone, and
    the session goes on at 2 both ways. It ended as "MsgSeqNum too low, expecting 2 but
    received 1", and the stored next-in refused the venue's logons after."""
    link.venue.send("8", exec_report("e1"))  # venue's 2: our next-in 3
    link.pump()
    reset = raw("A", 1, [(98, "0"), (108, "30"), (141, "Y")], sent_s=link.clock())
    assert link.us.receive(reset) == []
    [(msg_type, answer)] = frames(link.us.data_to_send())
    assert msg_type == "A" and [answer[t] for t in (34, 108, 141)] == [b"1", b"30", b"Y"]
    assert (link.us_store.next_in, link.us_store.next_out) == (2, 2)
    assert link.us_store.sent_messages(1, 100) == [] and link.us.state == "active"
    [(level, kw)] = [(lvl, kw) for lvl, ev, kw in link.log.lines if ev == "fix_reset_by_peer"]
    assert level == "warning" and kw == {"old_next_in": 3, "old_next_out": 6, "delivered": 0}
    events = link.us.receive(raw("8", 2, exec_report("e2"), sent_s=link.clock()))
    assert apps(events) == [(2, "e2", False)]
    assert link.us.send("D", [(11, "after")]) == 2


def test_reset_logon_mid_session_not_at_one_ends_the_session(link: Link) -> None:
    """A reset Logon must be MsgSeqNum 1 (as at logon): at 7 it is a broken peer, the
    session ends with a Logout saying so, and nothing is reset (before: it was queued
    behind a gap and rejected as a Logon while logged on)."""
    reset = raw("A", 7, [(98, "0"), (108, "30"), (141, "Y")], sent_s=link.clock())
    [event] = link.us.receive(reset)
    assert event == Disconnect("ResetSeqNumFlag(141)=Y with MsgSeqNum not 1")
    [(msg_type, logout)] = frames(link.us.data_to_send())
    assert msg_type == "5" and logout[34] == b"6"
    assert link.us_store.next_in == 2 and len(link.us_store.sent_messages(2, 5)) == 4


def test_reset_logon_answer_is_no_new_reset_and_both_sides_go_on(link: Link) -> None:
    """Both sides ours: the venue reset (its store at next-in 1, its Logon 141=Y at 1 sent),
    our answering reset Logon reaches it while it waits at next-in 1: that is the answer,
    taken with no reset and no answer of its own (a ping-pong of reset Logons otherwise),
    and messages flow at 2 both ways. A repeated reset Logon with nothing exchanged since
    (numbers at 2/2) is no new reset either."""
    link.venue_store.reset()
    link.venue_store.set_numbers(next_out=2)  # its reset Logon took 1
    reset = raw("A", 1, [(98, "0"), (108, "30"), (141, "Y")], sent_s=link.clock())
    link.us.receive(reset)
    answer = link.us.data_to_send()
    assert link.venue.receive(answer) == [] and link.venue.data_to_send() == b""
    assert (link.venue_store.next_in, link.venue_store.next_out) == (2, 2)
    assert link.us.receive(reset) == [] and link.us.data_to_send() == b""
    link.us.send("D", [(11, "after")])
    link.venue.send("8", exec_report("e-after"))
    ours, theirs = link.pump()
    assert apps(ours) == [(2, "e-after", False)]
    assert [e.seq for e in theirs if isinstance(e, AppMessage)] == [2]
    assert link.us.state == link.venue.state == "active"


def test_a_resent_copy_of_a_reset_logon_is_a_duplicate_not_a_reset(link: Link) -> None:
    """A venue that resends its old reset Logon (PossDupFlag=Y, MsgSeqNum 1: admin messages
    should be gap-filled, but a venue may send the copy) resets nothing: it is below
    next-in with PossDup, dropped as any duplicate, no answer, the numbers kept."""
    copy = raw("A", 1, [(98, "0"), (108, "30"), (141, "Y")], poss_dup=True, sent_s=link.clock())
    assert link.us.receive(copy) == [] and link.us.data_to_send() == b""
    assert (link.us_store.next_in, link.us_store.next_out) == (2, 6)
    assert len(link.us_store.sent_messages(2, 5)) == 4 and link.us.state == "active"


def test_a_reset_logon_while_logging_out_resets_nothing(link: Link) -> None:
    """Our Logout is out: the session is ending on the old numbers, a reset Logon at 1 is
    "too low" there as before (the next logon starts afresh if the venue reset)."""
    link.us.logout("end of day")
    link.us.data_to_send()
    reset = raw("A", 1, [(98, "0"), (108, "30"), (141, "Y")], sent_s=link.clock())
    [event] = link.us.receive(reset)
    assert isinstance(event, Disconnect) and "MsgSeqNum too low" in event.reason
    assert link.us_store.next_in == 2
