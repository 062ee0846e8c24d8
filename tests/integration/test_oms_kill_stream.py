"""Client retries and plain kill -9 of the OMS under a stream of orders.

A retry with the same client order id never makes a second order, whether the first
attempt was answered or died with the OMS. Several clients stream resting, crossing and
market orders and cancels while the OMS is killed -9 at random moments (seeded): every
acknowledged order survives, none reaches the venue twice, and the OMS ends equal to the
venue's inspection, each execution journalled once."""

from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from protocol.client import ClientError, ExecutionClient, InvalidOrder, NotReady
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.integration.oms_support import (
    check_journal_fills,
    overrides,
    settle,
    start,
    systems,
)
from tests.system_ops import VENUE, client, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal
SEED = 4242
CLIENTS = 3
ORDERS_PER_CLIENT = 50
KILLS = 5


def test_the_same_order_submitted_twice_is_one_order() -> None:
    """A second submit with the same client order id and the same fields returns the first
    order (the market buy is at the venue once, the position counts it once); the same id
    with different fields is refused as InvalidOrder(client_order_id), and bad terms as
    InvalidOrder naming the field (and never become orders). A cancel sent again
    after the order is CANCELLED (a retry whose ack was lost) returns the order, no error."""
    with systems() as started:
        sut = start(started, overrides=overrides())
        with client(sut) as c:
            first = submit_when_open(c, VENUE, price="95.00", client_order_id="twice-1")
            again = submit_when_open(c, VENUE, price="95.00", client_order_id="twice-1")
            assert again.cl_ord_id == first.cl_ord_id
            mkt = submit_when_open(c, VENUE, qty="50", price=None, client_order_id="twice-mkt")
            c.wait_for_status("twice-mkt", {OrderStatus.FILLED})
            retried = submit_when_open(c, VENUE, qty="50", price=None, client_order_id="twice-mkt")
            assert retried.cl_ord_id == mkt.cl_ord_id
            with pytest.raises(InvalidOrder) as info:
                c.submit("simA", "AAPL", "BUY", "11", "LIMIT", price="95.00",
                         client_order_id="twice-1")  # fmt: skip
            assert info.value.field == "client_order_id"
            for qty, price, coid, field in [
                ("0", "95.00", "bad-qty", "qty"),
                ("5", None, "bad-px", "price"),
                ("5", "95.00", "ext:mine", "client_order_id"),
            ]:
                with pytest.raises(InvalidOrder) as info:
                    c.submit("simA", "AAPL", "BUY", qty, "LIMIT", price=price,
                             client_order_id=coid)  # fmt: skip
                assert info.value.field == field
            known = {o.client_order_id for o in c.list_orders()}
            assert not known & {"bad-qty", "bad-px", "ext:mine"}
            c.wait_for_status("twice-1", {OrderStatus.ACCEPTED})
            c.cancel("twice-1")
            c.wait_for_status("twice-1", {OrderStatus.CANCELLED})
            assert c.cancel("twice-1").status is OrderStatus.CANCELLED
            final = settle(c, sut, ["twice-1", "twice-mkt"])
        assert len(final.venue["orders"]) == 2 and final.venue["rejects"] == []
        assert final.oms_positions == {"AAPL": D(50)}


def test_a_replace_sent_again_after_it_took_effect_returns_the_order() -> None:
    """A replace (qty 10 -> 20) takes effect at the venue; the same replace sent again (a
    retry whose ack was lost, e.g. with a killed OMS) returns the replaced order instead of
    an error, and nothing more is sent: the venue order is replaced once."""
    with systems() as started:
        sut = start(started, overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, qty="10", price="95.00", client_order_id="repl-1")
            c.wait_for_status("repl-1", {OrderStatus.ACCEPTED})
            c.replace("repl-1", qty="20")
            eventually(lambda: c.get_order("repl-1").qty == D(20), 10.0)
            again = c.replace("repl-1", qty="20")
            assert (again.qty, again.status) == (D(20), OrderStatus.ACCEPTED)
            final = settle(c, sut, ["repl-1"])
        [vo] = final.venue["orders"]
        assert vo["cl_ord_ids"] == ["repl-1", "repl-1.r1"] and D(vo["order_qty"]) == 20


