"""FIX 4.4 session layer: two sessions wired in memory, plus hand-made raw messages."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from actors.connector.fix import codec as fc
from actors.connector.fix.events import (
    AppMessage,
    Disconnect,
    LoggedOn,
    LoggedOut,
    SessionEvent,
    SessionRejectReceived,
    SessionRejectSent,
)
from actors.connector.fix.session import FixSession
from actors.connector.fix.store import MAX_SEQ, FixStore
from protocol.exceptions import VenueError
from tests.log_stub import RecordingLog

T0 = 1_700_000_000.0


class FakeClock:
    def __init__(self) -> None:
        self.now_s = T0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def split_frames(data: bytes) -> list[bytes]:
    reader = fc.FrameReader()
    reader.feed(data)
    out = []
    while (frame := reader.next_frame()) is not None:
        out.append(frame.raw)
    return out


def frames(data: bytes) -> list[tuple[str, dict[int, bytes]]]:
    """(MsgType, first value of each tag) of every frame in `data`; all must be valid."""
    reader = fc.FrameReader()
    reader.feed(data)
    out = []
    while (frame := reader.next_frame()) is not None:
        assert frame.error is None, frame
        fields: dict[int, bytes] = {}
        for tag, value in fc.split_fields(frame.raw):
            fields.setdefault(int(tag), value)
        out.append((fields[35].decode(), fields))
    assert reader.junk_bytes == 0
    return out


def raw(
    msg_type: str,
    seq: int,
    body: Sequence[tuple[int, str]] = (),
    *,
    sender: str = "VENUE",
    target: str = "US",
    poss_dup: bool = False,
    sent_s: float = T0,
    header: list[tuple[int, str]] | None = None,
) -> bytes:
    """A hand-made frame from the venue to us (or `sender` to `target`)."""
    if header is None:
        header = [(49, sender), (56, target), (34, str(seq))]
        if poss_dup:
            header.append((43, "Y"))
        header.append((52, fc.sending_time(sent_s)))
    return fc.encode(
        msg_type,
        [(t, v.encode()) for t, v in header],
        [(t, v.encode()) for t, v in body],
    )


class Link:
    """An initiator ("US") and an acceptor ("VENUE") wired to each other in memory."""

    def __init__(self, tmp_path: Path, clock: FakeClock, **acceptor_kw: Any) -> None:
        self.tmp_path = tmp_path
        self.clock = clock
        self.acceptor_kw = acceptor_kw
        self.log = RecordingLog()
        self.open()

    def open(self) -> None:
        self.us_store = FixStore(self.tmp_path / "us", fsync=False)
        self.venue_store = FixStore(self.tmp_path / "venue", fsync=False)
        self.us = FixSession(
            sender_comp_id="US",
            target_comp_id="VENUE",
            store=self.us_store,
            initiator=True,
            heartbeat_s=30,
            clock=self.clock,
            monotonic=self.clock,
            log=self.log,
        )
        self.venue = FixSession(
            sender_comp_id="VENUE",
            target_comp_id="US",
            store=self.venue_store,
            initiator=False,
            heartbeat_s=30,
            clock=self.clock,
            monotonic=self.clock,
            log=self.log,
            **self.acceptor_kw,
        )
        self.venue.connection_made()

    def restart(self) -> None:
        """Both processes die (stores closed as kill -9 leaves them: flushed) and restart."""
        self.us_store.close()
        self.venue_store.close()
        self.open()

    def pump(self) -> tuple[list[SessionEvent], list[SessionEvent]]:
        """Move bytes both ways until both are quiet; (our events, venue events)."""
        ours: list[SessionEvent] = []
        theirs: list[SessionEvent] = []
        for _ in range(50):
            to_venue = self.us.data_to_send()
            to_us = self.venue.data_to_send()
            if not to_venue and not to_us:
                return ours, theirs
            if to_venue and self.venue.state != "closed":
                theirs += self.venue.receive(to_venue)
            if to_us and self.us.state != "closed":
                ours += self.us.receive(to_us)
        raise AssertionError("sessions never went quiet")

    def reconnect(self) -> None:
        """The TCP connection drops and a new one is accepted."""
        self.us.connection_lost()
        self.venue.connection_lost()
        self.venue.connection_made()

    def logon(self, reset: bool = False) -> tuple[list[SessionEvent], list[SessionEvent]]:
        self.us.logon(reset=reset)
        events = self.pump()
        assert self.us.state == self.venue.state == "active"
        return events


def orders_sent(tmp_path: Path, orders: int = 4) -> Iterator[Link]:
    """A Link logged on (both next numbers 2) with `orders` NewOrderSingles sent and read:
    our last MsgSeqNum is 1 + `orders`; both stores closed at the end (a fixture's body)."""
    link = Link(tmp_path, FakeClock())
    link.logon()
    for i in range(orders):
        link.us.send("D", [(11, f"c{i}")])
    link.pump()
    yield link
    link.us_store.close()
    link.venue_store.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def link(tmp_path: Path, clock: FakeClock) -> Iterator[Link]:
    link = Link(tmp_path, clock)
    yield link
    link.us_store.close()
    link.venue_store.close()


def apps(events: list[SessionEvent]) -> list[tuple[int, str, bool]]:
    return [
        (e.seq, fc.get_str(e.msg, 17) or "", e.poss_dup)
        for e in events
        if isinstance(e, AppMessage)
    ]


def exec_report(exec_id: str) -> list[tuple[int, str]]:
    return [
        (37, "O1"),
        (17, exec_id),
        (150, "0"),
        (39, "0"),
        (54, "1"),
        (151, "1"),
        (14, "0"),
        (6, "0"),
        (55, "X"),
    ]


def test_logon_handshake_and_app_messages_both_ways(link: Link) -> None:
    """Logon is answered with Logon, both sides report LoggedOn, and application
    messages travel with consecutive sequence numbers, delivered once each."""
    ours, theirs = link.logon()
    assert ours == [LoggedOn(False)] and theirs == [LoggedOn(False)]
    assert link.us.send("D", [(11, "c1"), (55, "X")]) == 2
    assert link.venue.send("8", exec_report("e1")) == 2
    ours, theirs = link.pump()
    assert apps(ours) == [(2, "e1", False)]
    assert [(e.msg_type, e.seq) for e in theirs if isinstance(e, AppMessage)] == [("D", 2)]
    assert (link.us_store.next_out, link.us_store.next_in) == (3, 3)


def test_send_before_logon_is_a_retryable_venue_error(link: Link) -> None:
    """send() outside the active state refuses instead of queueing silently."""
    with pytest.raises(VenueError) as info:
        link.us.send("D", [(11, "c1")])
    assert info.value.retryable


def test_gap_queues_later_messages_requests_resend_and_delivers_in_order(link: Link) -> None:
    """Message 3 is lost: 4 and 5 are held back, one ResendRequest(3, 0) goes out, and once
    3 is resent the held messages come out in order; resent copies of 4 and 5 are dropped."""
    link.logon()
    for exec_id in ("a", "b", "c", "d"):
        link.venue.send("8", exec_report(exec_id))
    m2, _lost, m4, m5 = split_frames(link.venue.data_to_send())
    assert apps(link.us.receive(m2)) == [(2, "a", False)]
    assert apps(link.us.receive(m4 + m5)) == []
    request = link.us.data_to_send()
    assert [(t, f[7], f[16]) for t, f in frames(request)] == [("2", b"3", b"0")]
    link.venue.receive(request)
    resent = link.venue.data_to_send()
    assert [(t, f[34], f.get(43)) for t, f in frames(resent)] == [
        ("8", b"3", b"Y"),
        ("8", b"4", b"Y"),
        ("8", b"5", b"Y"),
    ]
    assert apps(link.us.receive(resent)) == [(3, "b", True), (4, "c", False), (5, "d", False)]
    assert link.us_store.next_in == 6
    assert link.us.data_to_send() == b""  # no second ResendRequest


def test_resend_replays_app_messages_with_possdup_and_gap_fills_admin(link: Link) -> None:
    """A ResendRequest is served from the store: application messages again with
    PossDupFlag=Y, their OrigSendingTime and a fresh SendingTime; admin messages (here a
    heartbeat) become one SequenceReset-GapFill each run."""
    link.logon()
    link.us.send("D", [(11, "c1")])  # 2
    link.clock.advance(31)
    link.us.tick()  # heartbeat 3
    link.us.send("D", [(11, "c2")])  # 4
    link.pump()
    link.us.receive(raw("2", 2, [(7, "1"), (16, "0")], sent_s=link.clock()))
    out = frames(link.us.data_to_send())
    summary = [(t, f[34], f.get(36), f.get(123), f.get(43), f.get(11)) for t, f in out]
    assert summary == [
        ("4", b"1", b"2", b"Y", b"Y", None),
        ("D", b"2", None, None, b"Y", b"c1"),
        ("4", b"3", b"4", b"Y", b"Y", None),
        ("D", b"4", None, None, b"Y", b"c2"),
    ]
    assert out[1][1][122] == fc.sending_time(T0).encode()
    assert out[1][1][52] == fc.sending_time(T0 + 31).encode()
    assert link.us_store.next_out == 5  # resending takes no new numbers


def test_possdup_duplicate_of_processed_seq_is_dropped(link: Link) -> None:
    """A PossDup message whose number was already processed is dropped without a word."""
    link.logon()
    link.venue.send("8", exec_report("e1"))
    ours, _ = link.pump()
    assert apps(ours) == [(2, "e1", False)]
    again = raw("8", 2, exec_report("e1"), poss_dup=True)
    assert link.us.receive(again) == []
    assert link.us.data_to_send() == b"" and link.us.state == "active"


def test_gap_fill_advances_next_in(link: Link) -> None:
    """SequenceReset-GapFill at the expected number moves next-in to NewSeqNo; the next
    message at that number is delivered."""
    link.logon()
    assert link.us.receive(raw("4", 2, [(123, "Y"), (36, "7")], poss_dup=True)) == []
    assert link.us_store.next_in == 7
    assert apps(link.us.receive(raw("8", 7, exec_report("e7")))) == [(7, "e7", False)]


@pytest.mark.parametrize(
    ("seq", "new_seq", "next_in", "rejected"),
    [
        (999, 50, 50, False),  # the MsgSeqNum of a reset does not matter
        (1, 2, 2, False),  # same number: a no-op
        (2, 1, 2, True),  # lowering is refused
    ],
)
def test_sequence_reset_reset(
    link: Link, seq: int, new_seq: int, next_in: int, rejected: bool
) -> None:
    """SequenceReset without GapFillFlag sets next-in to NewSeqNo whatever its own
    MsgSeqNum; a NewSeqNo below next-in is rejected (value incorrect)."""
    link.logon()
    events = link.us.receive(raw("4", seq, [(36, str(new_seq))]))
    assert link.us_store.next_in == next_in
    assert any(isinstance(e, SessionRejectSent) for e in events) == rejected
    assert link.us.state == "active"


@pytest.mark.parametrize("gap_fill", [False, True])
@pytest.mark.parametrize("new_seq", ["2147483648", "9999999999"])
def test_a_new_seq_no_past_the_largest_seq_is_rejected_and_the_session_goes_on(
    link: Link, new_seq: str, gap_fill: bool
) -> None:
    """A SequenceReset (reset or gap fill) to a NewSeqNo past `MAX_SEQ` (2^31-1) gets a
    Reject (value incorrect) and next-in stays a number the store can keep: it used to be
    set, and the next `data_to_send()` raised struct.error outside any handler (it crashed
    the connector, or the simulator for a client's reset). Found by fuzzing (tests/fuzz)."""
    link.logon()
    flag = [(123, "Y")] if gap_fill else []
    events = link.us.receive(raw("4", 2, [*flag, (36, new_seq)]))
    assert any(isinstance(e, SessionRejectSent) for e in events)
    assert link.us_store.next_in <= MAX_SEQ + 1
    assert [t for t, _ in frames(link.us.data_to_send())] == ["3"]
    assert link.us.state == "active"


def test_a_msg_seq_num_past_the_largest_seq_ends_the_session(link: Link) -> None:
    """MsgSeqNum 4294967295 (reached after a reset to it, next-in became 2^32 and the
    store's flush raised): a bad header, Logout, Disconnect; nothing raises."""
    link.logon()
    events = link.us.receive(raw("8", 4294967295, exec_report("e1")))
    assert events == [Disconnect("MsgSeqNum missing or invalid")]
    [(msg_type, _)] = frames(link.us.data_to_send())
    assert msg_type == "5"


def test_too_low_seq_without_possdup_ends_the_session(link: Link) -> None:
    """A number below next-in without PossDupFlag: Logout naming both numbers, then
    Disconnect."""
    link.logon()
    events = link.us.receive(raw("8", 1, exec_report("old")))
    assert events == [Disconnect("MsgSeqNum too low, expecting 2 but received 1")]
    [(msg_type, fields)] = frames(link.us.data_to_send())
    assert msg_type == "5" and b"too low" in fields[58]
    assert link.us.state == "closed"
    assert link.us.receive(raw("8", 2, exec_report("late"))) == []  # closed: input ignored


def test_heartbeat_when_idle_and_test_request_then_disconnect_for_silent_peer(
    link: Link,
) -> None:
    """We send a Heartbeat after HeartBtInt without sending; a peer silent for HeartBtInt
    plus grace gets a TestRequest, and is disconnected if still silent after as long."""
    link.logon()
    link.clock.advance(29.9)
    assert link.us.tick() == [] and link.us.data_to_send() == b""
    link.clock.advance(0.1)
    assert link.us.tick() == []
    assert [t for t, _ in frames(link.us.data_to_send())] == ["0"]
    link.clock.advance(6)  # 36 s of silence = 30 + 20 % grace
    assert link.us.tick() == []
    [(msg_type, fields)] = frames(link.us.data_to_send())
    assert msg_type == "1" and fields[112]
    link.clock.advance(35.9)
    assert link.us.tick() == []
    link.clock.advance(0.1)
    assert link.us.tick() == [Disconnect("no answer to TestRequest")]


def initiator(tmp_path: Path, wall: FakeClock, mono: FakeClock) -> FixSession:
    """Our side (US) of a session with VENUE, not logged on; its store in `tmp_path`."""
    return FixSession(
        sender_comp_id="US",
        target_comp_id="VENUE",
        store=FixStore(tmp_path, fsync=False),
        initiator=True,
        heartbeat_s=30,
        clock=wall,
        monotonic=mono,
        log=RecordingLog(),
    )


def test_wall_clock_stepped_back_an_hour_does_not_delay_dead_peer_detection(
    tmp_path: Path,
) -> None:
    """Intervals run on the monotonic clock: with the wall clock stepped back an hour (an
    NTP correction, an operator) while the monotonic clock runs on, the Heartbeat, the
    TestRequest and the dead-peer disconnect all come on time; SendingTime follows the
    wall clock."""
    wall, mono = FakeClock(), FakeClock()
    us = initiator(tmp_path, wall, mono)
    us.logon()
    us.receive(raw("A", 1, [(98, "0"), (108, "30")]))
    assert us.state == "active"
    us.data_to_send()
    wall.advance(-3600)
    mono.advance(30)
    assert us.tick() == []
    [(msg_type, _)] = frames(us.data_to_send())
    assert msg_type == "0"
    mono.advance(6)
    assert us.tick() == []
    [(msg_type, fields)] = frames(us.data_to_send())
    assert msg_type == "1" and fields[52] == fc.sending_time(wall()).encode()
    mono.advance(36)
    assert us.tick() == [Disconnect("no answer to TestRequest")]


def test_wall_clock_stepped_back_does_not_stretch_the_logon_timeout(tmp_path: Path) -> None:
    """A Logon left unanswered times out after logon_timeout_s of monotonic time, whatever
    the wall clock does meanwhile."""
    wall, mono = FakeClock(), FakeClock()
    us = initiator(tmp_path, wall, mono)
    us.logon()
    wall.advance(-3600)
    mono.advance(10)
    assert us.tick() == [Disconnect("logon timeout")]


def test_test_request_is_answered_with_heartbeat_carrying_its_id(link: Link) -> None:
    """TestRequest(112=X) is answered at once by Heartbeat(112=X); any message from the
    peer clears our own pending TestRequest."""
    link.logon()
    link.us.receive(raw("1", 2, [(112, "ping-7")]))
    [(msg_type, fields)] = frames(link.us.data_to_send())
    assert (msg_type, fields[112]) == ("0", b"ping-7")


def test_silent_peer_answering_test_request_keeps_the_session(link: Link) -> None:
    """Two wired sessions: the TestRequest is answered, so nobody is disconnected."""
    link.logon()
    link.clock.advance(36)
    link.us.tick()
    link.venue.tick()
    link.pump()
    link.clock.advance(36)
    assert link.us.tick() == [] and link.us.state == "active"


def _without(tag: int) -> list[tuple[int, str]]:
    header = [(49, "VENUE"), (56, "US"), (34, "2"), (52, fc.sending_time(T0))]
    return [(t, v) for t, v in header if t != tag]


def _corrupt_checksum(data: bytes) -> bytes:
    return data[:-4] + (b"000" if data[-4:-1] != b"000" else b"001") + b"\x01"


def _corrupt_body_length(data: bytes) -> bytes:
    head, _, rest = data.partition(b"\x019=")
    length, _, body = rest.partition(b"\x01")
    return head + b"\x019=" + str(int(length) + 3).encode() + b"\x01" + body


def _reframed(data: bytes) -> bytes:
    """`data` with BodyLength and CheckSum recomputed for its (possibly edited) body."""
    body = data[data.index(b"\x0135=") + 1 : data.rindex(b"10=")]
    msg = b"8=FIX.4.4\x019=%d\x01%s" % (len(body), body)
    return msg + b"10=%03d\x01" % (sum(msg) & 0xFF)


GOOD = raw("8", 2, exec_report("e2"))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (raw("8", 2, exec_report("e2"), header=_without(52)), fc.REASON_REQUIRED_TAG_MISSING),
        (raw("ZZ", 2, [(58, "what")]), fc.REASON_INVALID_MSG_TYPE),
        (raw("1", 2, []), fc.REASON_REQUIRED_TAG_MISSING),
        (raw("8", 2, exec_report("e2"), sent_s=T0 - 3600), fc.REASON_SENDING_TIME),
    ],
    ids=["no_sending_time", "unknown_msg_type", "test_request_without_id", "sending_time_skew"],
)
def test_bad_message_gets_session_reject_and_session_keeps_working(
    link: Link, data: bytes, reason: int
) -> None:
    """A well-framed but invalid message is answered with Reject(3) (RefSeqNum,
    SessionRejectReason, Text) and its number is consumed. A SendingTime far off also
    ends the session."""
    link.logon()
    events = link.us.receive(data)
    rejects = [e for e in events if isinstance(e, SessionRejectSent)]
    assert [(e.ref_seq, e.reason) for e in rejects] == [(2, reason)]
    out = frames(link.us.data_to_send())
    assert (out[0][0], out[0][1][45], out[0][1][373]) == ("3", b"2", str(reason).encode())
    assert out[0][1][58]
    if reason == fc.REASON_SENDING_TIME:
        assert out[1][0] == "5" and link.us.state == "closed"
        return
    assert link.us_store.next_in == 3
    assert apps(link.us.receive(raw("8", 3, exec_report("ok")))) == [(3, "ok", False)]


