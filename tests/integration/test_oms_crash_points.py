"""kill -9 of the OMS at each named crash point, with real processes (supervisor, risk, OMS,
connector, venue sim). After the supervisor restarts the OMS: no duplicate order at the
venue, no acknowledged order lost, the OMS equals the venue for every order (status, cum
qty, avg px) and the positions are equal (checked against the venue's inspection output).

Each test arms its point (tests/integration/oms_support.py) only once the system is up, so
the crash hits the order path the test drives, and asserts it did (`injected_crash`)."""

from __future__ import annotations

import os
import signal
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.integration.oms_support import (
    check_journal_fills,
    check_sweep,
    overrides,
    settle,
    start,
    systems,
    trigger_reconcile,
)
from tests.system_ops import (
    VENUE,
    client,
    find_venue_order,
    inspect_venue,
    sim_fault,
    submit_when_open,
)

pytestmark = pytest.mark.integration
D = Decimal


def _crashed_and_back(sut: SystemUnderTest, point: str, since: int) -> None:
    sut.wait_event("injected_crash", 15.0, since=since, actor="oms", point=point)
    sut.wait_event("actor_ready", 15.0, since=since, child="oms")


def _venue_statuses(sut: SystemUnderTest, cl_ord_ids: list[str]) -> set[str]:
    data = inspect_venue(sut, VENUE, cli=False)
    return {(find_venue_order(data, cl) or {}).get("status", "missing") for cl in cl_ord_ids}


def _resubmits_since(sut: SystemUnderTest, since: int) -> list[str]:
    return [e["client_order_id"] for e in sut.events("order_resubmitted", since=since)]


@pytest.mark.parametrize("point", ["after_journal_before_send", "before_send"])
def test_crash_before_the_order_is_sent(point: str) -> None:
    """The order is durable (PENDING_SUBMIT) but the OMS dies before it reaches the
    connector and before the client's ack: the client's retry (same client order id) is
    answered by the restarted OMS, whose reconciliation finds the venue never saw the order
    and resubmits it once with the same ClOrdID. The venue ends up with exactly one order,
    and no duplicate-ClOrdID reject."""
    with systems() as started:
        sut = start(started, crash_at=[point], overrides=overrides())
        with client(sut) as c:
            warm = submit_when_open(c, VENUE, client_order_id="warm-1")
            settle(c, sut, ["warm-1"])
            since = sut.mark()
            sut.arm(point)
            # blocks across the crash: retried
            order = submit_when_open(c, VENUE, price="96.00", client_order_id="cp-1")
            _crashed_and_back(sut, point, since)
            assert order.client_order_id == "cp-1"
            final = settle(c, sut, ["warm-1", "cp-1"])
        # logged by the new OMS, read by a thread: wait for it (a second would show too)
        eventually(lambda: _resubmits_since(sut, since) == ["cp-1"], 10.0,
                   message=lambda: f"resubmits: {_resubmits_since(sut, since)}")  # fmt: skip
        assert final.oms["cp-1"].status is OrderStatus.ACCEPTED
        assert final.venue["rejects"] == []
        assert [o["cl_ord_ids"][0] for o in final.venue["orders"]] == [warm.cl_ord_id, "cp-1"]
        check_journal_fills(sut, final.oms)


def test_crash_after_send_before_the_connector_ack() -> None:
    """The PlaceOrder went out (the client already has its ack) and the OMS dies as the
    connector's Ack comes back: the restarted OMS learns from the venue (open orders, or
    the connector's re-sent execution) that the order is live; it is never sent again."""
    point = "after_send_before_ack"
    with systems() as started:
        sut = start(started, crash_at=[point], overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="warm-1")
            settle(c, sut, ["warm-1"])
            since = sut.mark()
            sut.arm(point)
            acked = submit_when_open(c, VENUE, price="96.00", client_order_id="cp-1")
            assert acked.status in (OrderStatus.PENDING_SUBMIT, OrderStatus.ACCEPTED)
            _crashed_and_back(sut, point, since)
            final = settle(c, sut, ["warm-1", "cp-1"])
        assert _resubmits_since(sut, since) == []
        assert final.oms["cp-1"].status is OrderStatus.ACCEPTED
        assert final.venue["rejects"] == []
        assert len(final.venue["orders"]) == 2