@dataclass
class _Stream:
    """One client thread's orders: deterministic ids and kinds from the seed."""

    sut: SystemUnderTest
    n: int
    rng: random.Random
    acked: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with client(self.sut, timeout_s=30.0) as c:
            resting: list[str] = []
            for i in range(ORDERS_PER_CLIENT):
                if self.stop.is_set():
                    return
                coid = f"s{self.n}-{i:03d}"
                kind = self.rng.choice(
                    ["rest", "rest", "ioc_buy", "ioc_sell", "market", "cancel", "replace"]
                )
                try:
                    if kind == "cancel" and resting:
                        self._cancel(c, resting.pop(0))
                        continue
                    fresh = [x for x in resting if x not in self.replaced]
                    if kind == "replace" and fresh:
                        self._replace(c, fresh[0])
                        continue
                    if kind in ("cancel", "replace"):
                        kind = "rest"
                    self._submit(c, coid, kind)
                    self.acked.append(coid)
                    if kind == "rest":
                        resting.append(coid)
                except (ClientError, InvalidOrder) as exc:  # reported by the test
                    self.errors.append(f"{coid} {kind}: {exc!r}")

    def _submit(self, c: ExecutionClient, coid: str, kind: str) -> None:
        if kind == "rest":
            submit_when_open(
                c, VENUE, "BUY", "10", f"{self.rng.randint(95, 99)}.00", client_order_id=coid
            )
        elif kind == "ioc_buy":
            submit_when_open(c, VENUE, "BUY", "20", "100.05", tif="IOC", client_order_id=coid)
        elif kind == "ioc_sell":
            submit_when_open(c, VENUE, "SELL", "20", "99.95", tif="IOC", client_order_id=coid)
        else:
            submit_when_open(c, VENUE, "BUY", "30", None, client_order_id=coid)

    def _cancel(self, c: ExecutionClient, coid: str) -> None:
        """Cancel once the order is live at the venue (retried until acknowledged)."""
        c.wait_for_status(coid, {OrderStatus.ACCEPTED}, timeout_s=30.0)
        eventually(lambda: _answered(lambda: c.cancel(coid)), 30.0, interval_s=0.05)
        self.cancelled.append(coid)

    def _replace(self, c: ExecutionClient, coid: str) -> None:
        """Replace qty 10 -> 15 once the order is live at the venue."""
        c.wait_for_status(coid, {OrderStatus.ACCEPTED}, timeout_s=30.0)
        eventually(lambda: _answered(lambda: c.replace(coid, qty="15")), 30.0, interval_s=0.05)
        self.replaced.append(coid)


def _answered(call: Callable[[], object]) -> bool:
    """True once `call` is answered (the client retries it until then); False on NotReady."""
    try:
        call()
        return True
    except NotReady:
        return False


def test_kill9_of_the_oms_at_random_moments_under_a_stream_of_orders() -> None:
    """Three clients stream 150 requests (resting limits, IOC crosses both ways, market
    buys, cancels, replaces); the OMS is killed -9 five times, each after a random number of
    acks. Every acknowledged order is at the OMS and at the venue once, the OMS equals the
    venue (status, qty, cum qty, avg px, positions), the cancelled orders are CANCELLED, the
    replaced ones have their new qty under `.r1`, every execution is journalled once, and
    no late venue report of a fill reconciliation inferred raises an overfill."""
    rng = random.Random(SEED)
    kill_at = sorted(rng.sample(range(5, 100), KILLS))
    with systems() as started:
        sut = start(started, overrides=overrides(oms={"request_timeout_s": 5.0}))
        streams = [_Stream(sut, n, random.Random(SEED + n)) for n in range(CLIENTS)]
        threads = [threading.Thread(target=s.run) for s in streams]
        for t in threads:
            t.start()
        try:
            for threshold in kill_at:
                eventually(lambda th=threshold: sum(len(s.acked) for s in streams) >= th, 60.0)
                since = sut.mark()
                os.kill(sut.pid_of("oms"), signal.SIGKILL)
                sut.wait_event("actor_ready", 15.0, since=since, child="oms")
            for t in threads:
                t.join(90.0)
        finally:
            for s in streams:
                s.stop.set()
            for t in threads:
                t.join(30.0)
        assert [e for s in streams for e in s.errors] == []
        acked = [coid for s in streams for coid in s.acked]
        requests = sum(len(s.cancelled) + len(s.replaced) for s in streams)
        assert len(acked) + requests == CLIENTS * ORDERS_PER_CLIENT
        with client(sut) as c:
            final = settle(c, sut, acked, timeout_s=60.0)
        assert len(sut.events("actor_exited", child="oms")) == KILLS
        for coid in (x for s in streams for x in s.cancelled):
            assert final.oms[coid].status is OrderStatus.CANCELLED
        for coid in (x for s in streams for x in s.replaced):
            assert final.oms[coid].qty == D(15) and final.oms[coid].cl_ord_id == f"{coid}.r1"
        assert len(final.venue["orders"]) == len(acked)
        assert not sut.events("order_escalation", kind="overfill")  # no fill counted twice
        check_journal_fills(sut, final.oms)
