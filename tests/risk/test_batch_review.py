"""Risk batches, the cpu6 review: limits count each check of a batch before the next (as
singles), and a check that raises fails its own order only (risk_error), not the checks
of its batch already approved and counted (before the fix the whole batch was answered
INTERNAL and the OMS rejected every order of it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from protocol.messages import RiskChecks, RiskVerdicts
from tests.actor_stubs import Client, Harness
from tests.risk.test_actor import FAST_VENUES, LIMITS, check, start


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(overrides={"risk": LIMITS, "venues": FAST_VENUES})
    yield harness
    harness.close()


def test_limits_count_each_check_of_a_batch_before_the_next(h: Harness) -> None:
    """max_position 100: three buys of 40 in one batch, the third is over (as singles)."""
    start(h)
    answer = Client(h, "risk").request(
        RiskChecks(checks=[check("p1", "40"), check("p2", "40"), check("p3", "40")])
    )
    assert isinstance(answer, RiskVerdicts)
    assert [(v.approved, v.reason_code) for v in answer.verdicts] == [
        (True, "ok"), (True, "ok"), (False, "max_position"),
    ]  # fmt: skip


def test_a_check_that_raises_fails_its_own_order_only(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = start(h)
    real = actor.gate.check

    def check_or_raise(req: Any, **kw: Any) -> Any:
        if req.client_order_id == "boom":
            raise ArithmeticError("poison")
        return real(req, **kw)

    monkeypatch.setattr(actor.gate, "check", check_or_raise)
    answer = Client(h, "risk").request(RiskChecks(checks=[check("x1"), check("boom"), check("x3")]))
    assert isinstance(answer, RiskVerdicts)
    got = [(v.client_order_id, v.approved, v.reason_code) for v in answer.verdicts]
    assert got == [("x1", True, "ok"), ("boom", False, "risk_error"), ("x3", True, "ok")]
    assert actor.gate.exposure.own_open("x1") is not None