def test_unreadable_garbage_is_skipped_and_junk_flood_disconnects(link: Link) -> None:
    """Bytes before a frame start are skipped; a garbled frame before logon disconnects
    (the peer may be anybody); a flood of bytes with no frame start at all disconnects."""
    link.logon()
    link.venue.send("8", exec_report("e2"))
    events = link.us.receive(b"hello\x01there" + link.venue.data_to_send())
    assert apps(events) == [(2, "e2", False)]
    events = link.us.receive(b"x" * 70_000)
    assert events == [Disconnect("garbage on the wire")]
    link.reconnect()
    link.us.logon()
    link.us.data_to_send()
    logon = raw("A", 1, [(98, "0"), (108, "30")])
    assert link.us.receive(_corrupt_checksum(logon)) == [
        Disconnect("garbled message: bad_checksum")
    ]


def _framed(body: bytes) -> bytes:
    """A frame with correct BodyLength and CheckSum around `body` (fields after 9=)."""
    msg = b"8=FIX.4.4\x019=%d\x01%s" % (len(body), body)
    return msg + b"10=%03d\x01" % (sum(msg) & 0xFF)


def _msg_type_not_third(data: bytes) -> bytes:
    """`data` with MsgType(35) moved behind SenderCompID(49), correctly framed."""
    body = data[data.index(b"\x0135=") + 1 : data.rindex(b"10=")]
    msg_type, sender, rest = body.split(b"\x01", 2)
    return _framed(b"\x01".join([sender, msg_type, rest]))


