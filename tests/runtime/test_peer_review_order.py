"""Peer's deadline sweep (one timer per peer, issue 16), from its review: expiries due in
one late turn come in deadline order across timeouts, as a timer each did; an answered
request leaves no group behind. A fake clock and the real `Timers`; the Peer is built
without a socket (`send` returns ids)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

import actors.runtime.peer as peer_mod
import actors.runtime.timers as timers_mod
from actors.runtime.timers import Timers


class _Clock:
    t = 1000.0

    def monotonic(self) -> float:
        return self.t


class _Host:
    def __init__(self) -> None:
        self.timers = Timers()
        self.armed = 0

    def call_later(self, delay_s: float, fn: Any) -> None:
        self.armed += 1
        self.timers.call_later(delay_s, fn)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> tuple[_Clock, _Host, Any]:
    clock = _Clock()
    monkeypatch.setattr(peer_mod, "time", clock)
    monkeypatch.setattr(timers_mod, "time", clock)
    host = _Host()
    p = peer_mod.Peer.__new__(peer_mod.Peer)
    p.target, p._actor, p._pending, p.last_epoch = "x", host, {}, None
    p._by_timeout, p._sweep_due = {}, None
    ids = itertools.count()
    p.send = lambda body, corr_id="": f"m{next(ids)}"
    return clock, host, p


def test_expiries_due_in_one_turn_come_in_deadline_order(env: tuple[_Clock, _Host, Any]) -> None:
    """A long request (deadline 1002.0) then a short one (deadline 1001.5); the loop is
    late (a GC pause, a long handler) and wakes at 1002.5: both are due. A timer each
    called them in deadline order: short, long; the sweep does the same (it called them
    by timeout group, in first-use order: long, short)."""
    clock, host, p = env
    order: list[str] = []
    p.request(object(), lambda r: order.append("long"), 2.0)
    clock.t += 1.0
    p.request(object(), lambda r: order.append("short"), 0.5)
    clock.t += 1.5
    host.timers.run_due()
    assert order == ["short", "long"]


def test_answered_requests_leave_no_group_behind(env: tuple[_Clock, _Host, Any]) -> None:
    """Requests with distinct timeouts (e.g. a timeout computed per request), all answered:
    no empty group is left (each stayed until the next sweep, here 30 s on)."""
    clock, host, p = env
    ids = [p.request(object(), lambda r: None, 30.0 + n / 1000) for n in range(10_000)]
    for msg_id in ids:
        p._forget(msg_id)
    assert p.in_flight == 0
    assert len(p._by_timeout) == 0, f"{len(p._by_timeout)} empty groups held"
