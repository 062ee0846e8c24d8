"""A venue's reset Logon (141=Y at 1) while logged on, and the messages of the old numbering
around it: received behind a gap, crossing the reset on the wire, asked for after it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.connector.fix.events import AppMessage, Disconnect
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


def _reset_logon(link: Link) -> bytes:
    return raw("A", 1, [(98, "0"), (108, "30"), (141, "Y")], sent_s=link.clock())


def test_a_fill_queued_behind_a_gap_is_delivered_not_dropped_by_the_reset(link: Link) -> None:
    """The venue's 3 (a fill) came, its 2 did not (garbled): 3 waits behind the gap, our
    ResendRequest is out. Then the venue resets (Logon 141=Y at 1): it will never resend
    2 or 3 (its store is new). The fill we hold is delivered before the numbers start
    again, not dropped with the queue (the OMS learnt of it only from a later pass, and
    with `serves_positions = false` the fill ledger never did)."""
    assert link.us.receive(raw("8", 3, exec_report("f3"), sent_s=link.clock())) == []
    [(msg_type, _request)] = frames(link.us.data_to_send())
    assert msg_type == "2"
    events = link.us.receive(_reset_logon(link))
    assert apps(events) == [(3, "f3", False)]
    [(msg_type, answer)] = frames(link.us.data_to_send())
    assert msg_type == "A" and answer[34] == b"1"
    assert (link.us_store.next_in, link.us_store.next_out) == (2, 2)
    [kw] = [kw for _lvl, ev, kw in link.log.lines if ev == "fix_reset_by_peer"]
    assert kw["delivered"] == 1
    assert apps(link.us.receive(raw("8", 2, exec_report("e2"), sent_s=link.clock()))) == [
        (2, "e2", False)
    ]


def test_an_order_crossing_the_reset_is_taken_once_at_the_answer_not_later_as_another_number(
    link: Link,
) -> None:
    """Both sides ours (the simulator shares this code). The venue resets and sends its
    Logon 141=Y at 1; our D at the old 6 crosses it on the wire and waits behind the gap
    at the venue (next-in 1). Our answering Logon at 1 ends the old numbering there: the
    crossing D is delivered then, once. Before, it stayed queued and was taken as our new
    6 when our new numbers reached it (an order of the old numbering executed late, in the
    place of another), then our real 6 was "MsgSeqNum too low" and the session ended."""
    link.venue_store.reset()
    link.venue_store.set_numbers(next_out=2)  # its reset Logon took 1
    link.us.send("D", [(11, "crossing")])  # our old 6, on the wire already
    theirs = link.venue.receive(link.us.data_to_send())
    assert [e for e in theirs if isinstance(e, AppMessage)] == []  # queued: next-in 1
    link.us.receive(_reset_logon(link))
    theirs = link.venue.receive(link.us.data_to_send())  # our answer at 1
    assert [e.msg.get(11) for e in theirs if isinstance(e, AppMessage)] == [b"crossing"]
    link.pump()
    for i in range(6):
        link.us.send("D", [(11, f"n{i}")])  # our new 2..7
    ours, theirs = link.pump()
    got = [(e.seq, e.msg.get(11)) for e in theirs if isinstance(e, AppMessage)]
    assert got == [(2 + i, f"n{i}".encode()) for i in range(6)]
    assert not any(isinstance(e, Disconnect) for e in ours + theirs)
    assert link.us.state == link.venue.state == "active"


def test_an_order_sent_after_the_reset_is_resent_on_request(link: Link) -> None:
    """An order of the new numbering asked for at once (garbled on the wire) goes again as
    a PossDup copy, as any young order does: the young orders of the old numbering (higher
    numbers) made it "old" and gap-filled, and the OMS resubmitted it a timeout later."""
    link.clock.advance(61.0)  # c0..c3 (2..5) are old; c4 at 6 is young
    link.us.send("D", [(11, "c4")])
    link.pump()
    link.us.receive(_reset_logon(link))
    link.us.data_to_send()
    assert link.us.send("D", [(11, "fresh")]) == 2
    link.us.data_to_send()
    assert link.us.receive(raw("2", 2, [(7, "2"), (16, "0")], sent_s=link.clock())) == []
    [(msg_type, resent)] = frames(link.us.data_to_send())
    assert msg_type == "D" and resent[11] == b"fresh" and resent[43] == b"Y"


def test_what_answered_the_old_numbers_in_the_same_read_is_not_sent_after_the_reset(
    link: Link,
) -> None:
    """One read brings a ResendRequest of the old numbers (1 on), the venue's reset Logon,
    and its ResendRequest of the new ones (1 on). The copies answering the first, not yet
    handed out, are old numbers the venue just reset: they are not sent (they reached it
    after its reset, ahead of our Logon: four D's at 2..5 again, PossDup, where its new
    numbers start), and the second request is answered (it was skipped as "covered" by
    the first's copies)."""
    now = link.clock()
    data = raw("2", 2, [(7, "1"), (16, "0")], sent_s=now) + _reset_logon(link)
    data += raw("2", 2, [(7, "1"), (16, "0")], sent_s=now)
    assert link.us.receive(data) == []
    sent = [(t, f[34], f.get(36)) for t, f in frames(link.us.data_to_send())]
    assert sent == [("A", b"1", None), ("4", b"1", b"2")]