def _garbled_count(reason: str) -> float:
    labels = {"peer": "VENUE", "reason": reason}
    return REGISTRY.get_sample_value("tradepulse_fix_garbled_frames_total", labels) or 0.0


GARBLED = [
    pytest.param(_corrupt_checksum(GOOD), "bad_checksum", id="checksum"),
    pytest.param(_corrupt_body_length(GOOD), "bad_body_length", id="body_length"),
    pytest.param(_msg_type_not_third(GOOD), "msg_type_not_third", id="msg_type_not_third"),
    pytest.param(
        _reframed(GOOD.replace(b"\x0117=e2\x01", b"\x01junk\x01")),
        "not_tag_value",
        id="not_tag_value",
    ),
]


@pytest.mark.parametrize(("data", "reason"), GARBLED)
def test_garbled_frame_is_ignored_and_recovered_through_the_gap_it_leaves(
    link: Link, data: bytes, reason: str
) -> None:
    """A garbled message 2 (bad CheckSum, bad BodyLength, MsgType not the third field, not
    tag=value) gets no reply at all and its number is not consumed; it is counted and
    logged. Message 3 then opens a gap: ResendRequest(2, 0) goes out, and the resent 2 is
    delivered before 3, so the message is recovered instead of lost."""
    link.logon()
    before = _garbled_count(reason)
    assert link.us.receive(data) == []
    assert link.us.data_to_send() == b""
    assert link.us_store.next_in == 2 and link.us.state == "active"
    assert _garbled_count(reason) == before + 1
    logged = [r[2] for r in link.log.lines if r[1] == "fix_garbled_ignored"]
    assert [(r["reason"], r["seq"], r["expected_seq"]) for r in logged] == [(reason, 2, 2)]
    assert apps(link.us.receive(raw("8", 3, exec_report("e3")))) == []
    assert [(t, f[7], f[16]) for t, f in frames(link.us.data_to_send())] == [("2", b"2", b"0")]
    events = link.us.receive(raw("8", 2, exec_report("e2"), poss_dup=True))
    assert apps(events) == [(2, "e2", True), (3, "e3", False)]


