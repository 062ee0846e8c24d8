"""After our FIX numbering restarts (ResetSeqNumFlag on every logon, an operator reset, or
next-out lowered) the outbound queue forgets the old numbers: a venue Reject (35=3 without
RefMsgType, or a 35=j with RefSeqNum) of a number that in the new session carried an admin
message is not matched to the old session's D and taken as a final refusal of that order
(which may be live and filled at the venue)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from actors.connector.fix.outbound import Outbound, OutboundQueue
from actors.connector.fix.store import FixStore
from actors.connector.ratelimit import TokenBucket


class _Session:
    state = "active"

    def __init__(self, store: FixStore) -> None:
        self.store = store

    def send(self, msg_type: str, fields: list[tuple[int, Any]]) -> int:
        seq = self.store.next_out
        self.store.save_sent(seq, b"35=%s\x0111=x\x01" % msg_type.encode())
        return seq

    def admin(self) -> int:
        seq = self.store.next_out
        self.store.set_next_out(seq + 1)
        return seq


def _sent(store: FixStore, last: int) -> tuple[OutboundQueue, _Session]:
    """The Logon (1), then D's old-2..old-`last` sent through a queue on `store`."""
    out = OutboundQueue(TokenBucket(1e9, 1_000_000), lambda _s: None, store)
    session = _Session(store)
    session.admin()
    for i in range(2, last + 1):
        out.put(Outbound("D", [], None, f"old-{i}"))
    out.pump(session)  # type: ignore[arg-type]
    out.record_sent()  # as the adapter does once the turn's bytes are written
    return out, session


def test_a_reject_of_a_new_sessions_heartbeat_is_not_matched_to_an_old_sessions_order(
    tmp_path: Path,
) -> None:
    with FixStore(tmp_path, fsync=False) as store:
        out, session = _sent(store, 5)
        store.reset()  # reconnect with ResetSeqNumFlag=Y: numbering from 1 again
        assert session.admin() == 1  # Logon
        assert session.admin() == 2  # a Heartbeat carries number 2 now
        # the venue rejects our 2 (e.g. SendingTime accuracy): it was a Heartbeat
        assert out.sent_request(2) == ("", ""), "matched to the previous session's D"
        assert not out.is_latest_order_send(2, "old-2")


def test_next_out_lowered_by_the_operator_forgets_the_numbers_it_takes_back(
    tmp_path: Path,
) -> None:
    with FixStore(tmp_path, fsync=False) as store:
        out, session = _sent(store, 5)
        assert out.sent_request(3) == ("D", "old-3")  # known while the numbering holds
        store.set_numbers(next_out=3)
        assert session.admin() == 3
        assert out.sent_request(4) == ("", "")
        assert out.last_send_seq("old-4") is None


def test_next_out_raised_keeps_the_numbers_sent(tmp_path: Path) -> None:
    with FixStore(tmp_path, fsync=False) as store:
        out = OutboundQueue(TokenBucket(1e9, 1_000_000), lambda _s: None, store)
        session = _Session(store)
        session.admin()
        out.put(Outbound("D", [], None, "c-2"))
        out.pump(session)  # type: ignore[arg-type]
        out.record_sent()
        store.set_numbers(next_out=100)
        assert out.is_latest_order_send(2, "c-2") and out.sent_request(2) == ("D", "c-2")


def test_next_out_lowered_keeps_the_numbers_below_it(tmp_path: Path) -> None:
    """Numbers below the new next-out are never used again: a Reject of one of them is
    still matched to its D (only those from next-out on are forgotten)."""
    with FixStore(tmp_path, fsync=False) as store:
        out, session = _sent(store, 5)
        store.set_numbers(next_out=4)
        assert out.is_latest_order_send(2, "old-2") and out.sent_request(2) == ("D", "old-2")
        assert out.last_send_seq("old-4") is None and out.sent_request(5) == ("", "")


def test_resent_through_is_of_the_current_numbering(tmp_path: Path) -> None:
    """After the venue asked for a resend through 100, a reset (or next-out lowered to K)
    gives those numbers to new messages: a genuine Reject of a new D numbered below 100 is
    final again (it was taken as 'outcome unknown' in every later numbering)."""
    from actors.connector.fix.session import FixSession

    with FixStore(tmp_path, fsync=False) as store:
        session = FixSession(
            sender_comp_id="US", target_comp_id="VENUE", store=store, initiator=True
        )
        for i in range(1, 101):
            store.save_sent(i, b"8=FIX.4.4\x019=5\x0135=D\x0111=c%d\x0110=000\x01" % i)
        session._tx.resend(1, 0)  # the venue asked for everything once
        assert session.resent_through == 100
        store.set_numbers(next_out=40)
        assert session.resent_through == 39
        store.reset()
        assert session.resent_through == 0


def test_two_lowered_next_outs_in_a_row_forget_from_the_lower(tmp_path: Path) -> None:
    """The operator lowers next-out to 3, heartbeats take 3..6, then lowers it to 5 before
    the queue sends again: numbers from 3 on carried new messages, so a Reject of our 4 (a
    heartbeat now) must not match the D old-4."""
    with FixStore(tmp_path, fsync=False) as store:
        out, session = _sent(store, 7)
        store.set_numbers(next_out=3)
        for _ in range(4):
            session.admin()  # heartbeats 3..6
        store.set_numbers(next_out=5)
        assert out.sent_request(4) == ("", "") and out.last_send_seq("old-4") is None
        assert out.is_latest_order_send(2, "old-2")


def test_the_store_tells_the_lowest_number_reused_since_a_numbering(tmp_path: Path) -> None:
    with FixStore(tmp_path, fsync=False) as store:
        store.set_numbers(next_out=100)
        start = store.numbering
        assert store.reused_since(start) > 10**9  # nothing reused since
        store.set_numbers(next_out=40)
        store.set_numbers(next_out=60)  # raised: numbers 40..59 skipped, none reused
        store.set_numbers(next_out=50)
        assert store.reused_since(start) == 40 and store.reused_since(start + 1) == 50
        for k in range(20):
            store.set_numbers(next_out=30 - k)  # each one lower
        assert store.reused_since(start) == 1  # more changes than remembered: all forgotten


def test_sends_are_noted_after_the_bytes_in_the_numbering_they_went_in(tmp_path: Path) -> None:
    """`pump` leaves the maps to `record_sent` (after the write): nothing is known of the
    sends before it, all of it after; a renumbering in between forgets the numbers it
    gives again, as if the sends had been noted at once."""
    with FixStore(tmp_path, fsync=False) as store:
        out = OutboundQueue(TokenBucket(1e9, 1_000_000), lambda _s: None, store)
        session = _Session(store)
        session.admin()
        for i in (2, 3, 4):
            out.put(Outbound("D", [], lambda _err: None, f"c-{i}"))
        assert len(out.pump(session)) == 3  # type: ignore[arg-type]
        assert out.answered("c-2") is None  # no send time yet: the bytes are not out
        out.record_sent()
        assert out.sent_request(2) == ("D", "c-2") and out.last_send_seq("c-3") == 3
        assert out.answered("c-2") is not None
        out.put(Outbound("D", [], None, "c-5"))
        out.pump(session)  # type: ignore[arg-type]
        store.set_numbers(next_out=4)  # 4 and on go to new messages
        out.record_sent()
        assert out.sent_request(5) == ("", "") and out.last_send_seq("c-5") is None
        assert out.last_send_seq("c-4") is None and out.is_latest_order_send(3, "c-3")
