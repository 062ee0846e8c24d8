"""The age bound of a resent NewOrderSingle of this connection (`order_resend_age_s`, two
HeartBtInt) runs on the monotonic clock, as every session interval does: a wall clock
stepped back made a D asked for ten minutes late look fresh (a PossDup copy past the
OMS's holds), one stepped forward made a D asked for at once look old (a gap fill: the
order waited for the OMS's periodic pass). (Found by a review of 5a6e4f9.)"""

from __future__ import annotations

from pathlib import Path

from tests.connector.fix.test_session import FakeClock, frames, initiator, raw


def _logged_on(tmp_path: Path, wall: FakeClock, mono: FakeClock):  # type: ignore[no-untyped-def]
    us = initiator(tmp_path, wall, mono)
    us.logon()
    us.receive(raw("A", 1, [(98, "0"), (108, "30")]))
    assert us.state == "active"
    us.data_to_send()
    us.send("D", [(11, "c1")])  # 2: garbled on the way, or lost behind the session
    us.data_to_send()
    return us


def _answer_to_resend_request(us, wall: FakeClock) -> list[tuple[str, bytes | None]]:  # type: ignore[no-untyped-def]
    us.receive(raw("2", 2, [(7, "2"), (16, "0")], sent_s=wall()))
    return [(t, f.get(43)) for t, f in frames(us.data_to_send())]


def test_a_d_asked_for_ten_minutes_late_is_gap_filled_whatever_the_wall_clock(
    tmp_path: Path,
) -> None:
    wall, mono = FakeClock(), FakeClock()
    us = _logged_on(tmp_path, wall, mono)
    wall.advance(-3600)  # an NTP correction
    mono.advance(600)  # ten minutes later, far past two HeartBtInt (60 s)
    out = _answer_to_resend_request(us, wall)
    assert ("D", b"Y") not in out, out  # a late copy: 5a6e4f9 gap-fills it


def test_a_d_asked_for_at_once_is_resent_whatever_the_wall_clock(tmp_path: Path) -> None:
    wall, mono = FakeClock(), FakeClock()
    us = _logged_on(tmp_path, wall, mono)
    wall.advance(3600)  # stepped forward
    mono.advance(1)  # asked for a second after its send: a garbled frame
    out = _answer_to_resend_request(us, wall)
    assert ("D", b"Y") in out, out
