"""The oms bench's warm-start section (tests/bench/oms.py `run`): its order of work, with the
systems, the venue run alone and the measured steps replaced by stubs (no process starts).

The figures beside each other (the venue up, the target's; the embedded venue) are only
comparable if each pair runs on a host where nothing of the other pair still runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.bench import oms, venue_up


class _Stub:
    """A system or a venue process: alive from its creation to its stop or destroy."""

    def __init__(self, name: str, alive: list[_Stub]) -> None:
        self.name = name
        self._alive = alive
        alive.append(self)

    def start(self, **_: Any) -> _Stub:
        return self

    def stop(self) -> int:
        self.destroy()
        return 0

    def destroy(self) -> None:
        if self in self._alive:
            self._alive.remove(self)


def test_the_embedded_warm_starts_run_with_nothing_of_the_venue_up_pair_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the embedded pair's warm starts begin, the venue-up pair's system and its venue
    (run alone) are gone: an idle system of 10,000 open orders and a venue holding them,
    left running on the 2 cores, would slow the embedded figures it is compared with."""
    alive: list[_Stub] = []
    seen_by_embedded: list[list[str]] = []

    def warm_start(
        root: Path, how: str, overrides: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], _Stub]:
        if overrides is None:  # the embedded venue's
            seen_by_embedded.append([s.name for s in alive])
        sut = _Stub(f"system {how} {'embedded' if overrides is None else 'venue up'}", alive)
        return {"after": how, "start_to_warm_start_s": 0.5}, sut

    monkeypatch.setattr(oms, "OmsSystem", lambda **_: _Stub("system", alive))
    monkeypatch.setattr(oms, "latency", lambda _sut: {"ratio_p50": 1.0, "ratio_p99": 1.0})
    monkeypatch.setattr(
        oms,
        "throughput",
        lambda _sut, _n: {"acked_orders_per_s": 1.0, "submit_to_order_ack_ms": {"p99": 1.0}},
    )
    monkeypatch.setattr(oms, "warm_start", warm_start)
    monkeypatch.setattr(venue_up, "start_venue", lambda *_: (_Stub("venue run alone", alive), 1))

    result = oms.run()

    assert len(result["warm_start"]) == 4
    assert seen_by_embedded == [[], []]
    assert alive == []


class _NeverReady(_Stub):
    """A system or venue that starts and never logs what the bench waits for."""

    def start(self, **_: Any) -> _Stub:
        if self.name == "venue run alone":
            raise AssertionError("condition not met within 15.0 s: actor_started")
        return self

    def wait_event(self, name: str, *_: Any, **__: Any) -> dict[str, Any]:
        raise AssertionError(f"condition not met within 120.0 s: {name}")


def test_a_warm_start_or_a_venue_that_never_gets_ready_is_killed_before_the_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A system whose `warm_start` is never logged, and a venue run alone that does not
    listen in time, are not returned to the caller (which destroys what it got back): each
    is destroyed where it was started, before the error goes up."""
    alive: list[_Stub] = []
    monkeypatch.setattr(oms, "OmsSystem", lambda **_: _NeverReady("system", alive))
    monkeypatch.setattr(venue_up, "SimProcess", lambda *_: _NeverReady("venue run alone", alive))

    with pytest.raises(AssertionError, match="warm_start"):
        oms.warm_start(tmp_path, "kill -9")
    with pytest.raises(AssertionError, match="actor_started"):
        venue_up.start_venue(tmp_path, tmp_path / "state")

    assert alive == []