@pytest.mark.parametrize("point", ["before_send", "after_send_before_ack"])
@pytest.mark.parametrize("kind", ["cancel", "replace"])
def test_crash_around_sending_a_cancel_or_replace(kind: str, point: str) -> None:
    """The OMS dies with a cancel / replace journalled (PENDING_CANCEL / PENDING_REPLACE)
    just before or just after it went to the connector. The client's retry is answered by
    the restarted OMS; the request reaches the venue once (same ClOrdID `.c1` / `.r1`):
    the order ends CANCELLED / replaced to qty 20, equal at the OMS and the venue."""
    with systems() as started:
        sut = start(started, crash_at=[point], overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, price="95.00", client_order_id="cx-1")
            c.wait_for_status("cx-1", {OrderStatus.ACCEPTED})
            settle(c, sut, ["cx-1"])
            since = sut.mark()
            sut.arm(point)
            view = c.cancel("cx-1") if kind == "cancel" else c.replace("cx-1", qty="20")
            _crashed_and_back(sut, point, since)
            assert view.client_order_id == "cx-1"
            want = OrderStatus.CANCELLED if kind == "cancel" else OrderStatus.ACCEPTED
            eventually(lambda: c.get_order("cx-1").status is want, 15.0)
            final = settle(c, sut, ["cx-1"])
        [vo] = final.venue["orders"]
        if kind == "cancel":
            assert vo["status"] == "CANCELLED" and vo["cl_ord_ids"] == ["cx-1", "cx-1.c1"]
            assert [x["exec_type"] for x in vo["execs"]] == ["0", "4"], vo["execs"]
        else:
            assert vo["cl_ord_ids"] == ["cx-1", "cx-1.r1"] and D(vo["order_qty"]) == 20
            assert [x["exec_type"] for x in vo["execs"]] == ["0", "5"], vo["execs"]
            assert final.oms["cx-1"].qty == D(20)
        assert final.venue["rejects"] == []


def test_crash_between_two_partial_fills() -> None:
    """A market buy of 2000 sweeps four quote levels (500 each at 100.01..100.04): the OMS
    dies right after the first partial fill is durable, before it acks that execution. The
    connector re-sends what was not acked; the restarted OMS applies each exec id once and
    ends FILLED 2000 @ 100.025 like the venue, position 2000."""
    point = "between_partial_fills"
    with systems() as started:
        sut = start(started, crash_at=[point], overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="warm-1")
            settle(c, sut, ["warm-1"])
            since = sut.mark()
            sut.arm(point)
            submit_when_open(c, VENUE, qty="2000", price=None, client_order_id="sweep-1")
            _crashed_and_back(sut, point, since)
            final = settle(c, sut, ["warm-1", "sweep-1"])
        check_sweep(sut, final)


