"""A cold start's opening positions as risk sees them: the OMS's book starts empty (risk's
exposure is rebuilt from it when the OMS comes up) and its first pass per venue takes the
venue's positions as its own (`PlanApplier.finish`, an ``opening_position`` record). Risk
must hold them too: its positions never below the OMS's. The OMS side is the real
`PlanApplier` and book on the stub OMS of `tests.oms.test_sends_first`; every message it
publishes goes on to a real `RiskActor` (the `h` harness), whose stub OMS answers a
rebuild with the OMS book's positions."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import structlog

from actors.oms.exec_cut import ExecLog
from actors.oms.plan_apply import PlanApplier
from protocol.codec import decode
from protocol.config import OmsCfg
from protocol.event_batch import events_of
from protocol.messages import (
    OPENING_POSITIONS,
    Positions,
    PositionView,
    RiskVerdict,
    Side,
    StreamEvent,
)
from protocol.venue_messages import ExecCut
from tests.actor_stubs import Client, Harness
from tests.oms.test_adoption_cold_unplaced import CASES, cancelled, cold_pass
from tests.oms.test_adoption_later_fills import V, _PlanOms
from tests.oms.test_sends_first import _Oms
from tests.risk.test_actor import check, start, verdict


class _Recorder:
    """The OMS's publisher: every body it sends, in order."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.messages: list[str] = []

    def send_multipart(self, frames: list[bytes], copy: bool = True) -> None:
        self.messages.append(decode(frames).type)
        self.bodies += [body for _seq, body in events_of(frames)]


def test_a_cold_starts_opening_position_reaches_risk(h: Harness, tmp_path: Path) -> None:
    """The venue holds 90 AAPL from before the cold start; the cold pass makes it the
    OMS's position. Risk, rebuilt from the empty book at the OMS's start, must count it:
    a buy of 50 (90 + 50 > max_position 100) is refused. The OMS publishes nothing for an
    opening position (it is no order's event) and nothing makes risk rebuild, so risk
    holds 0 where the OMS holds 90 (too low) and approves the buy."""
    actor = start(h)  # rebuilt from the cold OMS's empty book
    oms = _Oms()
    oms.pub = _Recorder()  # type: ignore[assignment]
    marker = tmp_path / "cold"
    marker.touch()
    applier = PlanApplier(oms, {}, OmsCfg(), structlog.get_logger(), marker)  # type: ignore[arg-type]
    cut = ExecCut(connector_epoch=1, exec_seq=5, oms_epoch=1)  # consistent, nothing after
    venue = Positions(source="venue", venue="simA", cut=cut,
                      positions=[PositionView(venue="simA", symbol="AAPL", qty=D(90),
                                              avg_px=D(100))])  # fmt: skip
    link = SimpleNamespace(venue="simA", ever_reconciled=False, exec_log=ExecLog(), oms_epoch=1)
    applier.finish(link, venue)  # type: ignore[arg-type]
    oms.after_iteration()
    assert oms.book.position("simA", "AAPL").qty == 90
    h.oms.positions = [p.view() for p in oms.book.positions(None)]
    for body in oms.pub.bodies:  # type: ignore[attr-defined]
        h.oms.publish(body)
    h.oms.publish(StreamEvent(event_seq=0, event="probe"))  # risk has read all before it
    h.pump(
        lambda: actor.sync._stream == (h.oms.epoch, h.oms.event_seq) and not actor.sync._syncing,
        what="every event read, no rebuild on its way",
    )
    summary = actor.gate.exposure.summary()
    assert actor.gate.exposure.position("AAPL") == 90, summary
    v = verdict(Client(h, "risk"), check("b1", "50", side=Side.BUY))
    assert not v.approved and v.reason_code == "max_position", (v, summary)


def test_a_check_while_the_opening_rebuild_is_on_its_way_is_not_approved_blind(
    h: Harness,
) -> None:
    """The OMS took 90 AAPL as its opening position and said so (`opening_positions`); it
    opens the venue's intake in the same turn, so a strategy's buy can reach risk while
    the rebuild that event started is still on its way (here: the OMS slow to answer).
    Risk stays `ready` through that rebuild and checks against its old view, in which the
    opening 90 is counted nowhere (no open order, no position): the buy of 50 (90 + 50 >
    max_position 100) is approved. It must wait for the rebuild (or fail closed)."""
    actor = start(h)
    h.oms.positions = [PositionView(venue="simA", symbol="AAPL", qty=D(90), avg_px=D(100))]
    h.oms.answering, actor.sync.timeout_s = False, 0.3  # the rebuild's answer is late
    h.oms.publish(StreamEvent(event_seq=0, event=OPENING_POSITIONS, data={"venue": "simA"}))
    h.pump(lambda: bool(actor.sync._syncing), what="the opening rebuild on its way")
    client = Client(h, "risk")
    msg_id = client.send(check("b1", "50", side=Side.BUY))
    h.pump(lambda: client.reply_to(msg_id) or actor._held, what="the check answered or held")
    h.oms.answering = True
    env = h.pump(lambda: client.reply_to(msg_id), what="the check answered")
    v = env.body
    assert isinstance(v, RiskVerdict), v
    assert not v.approved, (v, actor.gate.exposure.summary())


@CASES
def test_risk_counts_a_fill_after_the_adopted_state_once(
    h: Harness, tmp_path: Path, adopted_cum: str, venue_qty: int
) -> None:
    """F1 as risk sees it (tests/oms/test_adoption_cold_unplaced.py): the cold pass adopts
    EXT1 at cum `adopted_cum` and places G2 (10, after the open-orders answer) on it:
    the adoption's order event says cum `venue_qty`, the venue's position. EXT1's cancel
    at cum `venue_qty` then moves nothing: risk holds `venue_qty` after both (before the
    fix: the opening position held G2, risk rebuilt on it, and the catch-up's event raised
    the order's cum by G2's 10 again, `venue_qty` + 10)."""
    actor = start(h)
    oms = _PlanOms()
    oms.pub = _Recorder()  # type: ignore[assignment]
    cold_pass(tmp_path, adopted_cum, venue_qty, oms=oms)
    oms.after_iteration()
    sent = 0

    def forward() -> None:  # what the OMS published since, and its answers as of now
        nonlocal sent
        h.oms.positions = [p.view() for p in oms.book.positions(None)]
        h.oms.orders = [o.view() for o in oms.book.orders(open_only=True)]
        for body in oms.pub.bodies[sent:]:  # type: ignore[attr-defined]
            h.oms.publish(body)
        sent = len(oms.pub.bodies)  # type: ignore[attr-defined]
        h.oms.publish(StreamEvent(event_seq=0, event="probe"))  # risk has read all before it
        h.pump(
            lambda: (
                actor.sync._stream == (h.oms.epoch, h.oms.event_seq) and not actor.sync._syncing
            ),
            what="every event read, no rebuild on its way",
        )

    forward()
    assert actor.gate.exposure.position("ABC") == venue_qty, actor.gate.exposure.summary()
    out = oms.record(oms.book.apply_exec(cancelled(venue_qty), 4))
    assert out.applied and oms.book.position(V, "ABC").qty == venue_qty
    oms.after_iteration()
    forward()
    assert actor.gate.exposure.position("ABC") == venue_qty, actor.gate.exposure.summary()
