"""The dead-man switch fires once per loss of the core, after the configured silence,
counted from the last time the core was heard (or from the start), and re-arms."""

from __future__ import annotations

from actors.link.deadman import DeadMan


def test_fires_once_after_the_silence_and_rearms_when_heard() -> None:
    d = DeadMan(2.0, now=100.0)
    assert not d.due(101.9)
    assert not d.due(102.0)  # not longer than the limit yet
    assert d.due(102.1)
    assert not d.due(103.0) and not d.due(200.0)  # once per loss
    d.heard(200.0)
    assert d.silent_s(201.0) == 1.0
    assert not d.due(202.0)
    assert d.due(202.5)


def test_heard_in_time_never_fires() -> None:
    d = DeadMan(1.0, now=0.0)
    for t in range(1, 50):
        d.heard(t * 0.5)
        assert not d.due(t * 0.5 + 0.9)