def test_garbled_frame_without_readable_seq_is_ignored_too(link: Link) -> None:
    """Logged on, a garbled frame whose MsgSeqNum cannot be read is ignored as well (no
    Reject, no disconnect); the session carries on."""
    link.logon()
    assert link.us.receive(_corrupt_checksum(raw("8", 2, [], header=_without(34)))) == []
    assert link.us.data_to_send() == b"" and link.us.state == "active"
    assert apps(link.us.receive(raw("8", 2, exec_report("e2")))) == [(2, "e2", False)]


def test_garbled_frames_are_logged_at_most_once_a_second(link: Link) -> None:
    """A burst of garbled frames gives one fix_garbled_ignored line; the next line, a
    second later, says how many went unlogged in between. Each one is counted."""
    link.logon()
    before = _garbled_count("bad_checksum")
    for _ in range(5):
        link.us.receive(_corrupt_checksum(GOOD))
    link.clock.advance(1)
    link.us.receive(_corrupt_body_length(GOOD))
    logged = [r[2] for r in link.log.lines if r[1] == "fix_garbled_ignored"]
    assert [(r["reason"], r["unlogged"]) for r in logged] == [
        ("bad_checksum", 0),
        ("bad_body_length", 4),
    ]
    assert _garbled_count("bad_checksum") == before + 5


def test_garbled_frames_are_no_sign_of_life(link: Link) -> None:
    """A peer that sends only garbled frames is treated as silent: after HeartBtInt plus
    grace it gets a TestRequest."""
    link.logon()
    link.clock.advance(36)
    link.us.receive(_corrupt_checksum(GOOD))
    assert link.us.tick() == []
    assert [t for t, _ in frames(link.us.data_to_send())] == ["1"]


