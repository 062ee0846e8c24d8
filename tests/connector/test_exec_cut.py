"""The connector's execution numbering and answer cuts (actors/connector/exec_cut.py): the
outbox's leftovers are numbered first, an answer waits until the OMS acked every execution
up to its cut (then names the OMS's epoch), and a wait that runs out names none."""

from __future__ import annotations

from collections import OrderedDict

import pytest
from pydantic import ValidationError

from actors.connector.exec_cut import WAIT_S, ExecSequencer
from protocol.messages import ExecCut, ExecReport, GetPositions


def _report(i: int) -> ExecReport:
    return ExecReport(venue="simA", exec_id=f"x{i}", kind="accepted", cl_ord_id=f"c{i}")


def test_an_answer_waits_for_the_acks_of_the_executions_before_it() -> None:
    pending: OrderedDict[str, ExecReport] = OrderedDict({"x0": _report(0)})
    seq = ExecSequencer(epoch=5, pending=pending)
    assert pending["x0"].exec_seq == 1 and seq.base == 1  # the reloaded one first
    seq.oms_seen(9)
    new = seq.number([_report(1), _report(2)])
    assert [r.exec_seq for r in new] == [2, 3]
    pending.update({r.exec_id: r for r in new})
    got: list[ExecCut] = []
    seq.when_consistent(since=1, mark=1, now_s=0.0, done=got.append)  # after x1 (seq 2)
    assert got == []
    del pending["x0"], pending["x1"]  # the OMS acked through 2
    seq.poll(0.0)
    assert got == [ExecCut(connector_epoch=5, exec_seq=2, since=1, oms_epoch=9)]


def test_a_wait_that_runs_out_names_no_oms_epoch() -> None:
    pending: OrderedDict[str, ExecReport] = OrderedDict()
    seq = ExecSequencer(epoch=5, pending=pending)
    seq.oms_seen(9)
    pending.update({r.exec_id: r for r in seq.number([_report(1)])})
    got: list[ExecCut] = []
    seq.when_consistent(since=0, mark=1, now_s=0.0, done=got.append)
    seq.poll(WAIT_S / 2)
    assert got == []
    seq.poll(WAIT_S)
    assert got == [ExecCut(connector_epoch=5, exec_seq=1, since=0, oms_epoch=None)]


def test_a_new_oms_is_named_only_for_cuts_past_what_its_predecessor_got() -> None:
    """Executions forwarded to an earlier OMS incarnation may be in the new one's journal
    without it knowing their numbers: a cut below them names no OMS epoch."""
    pending: OrderedDict[str, ExecReport] = OrderedDict()
    seq = ExecSequencer(epoch=5, pending=pending)
    seq.oms_seen(9)
    seq.number([_report(1), _report(2)])  # acked at once (nothing pending)
    seq.oms_seen(10)  # the OMS restarted
    got: list[ExecCut] = []
    seq.when_consistent(since=0, mark=1, now_s=0.0, done=got.append)
    seq.when_consistent(since=0, mark=2, now_s=0.0, done=got.append)
    assert [c.oms_epoch for c in got] == [None, 10]


def test_an_answer_read_right_after_executions_waits_for_their_numbers() -> None:
    """The venue's executions and its answer arrive in one read: the answer completes while
    the executions before it are still being handed on (not yet numbered nor pending). Its
    cut covers them, and it waits until they are numbered and acked (it went out at once,
    before the OMS had them: found by tests/integration/test_cut_under_load.py)."""
    pending: OrderedDict[str, ExecReport] = OrderedDict()
    seq = ExecSequencer(epoch=5, pending=pending)
    seq.oms_seen(9)
    got: list[ExecCut] = []
    seq.when_consistent(since=0, mark=2, now_s=0.0, done=got.append)  # 2 in the batch
    assert got == []
    pending.update({r.exec_id: r for r in seq.number([_report(1), _report(2)])})
    seq.poll(0.0)
    assert got == []
    pending.clear()  # acked
    seq.poll(0.0)
    assert [c.exec_seq for c in got] == [2] and got[0].oms_epoch == 9


def test_an_answer_asked_to_wait_longer_waits_past_wait_s_for_the_acks() -> None:
    """A cold start asking its positions again (`GetPositions.wait_s`: opening_ask.py) lets
    the answer wait longer for the OMS's acks: past `WAIT_S` it still waits, and the
    acks coming within the longer wait give it the OMS's epoch; its timer is set for that
    wait. A wait below `WAIT_S` is the connector's own."""
    pending: OrderedDict[str, ExecReport] = OrderedDict()
    timers: list[float] = []
    seq = ExecSequencer(epoch=5, pending=pending, call_later=lambda s, fn: timers.append(s))
    seq.oms_seen(9)
    pending.update({r.exec_id: r for r in seq.number([_report(1)])})
    got: list[ExecCut] = []
    seq.when_consistent(since=0, mark=1, now_s=0.0, done=got.append, wait_s=1.0)
    seq.when_consistent(since=0, mark=1, now_s=0.0, done=got.append, wait_s=0.01)
    assert timers == [1.0, WAIT_S]
    seq.poll(WAIT_S)  # the short one runs out; the long one still waits
    assert got == [ExecCut(connector_epoch=5, exec_seq=1, since=0, oms_epoch=None)]
    pending.clear()  # the OMS acks, late
    seq.poll(0.5)
    assert got[1:] == [ExecCut(connector_epoch=5, exec_seq=1, since=0, oms_epoch=9)]


def test_an_answer_the_adapter_does_not_vouch_for_names_no_oms_epoch() -> None:
    """An answer the adapter cannot show consistent with the executions through its mark
    (`adapter.NoConsistentCut`: a ccxt balance read while fills kept arriving) leaves at
    once naming no OMS epoch, though the OMS acked every execution: no one compares at it."""
    pending: OrderedDict[str, ExecReport] = OrderedDict()
    seq = ExecSequencer(epoch=5, pending=pending)
    seq.oms_seen(9)
    seq.number([_report(1), _report(2)])  # acked at once (nothing pending)
    got: list[ExecCut] = []
    seq.when_consistent(since=0, mark=2, now_s=0.0, done=got.append, vouched=False)
    seq.when_consistent(since=0, mark=2, now_s=0.0, done=got.append)
    assert [c.oms_epoch for c in got] == [None, 9]


def test_a_positions_request_bounds_its_wait() -> None:
    """`GetPositions.wait_s` is positive and at most 5 s (a request's default timeout)."""
    assert GetPositions(venue="simA", wait_s=2.0).wait_s == 2.0
    assert GetPositions(venue="simA").wait_s is None
    for bad in (0.0, -1.0, 5.5, float("inf"), float("nan")):
        with pytest.raises(ValidationError):
            GetPositions(venue="simA", wait_s=bad)
