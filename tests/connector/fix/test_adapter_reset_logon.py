"""A venue that starts new sequence numbers on a live connection (Logon 141=Y at 1), seen
by the FIX adapter over a real loopback socket."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.connector.fix import codec as fc
from tests.connector.fix.test_adapter import Done, Harness, kinds, order


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    harness.close()


def test_venue_reset_logon_mid_session_keeps_the_connection_and_orders_flow(
    h: Harness,
) -> None:
    """Logged on with orders exchanged, the venue resets its store and sends Logon 141=Y at
    1: the connector stays up (no session down), answers with its reset Logon, which the
    venue takes as 1, and the next order goes at 2 and is acknowledged. Before, the
    connector logged out ("MsgSeqNum too low, expecting 3 but received 1")."""
    a = h.connected()
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: kinds(h.listener.execs) == [("c1", "accepted")])
    assert h.venue.session is not None and h.venue.conn is not None
    h.venue.store.reset()
    h.venue.store.set_numbers(next_out=2)  # its reset Logon below is 1
    header = [(49, b"MINI"), (56, b"TRADEPULSE"), (34, b"1")]
    header.append((52, fc.sending_time(time.time()).encode()))
    h.venue.conn.sendall(fc.encode("A", header, [(98, b"0"), (108, b"5"), (141, b"Y")]))
    h.loop.run_until(lambda: h.venue.store.next_in == 2)
    store = a.session.store
    assert (store.next_in, store.next_out) == (2, 2)
    done = Done()
    a.place(order("c2"), done)
    h.loop.run_until(lambda: ("c2", "accepted") in kinds(h.listener.execs))
    assert done.calls == [None] and h.venue.received[-1].seq == 2
    assert h.listener.downs == [] and a.is_active


def test_a_fill_held_behind_a_gap_reaches_the_listener_when_the_venue_resets(h: Harness) -> None:
    """Over a loopback socket: the venue's number N is lost (it skips it), its fill of c1
    comes at N + 1 and waits behind the gap; before any resend the venue resets (Logon
    141=Y at 1). The fill reaches the listener (the OMS) and the session stays up; it was
    dropped with the queue, and the venue's new store never sends it again."""
    a = h.connected()
    a.place(order("c1"), Done())
    h.loop.run_until(lambda: kinds(h.listener.execs) == [("c1", "accepted")])
    assert h.venue.session is not None and h.venue.conn is not None
    h.venue.store.set_numbers(next_out=h.venue.store.next_out + 1)  # N: never on the wire
    h.venue.exec_report("c1", "F", "2", cum="10", last="10", px="100")
    h.venue.conn.sendall(h.venue.session.data_to_send())
    h.venue.store.reset()
    h.venue.store.set_numbers(next_out=2)  # its reset Logon below is 1
    header = [(49, b"MINI"), (56, b"TRADEPULSE"), (34, b"1")]
    header.append((52, fc.sending_time(time.time()).encode()))
    h.venue.conn.sendall(fc.encode("A", header, [(98, b"0"), (108, b"5"), (141, b"Y")]))
    h.loop.run_until(lambda: len(h.listener.execs) == 2)
    assert kinds(h.listener.execs)[1][0] == "c1" and h.listener.execs[1].last_qty == 10
    assert (a.session.store.next_in, a.session.store.next_out) == (2, 2)
    assert h.listener.downs == [] and a.is_active