def test_gap_whose_resend_comes_garbled_again_is_requested_again_after_heartbeat(
    link: Link,
) -> None:
    """Message 2 comes garbled, 3 opens the gap, and the resent 2 comes garbled AGAIN: after
    one HeartBtInt without progress the ResendRequest(2, 0) goes out again (logged as
    fix_resend_rerequested), and when 2 finally arrives intact 2 and 3 come out in order."""
    link.logon()
    link.venue.send("8", exec_report("e2"))
    link.venue.send("8", exec_report("e3"))
    m2, m3 = split_frames(link.venue.data_to_send())
    assert link.us.receive(_corrupt_checksum(m2) + m3) == []
    request = link.us.data_to_send()
    assert [(t, f[7], f[16]) for t, f in frames(request)] == [("2", b"2", b"0")]
    link.venue.receive(request)
    r2, r3 = split_frames(link.venue.data_to_send())
    assert link.us.receive(_corrupt_checksum(r2) + r3) == []  # garbled again
    assert link.us_store.next_in == 2
    link.clock.advance(29)
    assert link.us.tick() == [] and link.us.data_to_send() == b""
    link.clock.advance(1)
    assert link.us.tick() == []
    request = link.us.data_to_send()
    assert [(t, f[7], f[16]) for t, f in frames(request)] == [("2", b"2", b"0")]
    logged = [r[2] for r in link.log.lines if r[1] == "fix_resend_rerequested"]
    assert [(r["begin"], r["attempt"]) for r in logged] == [(2, 1)]
    link.venue.receive(request)
    events = link.us.receive(link.venue.data_to_send())
    assert [(seq, exec_id) for seq, exec_id, _ in apps(events)] == [(2, "e2"), (3, "e3")]
    assert link.us_store.next_in == 4 and link.us.state == "active"
    link.clock.advance(30)
    link.us.tick()
    assert [t for t, _ in frames(link.us.data_to_send())] == ["0"]  # no further request


def test_gap_never_filled_ends_the_session_after_three_repeated_resend_requests(
    link: Link,
) -> None:
    """A gap at 2 that no resend fills, while the peer's heartbeats keep the session
    alive: one ResendRequest per HeartBtInt, three times, then Logout and Disconnect
    with a reason naming the gap (the reconnect and logon recover it)."""
    link.logon()
    assert link.us.receive(raw("8", 3, exec_report("e3"))) == []
    assert [(t, f[7]) for t, f in frames(link.us.data_to_send())] == [("2", b"2")]
    for seq in (4, 5, 6):
        link.clock.advance(30)
        assert link.us.receive(raw("0", seq, sent_s=link.clock())) == []
        assert link.us.tick() == []
        assert [(t, f[7], f[16]) for t, f in frames(link.us.data_to_send())] == [("2", b"2", b"0")]
    link.clock.advance(30)
    assert link.us.receive(raw("0", 7, sent_s=link.clock())) == []
    reason = "gap at seq 2 not filled after 3 resend requests"
    assert link.us.tick() == [Disconnect(reason)]
    assert [(t, f[58]) for t, f in frames(link.us.data_to_send())] == [("5", reason.encode())]
    logged = [r[2] for r in link.log.lines if r[1] == "fix_resend_rerequested"]
    assert [r["attempt"] for r in logged] == [1, 2, 3]


def test_msg_type_valid_in_fix44_but_unsupported_gets_business_reject(link: Link) -> None:
    """A FIX 4.4 MsgType the application does not take (QuoteRequest 35=R, IOI 35=6,
    ConfirmationRequest 35=BH) is answered with BusinessMessageReject(35=j): RefSeqNum,
    RefMsgType, BusinessRejectReason 380=3 (Unsupported Message Type), Text; no session
    Reject, and its number is consumed. One FIX 4.4 does not define (ZZ, I, BI) gets a
    session Reject 373=11 (Invalid MsgType), number consumed too."""
    link.logon()
    cases = [("R", "j"), ("ZZ", "3"), ("6", "j"), ("I", "3"), ("BH", "j"), ("BI", "3")]
    for seq, (msg_type, reply) in enumerate(cases, start=2):
        events = link.us.receive(raw(msg_type, seq, [(131, "Q1"), (55, "X")]))
        assert apps(events) == []
        [(out_type, f)] = frames(link.us.data_to_send())
        assert (msg_type, out_type, f[45], f[372]) == (
            msg_type,
            reply,
            b"%d" % seq,
            b"%b" % msg_type.encode(),
        )
        if reply == "j":
            assert f[380] == b"3" and msg_type.encode() in f[58] and 373 not in f
            assert events == []
        else:
            assert f[373] == b"11"
            assert [(e.ref_seq, e.reason) for e in events if isinstance(e, SessionRejectSent)] == [
                (seq, fc.REASON_INVALID_MSG_TYPE)
            ]
        assert link.us_store.next_in == seq + 1
    assert link.us.state == "active"


def test_business_reject_reaches_the_peer_as_an_application_message(link: Link) -> None:
    """Our QuoteRequest to the acceptor (which does not take R) comes back as a
    BusinessMessageReject the initiator receives in sequence; the reject is kept in the
    store, so a ResendRequest sends it again rather than gap-filling it."""
    link.logon()
    assert link.us.send("R", [(131, "Q1"), (55, "X")]) == 2
    ours, theirs = link.pump()
    assert theirs == [] and link.venue_store.next_in == 3
    [j] = [e for e in ours if isinstance(e, AppMessage)]
    got = (j.msg_type, j.seq, fc.get_str(j.msg, 45), fc.get_str(j.msg, 372), fc.get_str(j.msg, 380))
    assert got == ("j", 2, "2", "R", "3")
    assert [seq for seq, _ in link.venue_store.sent_messages(2, 2)] == [2]


def test_news_and_trading_session_status_are_accepted_and_logged(link: Link) -> None:
    """Unsolicited News (35=B) and TradingSessionStatus (35=h) are accepted: no reply,
    their numbers consumed, one log line each with the key fields."""
    link.logon()
    news = raw("B", 2, [(148, "Early close today"), (33, "1"), (58, "closes 13:00")])
    status = raw("h", 3, [(336, "DAY"), (340, "2")])
    assert link.us.receive(news + status) == []
    assert link.us.data_to_send() == b""
    assert link.us_store.next_in == 4
    logged = {r[1]: r[2] for r in link.log.lines}
    assert logged["fix_news"]["headline"] == "Early close today"
    tss = logged["fix_trading_session_status"]
    assert (tss["trading_session_id"], tss["trad_ses_status"]) == ("DAY", "2")
    assert apps(link.us.receive(raw("8", 4, exec_report("e4")))) == [(4, "e4", False)]


