"""kill -9 of the connector in the middle of a batch of the OMS's venue requests (`Requests`:
the PlaceOrders of one OMS turn to one connector in one message), with real processes.
Four clients submit at once, rounds until their orders land in one OMS turn; the
connector dies after serving the batch's first PlaceOrder, before any of it is durable or
sent. The next connector incarnation logs on, the OMS reconciles and resubmits what the
venue never saw: every order reaches the venue exactly once (no duplicate-ClOrdID
reject), the OMS equals the venue."""

from __future__ import annotations

import threading

import pytest

from tests.integration.oms_support import OmsSystem, overrides, settle, systems
from tests.system_ops import VENUE, client, submit_when_open

pytestmark = pytest.mark.integration
CONNECTOR = f"connector.{VENUE}"
POINT = "mid_request_batch"


def _round(sut: OmsSystem, n: int, coids: list[str]) -> None:
    """`n` orders submitted at once by `n` clients (acks waited for, across a crash)."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def one(coid: str) -> None:
        try:
            with client(sut) as c:
                barrier.wait(10.0)
                submit_when_open(c, VENUE, price="95.00", client_order_id=coid)
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(c,)) for c in coids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60.0)
    assert not errors, errors


def test_kill9_of_the_connector_inside_a_batch_of_placeorders_sends_each_once() -> None:
    with systems() as started:
        sut = OmsSystem(crash_at=[f"{CONNECTOR}:{POINT}"], overrides=overrides())
        started.append(sut)
        sut.start()
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="warm-1")
            settle(c, sut, ["warm-1"])
            since = sut.mark()
            sut.arm(f"{CONNECTOR}:{POINT}")
            coids: list[str] = []
            for r in range(10):  # until one round's orders share an OMS turn
                batch = [f"b{r}-{i}" for i in range(4)]
                _round(sut, 4, batch)
                coids += batch
                if sut.events("injected_crash", since=since):
                    break
            sut.wait_event("injected_crash", 5.0, since=since, actor=CONNECTOR, point=POINT)
            sut.wait_event("actor_ready", 15.0, since=since, child=CONNECTOR)
            final = settle(c, sut, ["warm-1", *coids])
        assert final.venue["rejects"] == []
        assert len(final.venue["orders"]) == 1 + len(coids)
