"""Risk answers a check before the bookkeeping the OMS does not wait on (issue 16): the
verdict cache, the outcome counter and a rejection's log line come after the verdict is
sent; what must hold when the OMS reads it (the gate's count) comes before. A failure in
the bookkeeping after the answer is logged and never answers the check a second time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actors.risk.actor import RiskActor
from protocol.messages import RiskVerdict
from tests.actor_stubs import Client, Harness
from tests.risk.test_actor import FAST_VENUES, LIMITS, check, sample, start


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness(overrides={"risk": LIMITS, "venues": FAST_VENUES})
    yield harness
    harness.close()


def test_the_verdict_leaves_before_its_cache_entry_and_counter(h: Harness) -> None:
    """The verdict is on the socket before the cache and the counter are written (an
    approval and a rejection alike); the gate counted the approved order before."""
    actor = start(h)
    client = Client(h, "risk")
    steps: list[str] = []
    send, put = actor.send_router, actor.cache.put

    def sending(identity: list[bytes], body: Any, corr_id: str = "") -> bool:
        steps.append(f"sent:{body.type}")
        return send(identity, body, corr_id)

    def putting(c: Any, v: Any) -> None:
        steps.append(f"cached:opened={actor.gate.exposure.own_open(c.client_order_id) is not None}")
        put(c, v)

    actor.send_router = sending  # type: ignore[method-assign]
    actor.cache.put = putting  # type: ignore[method-assign]
    assert client.request(check("a1", "10")).approved
    assert not client.request(check("a2", "60")).approved
    assert steps == ["sent:risk_verdict", "cached:opened=True",
                     "sent:risk_verdict", "cached:opened=False"]  # fmt: skip


def test_a_failure_after_the_answer_is_logged_and_does_not_answer_again(h: Harness) -> None:
    """The cache write raising after the verdict went out: the OMS keeps the verdict (no
    INTERNAL refusal follows it), the failure is logged, the order stays counted."""
    actor = start(h)
    client = Client(h, "risk")

    def broken(*_: Any) -> None:
        raise RuntimeError("cache broke")

    actor.cache.put = broken  # type: ignore[method-assign]
    ok = sample("tradepulse_risk_checks_total", outcome="ok")
    msg_id = client.send(check("b1", "10"))
    env = h.pump(lambda: client.reply_to(msg_id), what="verdict")
    assert env is not None and isinstance(env.body, RiskVerdict) and env.body.approved
    h.pump_for(0.1)
    later = client.reply_to(msg_id)
    assert later is not None and isinstance(later.body, RiskVerdict)  # not answered again
    assert actor.gate.exposure.own_open("b1") is not None
    assert sample("tradepulse_risk_checks_total", outcome="ok") == ok  # not reached
    assert isinstance(actor, RiskActor)
