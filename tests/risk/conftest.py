"""The risk tests' harness: a real `RiskActor` in this process against stub peers
(`tests.actor_stubs`), the limits of `tests.risk.test_actor.LIMITS`. Modules that need
other venues define their own `h`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.actor_stubs import Harness
from tests.risk.test_actor import LIMITS


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(overrides={"risk": LIMITS})
    yield harness
    harness.close()
