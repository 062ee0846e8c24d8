"""`[risk] verdict_cache_entries` is in a live section: a reload applies it to the running
cache (before, risk read it once at start and a reload answered "ok" with the old bound)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actors.risk.actor import RiskActor
from actors.runtime.live_config import apply_live
from protocol.commands import ApplyConfig
from tests.actor_stubs import Client, Harness
from tests.risk.test_actor import LIMITS, check, start, verdict


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(overrides={"risk": LIMITS | {"max_position": "1000"}})  # 100+ open buys
    yield harness
    harness.close()


def _reload(actor: RiskActor, **changes: Any) -> None:
    values = actor.cfg.risk.model_copy(update=changes).model_dump(mode="json")
    reply = apply_live(actor, ApplyConfig(section="risk", values=values))
    assert reply.status == "ok", reply.reason


def test_a_reload_bounds_the_running_verdict_cache(h: Harness) -> None:
    """100 verdicts cached (none applied yet); a reload to 64 entries keeps the 64 most
    recent, and the bound holds for the checks after it."""
    actor = start(h)
    client = Client(h, "risk")
    for n in range(100):
        assert verdict(client, check(f"v{n:03d}", "1")).approved
    assert len(actor.cache) == 100
    _reload(actor, verdict_cache_entries=64)
    assert len(actor.cache) == 64
    assert verdict(client, check("v099", "1")).approved  # the most recent is still there
    assert verdict(client, check("late", "1")).approved
    assert len(actor.cache) == 64
    _reload(actor, verdict_cache_entries=1024)
    assert verdict(client, check("later", "1")).approved
    assert len(actor.cache) == 65
