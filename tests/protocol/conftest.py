"""The protocol tests' harness: stub actors (`tests.actor_stubs`) around one venue, simA,
for the client's event stream and requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.actor_stubs import Harness


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(venues=("simA",))
    yield harness
    harness.close()