def test_crash_during_reconciliation_of_missed_fills() -> None:
    """Three market buys fill at the venue but the venue swallows the fill reports (the OMS
    has them ACCEPTED). An operator reconciliation plans three missed fills; the OMS dies
    after applying (and committing) the first. The restarted OMS's reconciliation applies
    only the other two (synthetic exec ids make the first a no-op): all FILLED at the
    venue's price, position 300, each fill journalled once."""
    point = "during_reconciliation"
    with systems() as started:
        sut = start(started, crash_at=[point], overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="warm-1")
            settle(c, sut, ["warm-1"])
            sim_fault(sut, VENUE, "swallow_fills", "3")
            ids = [f"mkt-{i}" for i in range(3)]
            for coid in ids:
                submit_when_open(c, VENUE, qty="100", price=None, client_order_id=coid)
            eventually(lambda: _venue_statuses(sut, ids) == {"FILLED"}, 10.0)
            eventually(lambda: {c.get_order(i).status for i in ids} == {OrderStatus.ACCEPTED}, 10.0)
            since = sut.mark()
            sut.arm(point)
            trigger_reconcile(sut, timeout_s=3.0)  # no answer: the OMS dies mid-plan
            _crashed_and_back(sut, point, since)
            final = settle(c, sut, ["warm-1", *ids])

        def plans_done() -> list[dict[str, Any]] | None:  # logged lines are read by a thread
            plans = sut.events("reconcile_plan", since=since)
            return plans if sum(p["apply_missed_fill"] for p in plans[1:]) >= 2 else None

        plans = eventually(plans_done, 10.0)
        assert plans[0]["apply_missed_fill"] == 3  # the plan the crash interrupted
        assert sum(p["apply_missed_fill"] for p in plans[1:]) == 2  # only what was left
        for coid in ids:
            assert (final.oms[coid].status, final.oms[coid].cum_qty) == (OrderStatus.FILLED, D(100))
        assert final.oms_positions == {"AAPL": D(300)}
        check_journal_fills(sut, final.oms)


def test_crash_during_the_cold_start_reconciliation(short_tmp: Path) -> None:
    """Four orders rest at the venue; the system stops and starts cold (journal archived,
    policy: cancel). The first reconciliation adopts them and requests their cancels; the
    OMS dies half way through that plan. The restarted OMS is still cold (the marker stays
    until a pass completes): it adopts the rest, sends every cancel once; all four end
    CANCELLED at the venue and at the OMS, and `cold_start` is logged once it is done."""
    root = short_tmp
    with systems() as started:
        first = start(started, root=root, overrides=overrides())
        with client(first) as c:
            ids = [f"rest-{i}" for i in range(4)]
            for i, coid in enumerate(ids):
                submit_when_open(c, VENUE, price=f"9{5 + i}.00", client_order_id=coid)
            settle(c, first, ids)
        assert first.stop() == 0
        sut = start(
            started, root=root, cold=True, crash_at=["during_reconciliation"], armed=True,
            overrides=overrides(),
        )  # fmt: skip
        _crashed_and_back(sut, "during_reconciliation", 0)
        sut.wait_event("cold_start", 20.0, actor="oms", step="reconciled")
        with client(sut) as c:
            final = settle(c, sut, [])
        adopted = {f"ext:{VENUE}:{coid}" for coid in ids}
        assert set(final.oms) == adopted
        assert all(v.status is OrderStatus.CANCELLED and v.external for v in final.oms.values())
        assert [o["status"] for o in final.venue["orders"]] == ["CANCELLED"] * 4
        logged = {e["client_order_id"] for e in sut.events("order_adopted", actor="oms")}
        assert logged == adopted


def test_client_retry_across_a_kill9_creates_one_order() -> None:
    """The OMS freezes (SIGSTOP) while a client submits: the request waits in its socket, the
    supervisor sees the missed heartbeats and kills it (-9). The client keeps retrying the
    same client order id (NotReady while the new OMS reconciles) until it is acknowledged:
    exactly one order at the venue."""
    with systems() as started:
        sut = start(started, overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="warm-1")
            settle(c, sut, ["warm-1"])
            since = sut.mark()
            os.kill(sut.pid_of("oms"), signal.SIGSTOP)
            result: dict[str, object] = {}

            def worker() -> None:
                with client(sut) as c2:
                    result["view"] = submit_when_open(
                        c2, VENUE, price="97.00", client_order_id="retry-1"
                    )

            t = threading.Thread(target=worker)
            t.start()
            sut.wait_event("actor_hung", 10.0, since=since, child="oms")
            sut.wait_event("actor_ready", 15.0, since=since, child="oms")
            t.join(40.0)
            assert "view" in result, result
            final = settle(c, sut, ["warm-1", "retry-1"])
        assert len([o for o in final.venue["orders"] if o["cl_ord_ids"][0] == "retry-1"]) == 1
        assert final.venue["rejects"] == []