def test_session_without_informational_types_rejects_news(tmp_path: Path, clock: FakeClock) -> None:
    """The simulator's acceptor takes no News: 35=B from the client gets 35=j 380=3."""
    link = Link(tmp_path, clock, informational_msg_types=frozenset())
    link.logon()
    link.us.send("B", [(148, "hello"), (33, "1"), (58, "x")])
    ours, _ = link.pump()
    [j] = [e for e in ours if isinstance(e, AppMessage)]
    assert (j.msg_type, fc.get_str(j.msg, 372), fc.get_str(j.msg, 380)) == ("j", "B", "3")
    link.us_store.close()
    link.venue_store.close()


def test_incorrect_begin_string_or_comp_id_ends_the_session(link: Link) -> None:
    """Wrong BeginString: Logout + Disconnect. Wrong SenderCompID: Reject(9), Logout,
    Disconnect."""
    link.logon()
    bad = raw("0", 2).replace(b"8=FIX.4.4", b"8=FIX.4.2", 1)
    bad = bad[:-7] + b"10=%03d\x01" % (sum(bad[:-7]) & 0xFF)
    assert link.us.receive(bad) == [Disconnect("Incorrect BeginString")]
    link.reconnect()
    link.logon()
    events = link.us.receive(raw("0", 3, sender="MALLORY"))
    assert [type(e) for e in events] == [SessionRejectSent, Disconnect]
    assert [t for t, _ in frames(link.us.data_to_send())] == ["3", "5"]


def test_restart_resumes_sequence_numbers_and_replays_what_the_peer_missed(link: Link) -> None:
    """Both processes restart on their stores: numbers carry on where they were; the
    venue's execution report that never reached us is recovered through the gap our
    Logon reply reveals, and our cancel it never saw is replayed on its ResendRequest."""
    link.logon()
    link.us.send("D", [(11, "c1")])
    link.venue.send("8", exec_report("e1"))
    link.pump()
    link.us.send("F", [(11, "x1"), (41, "c1")])
    link.venue.send("8", exec_report("e2"))
    link.us.data_to_send()  # written to the store, lost on the wire
    link.venue.data_to_send()
    link.restart()
    assert (link.us_store.next_out, link.us_store.next_in) == (4, 3)
    assert (link.venue_store.next_out, link.venue_store.next_in) == (4, 3)
    link.us.logon()
    ours, theirs = link.pump()
    assert apps(ours) == [(3, "e2", True)]
    assert [(e.msg_type, e.seq, e.poss_dup) for e in theirs if isinstance(e, AppMessage)] == [
        ("F", 3, True)
    ]
    assert link.us.state == link.venue.state == "active"
    assert link.us_store.next_in == link.venue_store.next_out


def _orders_not_resent() -> float:
    labels = {"peer": "VENUE"}
    return REGISTRY.get_sample_value("tradepulse_fix_orders_not_resent_total", labels) or 0.0


@pytest.mark.parametrize("restart", [True, False], ids=["restarted", "reconnected"])
def test_an_order_sent_before_this_connection_gets_a_gap_fill_not_a_copy(
    link: Link, restart: bool
) -> None:
    """The venue never read a D of an earlier connection (lost on the wire, with the
    venue, or with our process): its ResendRequest gets a gap fill for that number,
    counted and logged, while the cancel around it goes again as a PossDup copy. Whether
    the order still goes is the OMS's call (reconciliation at the logon; a kill-switch
    engaged meanwhile holds it): a copy from the store went past all of that."""
    link.logon()
    link.us.send("F", [(11, "x1"), (41, "c0")])  # 2, read
    link.pump()
    link.us.send("D", [(11, "c1")])  # 3: lost on the wire
    link.us.send("F", [(11, "x2"), (41, "c0")])  # 4: lost on the wire
    link.us.data_to_send()
    before = _orders_not_resent()
    if restart:
        link.restart()
    else:
        link.reconnect()
    link.us.logon()  # 5
    _, theirs = link.pump()
    assert [(e.msg_type, e.seq, e.poss_dup) for e in theirs if isinstance(e, AppMessage)] == [
        ("F", 4, True)
    ]
    assert link.us.state == link.venue.state == "active"
    assert link.venue_store.next_in == link.us_store.next_out == 6
    assert _orders_not_resent() - before == 1
    served = [kw for _lvl, ev, kw in link.log.lines if ev == "fix_resend_served"]
    assert served[-1]["orders_gap_filled"] == 1 and served[-1]["resent"] == 1, served


def test_an_order_of_this_connection_the_venue_asks_for_again_is_resent(link: Link) -> None:
    """A D of the current connection the venue did not read (a garbled frame) is sent again
    at once, as a PossDup copy ahead of anything sent after it: it is the order's first
    send repaired, not a late one."""
    link.logon()
    link.us.send("D", [(11, "c1")])  # 2
    link.us.data_to_send()  # garbled on the way: the venue never read it
    link.us.send("D", [(11, "c2")])  # 3: the venue sees a gap, asks for 2..
    before = _orders_not_resent()
    _, theirs = link.pump()
    delivered = [(e.msg_type, e.seq, e.poss_dup) for e in theirs if isinstance(e, AppMessage)]
    assert delivered == [("D", 2, True), ("D", 3, False)], delivered
    assert _orders_not_resent() == before


def test_an_order_of_this_connection_asked_for_late_gets_a_gap_fill(link: Link) -> None:
    """Asked for more than two HeartBtInt after its send (a venue gateway that lost it
    behind the same session), a D of the current connection is no repair of its first
    send but a late one: a gap fill, as for an earlier connection's (the OMS's periodic
    pass resubmits it, past its holds); the cancel after it goes again."""
    link.logon()
    link.us.send("D", [(11, "c1")])  # 2: never read
    link.us.data_to_send()
    link.clock.advance(61)  # HeartBtInt 30
    link.us.send("F", [(11, "x1"), (41, "c0")])  # 3: the venue sees the gap, asks for 2..
    before = _orders_not_resent()
    _, theirs = link.pump()
    delivered = [(e.msg_type, e.seq, e.poss_dup) for e in theirs if isinstance(e, AppMessage)]
    assert ("D", 2, True) not in delivered and ("F", 3, False) in delivered, delivered
    assert _orders_not_resent() - before == 1
    assert link.us.state == link.venue.state == "active"


