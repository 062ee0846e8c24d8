"""`beating(...)`: the heartbeat tests' harness, the heartbeat actor beside stub connectors,
OMS and risk, beating every `interval_s` and asking each venue for its positions every beat
unless told otherwise; each module's fixture names only what it changes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.actor_stubs import Harness


@contextmanager
def beating(
    interval_s: float,
    *,
    oms: dict[str, Any] | None = None,
    system: dict[str, Any] | None = None,
    clock: bool = False,
    **heartbeat: Any,
) -> Iterator[Harness]:
    """`heartbeat`: more `[heartbeat]` keys (or another `venue_positions_interval_s`);
    `oms`, `system`: those sections' overrides; `clock`: the harness's own clock."""
    overrides: dict[str, Any] = {
        "heartbeat": {"interval_s": interval_s, "venue_positions_interval_s": interval_s}
        | heartbeat
    }
    for section, values in (("oms", oms), ("system", system)):
        if values:
            overrides[section] = values
    harness = Harness(overrides=overrides, clock=clock)
    try:
        yield harness
    finally:
        harness.close()
