"""A simulator process whose venue cannot be set up (here: its port is taken) logs
`sim_venue_failed` naming the venue only when it runs several venues (`sim.runs_in`): a
process of one venue is named by its actor (`venuesim.<venue>`), and logs what it did
before the change (no new error line on the default path). No processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.runtime.actor import ActorArgs
from actors.venuesim.actor import VenueSimActor
from protocol.config import load_config
from tests.helpers import make_config, to_toml


class _Recorder:
    """A bound logger that keeps (event, fields) of every call, bindings included."""

    def __init__(self, events: list[tuple[str, dict[str, Any]]], bound: dict[str, Any]) -> None:
        self._events, self._bound = events, bound

    def bind(self, **fields: Any) -> _Recorder:
        return _Recorder(self._events, {**self._bound, **fields})

    def __getattr__(self, level: str) -> Any:
        def log(event: str, **fields: Any) -> None:
            self._events.append((event, {**self._bound, **fields}))

        return log


def _setup_events(root: Path, venues: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """venuesim.simA's setup over `venues`: it fails; the events it logged."""
    path = root / "config.toml"
    names = tuple(v["name"] for v in venues)
    path.write_text(to_toml(make_config(venues=names, overrides={"venues": venues})))
    cfg = load_config(path, state_dir=str(root / "st"), runtime_dir=str(root / "rt"))
    cfg.runtime_path.mkdir(parents=True, exist_ok=True)
    args = ActorArgs(
        actor_id="venuesim.simA", kind="venuesim", epoch=1, config_path=str(path),
        venue="simA", extra={"standalone": True},
    )  # fmt: skip
    actor = VenueSimActor(args, cfg)
    events: list[tuple[str, dict[str, Any]]] = []
    actor.log = _Recorder(events, {"actor": "venuesim.simA", "venue": "simA"})  # type: ignore[assignment]
    try:
        with pytest.raises(OSError, match="in use"):
            actor.setup()
    finally:
        for venue in actor.venues.values():  # those set up before the failure
            venue.close()
        actor.close()
    return events


def _venue(name: str, **fields: Any) -> dict[str, Any]:
    sim: dict[str, Any] = {"reference_prices": {"AAPL": "100.00"}}
    if runs_in := fields.pop("runs_in", ""):
        sim["runs_in"] = runs_in
    return {"name": name, "target_comp_id": name.upper(), "sim": sim, **fields}


def test_a_one_venue_process_that_cannot_listen_logs_no_new_event(
    short_tmp: Path, taken_port: int
) -> None:
    """The default (no runs_in): the error is its actor's, as before `sim_venue_failed`."""
    events = _setup_events(short_tmp, [_venue("simA", port=taken_port)])
    assert [e for e, _ in events if e == "sim_venue_failed"] == [], events


def test_a_shared_process_names_the_venue_that_cannot_listen(
    short_tmp: Path, taken_port: int
) -> None:
    """simB in simA's process: the failure names simB, not simA (which was set up)."""
    venues = [_venue("simA"), _venue("simB", runs_in="simA", port=taken_port)]
    events = _setup_events(short_tmp, venues)
    failed = [f for e, f in events if e == "sim_venue_failed"]
    assert [f["venue"] for f in failed] == ["simB"] and "in use" in failed[0]["error"], events
