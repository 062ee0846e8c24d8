"""Long venue answers in parts (issue 16): the mass status read lazily yet as of the
request (`actors.venuesim.snapshot`), and the pump that sends a bounded number of parts
per loop turn, in order (`actors.venuesim.pump`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import simplefix

from actors.connector.fix import codec as fc
from actors.venuesim import fixmap
from actors.venuesim.fixmap import Out
from actors.venuesim.model import ExecType, OrdStatus
from actors.venuesim.pump import AnswerPump
from tests.venuesim.support import NO_MM, D, Sim

MakeSim = Callable[..., Sim]


def _af(req_id: str = "M1") -> simplefix.FixMessage:
    msg = simplefix.FixMessage()
    msg.append_pair(584, req_id)
    msg.append_pair(585, "7")
    return msg


def _tag(out: Out, tag: int) -> str | None:
    """Field `tag` of `out` as its text on the wire, None when absent."""
    value = dict(out.pairs()).get(tag)
    return None if value is None else fc.fix_value(value).decode()


def test_snapshot_reports_orders_as_they_were_when_asked(make_sim: MakeSim) -> None:
    """An order filled or cancelled after the request, before its part is read, is reported
    as it was when asked (open, nothing filled); an order placed after is not in it; the
    engine forgets the snapshot once it is read to the end."""
    sim = make_sim(**NO_MM)
    for i in range(4):
        sim.order(f"b{i}", "BUY", 10, "99.50")
    snap = sim.venue.status_snapshot(sim.clock())
    first = next(snap)
    sim.order("s", "SELL", 20, "99.50")  # fills b0 (already read) and b1
    sim.cancel("c2", "b2")
    sim.order("late", "BUY", 5, "99.00")
    rest = list(snap)
    assert [e.cl_ord_id for e in [first, *rest]] == ["b0", "b1", "b2", "b3"]
    assert all(e.exec_type is ExecType.ORDER_STATUS for e in rest)
    assert [(e.ord_status, e.cum_qty) for e in rest] == [(OrdStatus.NEW, D(0))] * 3
    assert [o.cl_ord_id for o in sim.venue.open_orders()] == ["b3", "late"]
    assert sim.venue.open_count == 2
    assert not sim.venue._snapshots  # noqa: SLF001 - released


def test_mass_status_answer_is_a_stream_with_count_and_last_flag(make_sim: MakeSim) -> None:
    """`fixmap.answer` makes an AF answer a Stream of one 8 per open order (911 = the count,
    912=Y on the last only); `handle` gives the same parts as a list."""
    sim = make_sim(**NO_MM)
    for i in range(3):
        sim.order(f"b{i}", "BUY", 10, "99.50")
    answer = fixmap.answer(sim.venue, "AF", _af(), 7, sim.clock())
    assert isinstance(answer, fixmap.Stream) and answer.answers_only
    parts = list(answer)
    assert [(_tag(p, 11), _tag(p, 911), _tag(p, 912)) for p in parts] == [
        ("b0", "3", None), ("b1", "3", None), ("b2", "3", "Y"),
    ]  # fmt: skip
    assert len(fixmap.handle(sim.venue, "AF", _af("M2"), 8, sim.clock())) == 3


def test_pump_sends_a_bounded_number_per_turn_in_order() -> None:
    """At most `per_turn` parts per run; what is put while the pump is busy goes out after
    the answer ahead of it; a delivery that sends more (an execution report's faults)
    sends at once, not behind the rest."""
    sent: list[str] = []
    pump = AnswerPump(per_turn=3)
    parts = (Out("8", ((11, f"p{i}"),)) for i in range(7))

    def deliver(out: Out) -> None:
        sent.append(str(_tag(out, 11)))
        assert pump.delivering

    pump.stream(parts, deliver, answers_only=True)
    assert pump.busy
    pump.put(Out("8", ((11, "exec"),)), deliver)
    assert pump.run() and sent == ["p0", "p1", "p2"]
    assert pump.run() and sent[3:] == ["p3", "p4", "p5"]
    assert not pump.run() and sent[6:] == ["p6", "exec"]
    assert not pump.busy


def test_pump_drops_answers_nobody_can_receive_but_keeps_reports() -> None:
    """The session went: a mass status being pumped is dropped (its generator closed), a
    queued execution report and a mass cancel's reports are kept, in order."""
    sent: list[str] = []
    closed: list[bool] = []

    def status_parts() -> Iterator[Out]:
        try:
            for i in range(100):
                yield Out("8", ((11, f"s{i}"),))
        finally:
            closed.append(True)

    def deliver(out: Out) -> None:
        sent.append(str(_tag(out, 11)))

    pump = AnswerPump(per_turn=10)
    pump.stream(status_parts(), deliver, answers_only=True)
    pump.run()
    pump.put(Out("8", ((11, "fill"),), exec_type="F"), deliver)
    pump.stream(iter([Out("8", ((11, "cxl"),), exec_type="4")]), deliver, answers_only=False)
    assert pump.drop_answers() == 1 and closed == [True]
    assert not pump.run()
    assert sent == [f"s{i}" for i in range(10)] + ["fill", "cxl"]


def test_mass_cancel_cancels_each_order_as_its_report_is_made(make_sim: MakeSim) -> None:
    """A q's answer: the r (533 = the orders open when asked) first, then one cancel per
    order, each applied by the engine only when its part is read (a pumped answer spreads
    the engine's work over loop turns too); an order filled meanwhile is skipped."""
    sim = make_sim(**NO_MM)
    for i in range(3):
        sim.order(f"b{i}", "BUY", 10, "99.50")
    q = simplefix.FixMessage()
    q.append_pair(11, "MC1")
    q.append_pair(530, "7")
    answer = fixmap.answer(sim.venue, "q", q, 9, sim.clock())
    assert isinstance(answer, fixmap.Stream) and not answer.answers_only
    report = next(answer.parts)
    assert (report.msg_type, _tag(report, 533)) == ("r", "3")
    assert sim.venue.open_count == 3  # nothing cancelled yet
    first = next(answer.parts)
    assert (_tag(first, 11), first.exec_type) == ("b0", "4") and sim.venue.open_count == 2
    sim.order("s", "SELL", 10, "99.50")  # fills b1 before its cancel is read
    assert [_tag(p, 11) for p in answer.parts] == ["b2"]
    assert sim.venue.open_count == 0
