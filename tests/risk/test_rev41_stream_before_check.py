"""Review rev41 (commit 245291c): risk's copy of the event stream is held back and sent
"just before the OMS's next message to risk" (`EventStreams.follows` / `Peer.before_send`),
so "a check still follows the events published before it, as from one PUB". The events
and the check now reach risk together, on two sockets (the SUB of `risk-events.sock`, the
ROUTER), and risk's loop runs its handlers in registration order: the ROUTER (the base
`Actor`) before the SUB (`ExposureSync`). A check that arrives with the events the OMS
published before it is answered from the view without them.

Here: the OMS took 90 AAPL as its cold start's opening position and said so
(`opening_positions`), then a buy of 50 reaches risk (90 + 50 > max_position 100). Sent
together, as `EventStreams` now always sends them, the check is approved from the view
without the opening position (risk never marked itself unready for the rebuild)."""

from __future__ import annotations

import time
from decimal import Decimal as D

import zmq

from protocol.messages import OPENING_POSITIONS, PositionView, RiskVerdict, Side, StreamEvent
from tests.actor_stubs import Client, Harness
from tests.risk.test_actor import check, start


def _both_readable(socks: list[zmq.Socket[bytes]], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not all(s.poll(0) for s in socks):  # poll(0): nothing read, a condition only
        assert time.monotonic() < deadline, "the event and the check never both arrived"
        time.sleep(0.001)  # not synchronisation: the loop above is the wait


def test_a_check_sent_right_after_opening_positions_waits_for_them(h: Harness) -> None:
    actor = start(h)
    h.oms.positions = [PositionView(venue="simA", symbol="AAPL", qty=D(90), avg_px=D(100))]
    client = Client(h, "risk")
    warm = client.request(check("s0", "1", side=Side.SELL))  # connected (ZAP in risk's loop)
    assert isinstance(warm, RiskVerdict) and warm.approved, warm  # (a sell: no buy's worst)
    # the OMS's order since 245291c: the waiting stream message, then the check
    h.oms.publish(StreamEvent(event_seq=0, event=OPENING_POSITIONS, data={"venue": "simA"}))
    msg_id = client.send(check("b1", "50", side=Side.BUY))
    _both_readable([actor.sync.sub, actor.router])
    env = h.pump(lambda: client.reply_to(msg_id), what="the check answered")
    assert env is not None
    v = env.body
    assert isinstance(v, RiskVerdict), v
    assert not v.approved, (v, actor.gate.exposure.summary())