def test_reset_logon_sets_both_sides_to_one_and_clears_the_store(link: Link) -> None:
    """logon(reset=True) sends ResetSeqNumFlag=Y with MsgSeqNum 1; the acceptor resets its
    store too, and both report LoggedOn(reset=True)."""
    link.logon()
    for i in range(3):
        link.us.send("D", [(11, f"c{i}")])
        link.venue.send("8", exec_report(f"e{i}"))
    link.pump()
    link.us.logout()
    link.pump()
    link.reconnect()
    ours, theirs = link.logon(reset=True)
    assert ours == [LoggedOn(True)] and theirs == [LoggedOn(True)]
    for store in (link.us_store, link.venue_store):
        assert (store.next_in, store.next_out) == (2, 2)
        assert store.sent_messages(1, 100) == []


def test_logout_handshake(link: Link) -> None:
    """logout(text): the peer sees LoggedOut(text), answers, and both disconnect."""
    link.logon()
    link.us.logout("end of day")
    ours, theirs = link.pump()
    assert theirs == [LoggedOut("end of day"), Disconnect("peer logged out")]
    assert ours == [LoggedOut(""), Disconnect("logout complete")]


def test_logout_without_answer_times_out(link: Link) -> None:
    link.logon()
    link.us.logout()
    link.us.data_to_send()
    link.clock.advance(5)
    assert link.us.tick() == [Disconnect("logout timeout")]


@pytest.mark.parametrize(
    ("kw", "logon_from", "expected"),
    [
        (
            {"accept_logon": lambda msg: "venue closed for 30 s"},
            "US",
            [Disconnect("venue closed for 30 s")],
        ),
        ({}, "MALLORY", [Disconnect("CompID problem")]),
    ],
)
def test_acceptor_refuses_logon(
    tmp_path: Path,
    clock: FakeClock,
    kw: dict[str, Any],
    logon_from: str,
    expected: list[SessionEvent],
) -> None:
    """accept_logon returning a text refuses the logon with a Logout carrying it; a Logon
    from an unknown SenderCompID is dropped without a reply."""
    link = Link(tmp_path, clock, **kw)
    events = link.venue.receive(
        raw("A", 1, [(98, "0"), (108, "30")], sender=logon_from, target="VENUE")
    )
    assert events == expected
    out = frames(link.venue.data_to_send())
    if logon_from == "US":
        assert [(t, f[58]) for t, f in out] == [("5", b"venue closed for 30 s")]
    else:
        assert out == []


def test_refused_logon_reaches_initiator_as_logged_out(tmp_path: Path, clock: FakeClock) -> None:
    link = Link(tmp_path, clock, accept_logon=lambda msg: "maintenance")
    link.us.logon()
    ours, theirs = link.pump()
    assert ours == [LoggedOut("maintenance"), Disconnect("logon refused: maintenance")]
    assert theirs == [Disconnect("maintenance")]


def test_acceptor_disconnects_when_first_message_is_not_logon_or_none_comes(
    link: Link,
) -> None:
    assert link.venue.receive(raw("0", 1, sender="US", target="VENUE")) == [
        Disconnect("first message is not a Logon")
    ]
    link.venue.connection_lost()
    link.venue.connection_made()
    link.clock.advance(10)
    assert link.venue.tick() == [Disconnect("no Logon received")]


def test_logon_timeout(link: Link) -> None:
    link.us.logon()
    link.clock.advance(10)
    assert link.us.tick() == [Disconnect("logon timeout")]


def test_acceptor_adopts_initiator_heartbeat_interval(link: Link) -> None:
    link.us.heartbeat_s = 5
    link.logon()
    assert link.venue.heartbeat_s == 5


def test_password_is_never_logged(link: Link) -> None:
    """Username/Password passed via `extra` go on the wire but never into a log line."""
    link.us.logon(extra=[(553, "alice"), (554, "s3cret-pw")])
    data = link.us.data_to_send()
    assert b"554=s3cret-pw" in data
    link.venue.receive(data)
    assert "s3cret-pw" not in repr(link.log.lines)


def test_reject_from_peer_is_surfaced(link: Link) -> None:
    link.logon()
    events = link.us.receive(raw("3", 2, [(45, "7"), (372, "D"), (373, "5"), (58, "bad px")]))
    assert events == [SessionRejectReceived(7, "D", 5, "bad px")]


def test_any_chunking_gives_the_same_events(link: Link) -> None:
    """Bytes fed one at a time produce exactly the events of one big chunk."""
    link.logon()
    for i in range(3):
        link.venue.send("8", exec_report(f"e{i}"))
    data = link.venue.data_to_send()
    events: list[SessionEvent] = []
    for i in range(len(data)):
        events += link.us.receive(data[i : i + 1])
    assert apps(events) == [(2, "e0", False), (3, "e1", False), (4, "e2", False)]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunks=st.lists(
        st.binary(max_size=300)
        | st.sampled_from(
            [GOOD, GOOD[:40], GOOD[40:], b"8=FIX.4.4\x019=", b"\x0110=000\x01", b"8=FIX"]
        ),
        max_size=12,
    )
)
def test_random_bytes_never_raise(
    tmp_path_factory: pytest.TempPathFactory, chunks: list[bytes]
) -> None:
    """Whatever bytes arrive, receive() returns events and never raises."""
    clock = FakeClock()
    link = Link(tmp_path_factory.mktemp("fuzz"), clock)
    try:
        link.logon()
        for chunk in chunks:
            for event in link.us.receive(chunk) + link.venue.receive(chunk):
                assert isinstance(
                    event,
                    (
                        AppMessage,
                        Disconnect,
                        SessionRejectSent,
                        SessionRejectReceived,
                        LoggedOut,
                        LoggedOn,
                    ),
                )
            link.us.data_to_send()
            link.venue.data_to_send()
        assert not any(r[1] == "fix_session_internal_error" for r in link.log.lines)
    finally:
        link.us_store.close()
        link.venue_store.close()


def test_outbound_bytes_are_in_the_store_before_they_are_handed_out(link: Link) -> None:
    """By the time data_to_send() returns an application message, its bytes are in the
    store file (written, and fsynced when the store fsyncs)."""
    link.logon()
    link.us.send("D", [(11, "c1")])
    assert b"11=c1" not in (link.tmp_path / "us" / "session.log").read_bytes()
    data = link.us.data_to_send()
    assert data in (link.tmp_path / "us" / "session.log").read_bytes()


