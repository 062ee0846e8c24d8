"""`DeferredAcks`: an ExecAck leaves after its turn's commit and `ACK_DELAY_S`, with every
ack due by then, never at the commit itself (the instant the turn's events go out)."""

from __future__ import annotations

from collections.abc import Callable

from actors.oms.exec_intake import ACK_DELAY_S, DeferredAcks


class _Loop:
    def __init__(self) -> None:
        self.committed: list[Callable[[], None]] = []  # waiting for the commit
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def after_commit(self, fn: Callable[[], None]) -> None:
        self.committed.append(fn)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self.timers.append((delay_s, fn))

    def commit(self) -> None:
        done, self.committed = self.committed, []
        for fn in done:
            fn()

    def fire(self) -> None:
        due, self.timers = self.timers, []
        for _delay, fn in due:
            fn()


def test_acks_leave_after_the_commit_and_the_delay_together() -> None:
    loop, sent = _Loop(), []
    acks = DeferredAcks(loop.after_commit, loop.call_later)
    acks(lambda: sent.append("a"))
    acks(lambda: sent.append("b"))
    assert sent == [] and loop.timers == []  # nothing before the commit
    loop.commit()
    assert sent == []  # not at the commit either
    assert [d for d, _ in loop.timers] == [ACK_DELAY_S]  # one timer for both
    loop.fire()
    assert sent == ["a", "b"]
    acks(lambda: sent.append("c"))
    loop.commit()
    assert len(loop.timers) == 1  # a new interval, a new timer
    loop.fire()
    assert sent == ["a", "b", "c"]


def test_flush_sends_what_waits_and_the_timer_then_sends_nothing_twice() -> None:
    loop, sent = _Loop(), []
    acks = DeferredAcks(loop.after_commit, loop.call_later)
    acks(lambda: sent.append("a"))
    loop.commit()
    acks.flush()  # the OMS's stop: what waits goes now
    assert sent == ["a"]
    loop.fire()
    assert sent == ["a"]
