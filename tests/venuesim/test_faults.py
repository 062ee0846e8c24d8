"""Fault injection state and the execution-report pipeline: pure, with a fake clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.venuesim.faults import FAULT_KINDS, FaultError, Faults, parse_value
from actors.venuesim.fixmap import Out
from actors.venuesim.outbox import ExecOutbox
from tests.log_stub import RecordingLog


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("drop_session", None, None),
        ("clear", "anything", None),
        ("hang", "2.5", 2.5),
        ("refuse_logons_s", 3, 3.0),
        ("delay_exec_ms", "0", 0.0),
        ("duplicate_exec", None, True),
        ("duplicate_exec", "off", False),
        ("reorder_exec", "1", True),
        ("reorder_exec", False, False),
        ("reject_next", None, 1),
        ("reject_next", "3", 3),
        ("disconnect_after", 0, 0),
        ("swallow_fills", "2", 2),
    ],
)
def test_values_are_normalised(kind: str, raw: object, expected: object) -> None:
    """Each fault takes its own kind of value: seconds and ms as floats, counts as ints
    (default 1), switches as booleans (default on), drop/clear none."""
    assert parse_value(kind, raw) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        ("explode", 1),
        ("hang", None),
        ("refuse_logons_s", ""),
        ("delay_exec_ms", "-5"),
        ("delay_exec_ms", "nan"),
        ("hang", "inf"),
        ("reject_next", "1.5"),
        ("swallow_fills", "many"),
        ("duplicate_exec", "sometimes"),
        ("reject_next", True),
        ("disconnect_after", "99999999999999999999999"),  # past what a reply can carry
    ],
)
def test_bad_kinds_and_values_are_refused(kind: str, raw: object) -> None:
    """An unknown fault, a missing duration, a negative, infinite or non-numeric value,
    a fractional or huge count or a non-switch value is a FaultError, and changes nothing."""
    faults = Faults()
    with pytest.raises(FaultError):
        faults.apply(kind, raw, now_s=0.0)  # type: ignore[arg-type]
    assert faults == Faults()


def test_timed_faults_expire_on_the_clock() -> None:
    """hang and refuse_logons_s last their duration from the moment they are set."""
    faults = Faults()
    faults.apply("hang", 2, now_s=10.0)
    faults.apply("refuse_logons_s", 5, now_s=10.0)
    assert faults.hung(11.9) and not faults.hung(12.0)
    assert faults.refusing_logons(14.9) and not faults.refusing_logons(15.0)
    assert faults.active(11.0) == {"hang": 1.0, "refuse_logons_s": 4.0}
    assert faults.active(20.0) == {}


def test_counted_faults_count_down() -> None:
    """reject_next and swallow_fills / swallow_cancels answer True N times; disconnect_after says
    drop on
    exactly the N-th message, then never again."""
    faults = Faults()
    faults.apply("reject_next", 2, 0.0)
    faults.apply("swallow_fills", 1, 0.0)
    faults.apply("swallow_cancels", 2, 0.0)
    faults.apply("disconnect_after", 3, 0.0)
    assert [faults.take_reject() for _ in range(3)] == [True, True, False]
    assert [faults.take_swallow("F") for _ in range(2)] == [True, False]
    assert [faults.take_swallow("4") for _ in range(3)] == [True, True, False]
    assert not faults.take_swallow("0")  # acks are never swallowed
    assert [faults.count_sent() for _ in range(5)] == [False, False, True, False, False]


def test_clear_removes_every_fault() -> None:
    """clear resets every fault, a running hang included."""
    faults = Faults()
    for kind in FAULT_KINDS:
        if kind not in ("clear", "drop_session"):
            faults.apply(kind, "on" if kind.endswith("_exec") and "delay" not in kind else 5, 0.0)
    assert faults.active(1.0)
    faults.apply("clear", None, 1.0)
    assert faults == Faults() and faults.active(1.0) == {}


# ---------------------------------------------------------------------- outbox


class _Harness:
    """An ExecOutbox with a manual clock and timer list; sent reports are recorded."""

    def __init__(self, **faults: object) -> None:
        self.now = 0.0
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.sent: list[str] = []
        self.faults = Faults()
        for kind, value in faults.items():
            self.faults.apply(kind, value, 0.0)  # type: ignore[arg-type]
        self.log = RecordingLog()
        self.outbox = ExecOutbox(
            self.faults, lambda o: self.sent.append(o.exec_id), self._schedule,
            lambda: self.now, self.log, hold_s=0.25,
        )  # fmt: skip

    def _schedule(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.timers.append((self.now + delay_s, fn))

    def advance(self, dt: float) -> None:
        self.now += dt
        due = sorted((t for t in self.timers if t[0] <= self.now), key=lambda t: t[0])
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, fn in due:
            fn()

    def push(self, exec_id: str, exec_type: str = "0") -> None:
        self.outbox.push(Out("8", ((17, exec_id),), exec_type=exec_type, exec_id=exec_id))


def test_reports_go_straight_out_without_faults() -> None:
    """No fault: each report is sent once, at once, in order."""
    h = _Harness()
    for i in range(3):
        h.push(f"E{i}")
    assert h.sent == ["E0", "E1", "E2"] and h.outbox.pending == 0


def test_swallowed_fills_are_never_sent() -> None:
    """swallow_fills N drops the next N fill reports only; other reports pass."""
    h = _Harness(swallow_fills=2)
    h.push("N1", "0")
    h.push("F1", "F")
    h.push("F2", "F")
    h.push("F3", "F")
    assert h.sent == ["N1", "F3"]
    assert [kw["exec_id"] for kw in h.log.events("sim_fill_swallowed")] == ["F1", "F2"]


def test_swallowed_cancels_are_never_sent() -> None:
    """swallow_cancels N drops the next N cancel confirmations (ExecType 4) only."""
    h = _Harness(swallow_cancels=1)
    h.push("F1", "F")
    h.push("C1", "4")
    h.push("C2", "4")
    assert h.sent == ["F1", "C2"]
    assert [kw["exec_id"] for kw in h.log.events("sim_cancel_swallowed")] == ["C1"]


def test_delay_holds_reports_and_keeps_their_order() -> None:
    """delay_exec_ms holds each report that long; lifting the delay does not let a later
    report overtake one still waiting."""
    h = _Harness(delay_exec_ms=100)
    h.push("E1")
    h.advance(0.05)
    h.push("E2")
    h.faults.apply("delay_exec_ms", 0, h.now)
    h.push("E3")
    assert h.sent == []
    h.advance(0.05)
    assert h.sent == ["E1"]
    h.advance(0.05)
    assert h.sent == ["E1", "E2", "E3"]


def test_reorder_swaps_consecutive_reports() -> None:
    """reorder_exec: each pair goes out second-first; a report nobody overtakes goes out
    after the hold time."""
    h = _Harness(reorder_exec="on")
    for i in range(1, 6):
        h.push(f"E{i}")
    assert h.sent == ["E2", "E1", "E4", "E3"]
    h.advance(0.2)
    assert h.sent == ["E2", "E1", "E4", "E3"]
    h.advance(0.1)
    assert h.sent == ["E2", "E1", "E4", "E3", "E5"]


def test_duplicate_sends_the_same_report_twice() -> None:
    """duplicate_exec: every report is sent twice in a row (the same ExecID)."""
    h = _Harness(duplicate_exec=True)
    h.push("E1")
    h.push("E2")
    assert h.sent == ["E1", "E1", "E2", "E2"]


def test_release_all_sends_everything_held() -> None:
    """After clear, delayed and held reports go out at once, in order."""
    h = _Harness(delay_exec_ms=1000)
    h.push("E1")
    h.push("E2")
    h.faults.apply("clear", None, h.now)
    h.outbox.release_all()
    assert h.sent == ["E1", "E2"] and h.outbox.pending == 0


class _OldOutbox(ExecOutbox):
    """The outbox as it was before its no-fault shortcut (issue 16): every report through
    `_reorder` and `_emit`."""

    def push(self, out: Out) -> None:
        if self._faults.take_swallow(out.exec_type):
            self._log.info("sim_swallowed", exec_id=out.exec_id)
            return
        delay_s = self._faults.delay_exec_ms / 1000.0
        if delay_s > 0 or self._delayed:
            self._delayed.append((self._clock() + delay_s, out))
            self._schedule(delay_s, self._release_due)
        else:
            self._reorder(out)


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("push"), st.sampled_from(["0", "F", "4"])),
        st.tuples(st.sampled_from(["reorder_exec", "duplicate_exec"]), st.booleans()),
        st.tuples(st.just("delay_exec_ms"), st.sampled_from([0, 50, 300])),
        st.tuples(st.sampled_from(["swallow_fills", "swallow_cancels"]), st.integers(0, 2)),
        st.tuples(st.just("advance"), st.sampled_from([0.0, 0.1, 0.3])),
        st.tuples(st.just("clear"), st.none()),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(steps=_STEPS)
def test_reports_go_out_as_before_the_shortcut_under_any_faults(
    steps: list[tuple[str, object]],
) -> None:
    """Whatever faults are set, changed and cleared between reports (a report held for
    reordering when the fault is lifted, a delay queue, duplicates, swallows), the
    outbox sends the same reports in the same order, at the same times, as before its
    no-fault shortcut."""
    new, old = _Harness(), _Harness()
    old.outbox = _OldOutbox(
        old.faults, lambda o: old.sent.append(o.exec_id), old._schedule,
        lambda: old.now, old.log, hold_s=0.25,
    )  # fmt: skip
    for n, (kind, value) in enumerate(steps):
        for h in (new, old):
            if kind == "push":
                h.push(f"E{n}", str(value))
            elif kind == "advance":
                h.advance(float(value))  # type: ignore[arg-type]
            else:
                h.faults.apply(kind, value, h.now)  # type: ignore[arg-type]
                if kind == "clear":
                    h.outbox.release_all()
        assert new.sent == old.sent and new.outbox.pending == old.outbox.pending
    new.advance(10.0)
    old.advance(10.0)
    assert new.sent == old.sent