def test_resend_beyond_what_the_store_keeps_is_gap_filled(tmp_path: Path, clock: FakeClock) -> None:
    """Messages compacted out of the store are covered by one GapFill; the kept ones are
    resent in order."""
    store = FixStore(tmp_path, fsync=False, keep_msgs=3, max_bytes=1)
    us = FixSession(
        sender_comp_id="US",
        target_comp_id="VENUE",
        store=store,
        initiator=True,
        clock=clock,
        monotonic=clock,
        log=RecordingLog(),
    )
    us.logon()
    us.receive(raw("A", 1, [(98, "0"), (108, "30")]))
    for i in range(10):
        us.send("D", [(11, f"c{i}")])  # 2..11
        us.data_to_send()
    us.receive(raw("2", 2, [(7, "1"), (16, "0")]))
    out = frames(us.data_to_send())
    (first_type, fill), *resent = out
    kept_from = int(fill[36])
    assert first_type == "4" and fill[34] == b"1" and fill[123] == b"Y"
    assert 3 <= len(resent) < 10
    assert [(t, int(f[34])) for t, f in resent] == [("D", s) for s in range(kept_from, 12)]
    store.close()


def test_resend_request_across_a_gap_is_answered_at_once(link: Link) -> None:
    """A ResendRequest that itself arrives ahead of sequence is served right away (both
    sides may be waiting on each other), and our own ResendRequest follows."""
    link.logon()
    link.us.send("D", [(11, "c1")])
    link.us.data_to_send()
    link.us.receive(raw("2", 5, [(7, "2"), (16, "0")]))
    out = [(t, f[34], f.get(43)) for t, f in frames(link.us.data_to_send())]
    assert out == [("D", b"2", b"Y"), ("2", b"3", None)]


@pytest.mark.parametrize(("begin", "end"), [("4", "3"), ("9", "8")])  # 8: past our last (5)
def test_resend_request_with_begin_above_end_gets_a_reject_not_silence(
    link: Link, begin: str, end: str
) -> None:
    """ResendRequest BeginSeqNo > EndSeqNo (EndSeqNo not 0) asks for no range: a session
    Reject, SessionRejectReason 5 (value incorrect) and RefTagID 16 with the numbers in
    its Text, so the venue's operator sees why; nothing resent or gap-filled, the number
    consumed and the session goes on. It went unanswered (logged as served, resent 0)."""
    link.logon()
    for i in range(4):
        link.us.send("D", [(11, f"c{i}")])  # 2..5
    link.pump()
    events = link.us.receive(raw("2", 2, [(7, begin), (16, end)], sent_s=link.clock()))
    text = f"BeginSeqNo(7) {begin} above EndSeqNo(16) {end}"
    assert events == [SessionRejectSent(2, fc.REASON_VALUE_INCORRECT, text)]
    [(msg_type, reject)] = frames(link.us.data_to_send())
    assert msg_type == "3"
    assert [reject[t] for t in (45, 371, 372, 373)] == [b"2", b"16", b"2", b"5"]
    assert reject[58] == text.encode()
    assert link.us_store.next_in == 3 and link.us_store.next_out == 7
    assert link.us.state == "active"
    logged = [(ev, kw) for _lvl, ev, kw in link.log.lines if "resend" in ev or "reject" in ev]
    assert [ev for ev, _kw in logged] == ["fix_reject_sent"]


def _mutated_chunks(data: st.DataObject, stream: bytes) -> list[bytes]:
    """`stream` with a few bytes flipped, dropped or inserted, cut into random chunks."""
    buf = bytearray(stream)
    for _ in range(data.draw(st.integers(0, 6))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        action = data.draw(st.sampled_from(["flip", "drop", "insert"]))
        if action == "flip":
            buf[pos] ^= data.draw(st.integers(1, 255))
        elif action == "drop":
            del buf[pos]
        else:
            buf[pos:pos] = data.draw(st.sampled_from([b"\x01", b"=", b"8=FIX.4.4\x01", b"9"]))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(buf)), max_size=8)))
    return [bytes(buf[a:b]) for a, b in zip([0, *cuts], [*cuts, len(buf)], strict=True)]


TO_US = b"".join(raw("8", seq, exec_report(f"e{seq}")) for seq in range(2, 7))
TO_VENUE = raw("A", 1, [(98, "0"), (108, "30")], sender="US", target="VENUE") + b"".join(
    raw("D", seq, [(11, f"c{seq}")], sender="US", target="VENUE") for seq in range(2, 6)
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_valid_stream_never_raises(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Flipped, dropped and inserted bytes in a valid stream, fed in random chunks to a
    logged-on initiator and to an acceptor awaiting a Logon, give events, never an
    exception."""
    link = Link(tmp_path_factory.mktemp("mut"), FakeClock())
    try:
        link.us.logon()
        link.us.data_to_send()
        link.us.receive(raw("A", 1, [(98, "0"), (108, "30")]))
        for chunk in _mutated_chunks(data, TO_US):
            link.us.receive(chunk)
            link.us.data_to_send()
        for chunk in _mutated_chunks(data, TO_VENUE):
            link.venue.receive(chunk)
            link.venue.data_to_send()
        assert not any(r[1] == "fix_session_internal_error" for r in link.log.lines)
    finally:
        link.us_store.close()
        link.venue_store.close()


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (Decimal("1E+2"), b"100"),
        (Decimal("0.00010"), b"0.00010"),
        (7, b"7"),
        ("AB", b"AB"),
        (b"x", b"x"),
    ],
)
def test_field_values_are_encoded_plainly(value: fc.Value, wire: bytes) -> None:
    assert fc.fix_value(value) == wire


@pytest.mark.parametrize("value", ["", b"a\x01b"])
def test_empty_or_soh_values_are_refused(value: fc.Value) -> None:
    with pytest.raises(ValueError):
        fc.fix_value(value)


def test_sending_time_round_trips() -> None:
    ts = 1_700_000_000.125
    text = fc.sending_time(ts)
    assert text == "20231114-22:13:20.125"
    assert fc.parse_sending_time(text) == pytest.approx(ts)
    assert fc.parse_sending_time("20231314-22:13:20") is None
