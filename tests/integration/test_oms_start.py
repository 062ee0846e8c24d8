"""Warm and cold start of the whole system, as the runbook has them.

Warm (`run`, the default): the journal is replayed, each venue reconciled, intake opens and
`warm_start` is logged with the counts. Cold (`run --cold`): the journal is archived under
state/archive/<ts>/, the OMS starts with no orders and no positions, the venue orders still
open from before are cancelled (default policy) or adopted, each logged, and `cold_start`
is logged once the first reconciliation is done."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from protocol import paths
from protocol.client import ExecutionClient
from protocol.messages import OrderStatus
from tests.chaos.venuectl import risk_positions
from tests.helpers import SystemUnderTest, event_time, eventually
from tests.integration.oms_support import (
    overrides,
    settle,
    start,
    systems,
)
from tests.system_ops import VENUE, client, submit_when_open

pytestmark = pytest.mark.integration
D = Decimal
RESTING = ["rest-0", "rest-1", "rest-2", "rest-3"]


def _trade(sut: SystemUnderTest) -> dict[str, tuple[OrderStatus, Decimal]]:
    """Four resting buys, one of them cancelled, and a market buy of 100 that fills:
    returns the OMS's (status, cum qty) per order once it agrees with the venue."""
    with client(sut) as c:
        for i, coid in enumerate(RESTING):
            submit_when_open(c, VENUE, price=f"9{5 + i}.00", client_order_id=coid)
        submit_when_open(c, VENUE, qty="100", price=None, client_order_id="mkt-0")
        c.wait_for_status("rest-3", {OrderStatus.ACCEPTED})
        c.cancel("rest-3")
        final = settle(c, sut, [*RESTING, "mkt-0"])
    assert final.oms["rest-3"].status is OrderStatus.CANCELLED
    assert final.oms_positions == {"AAPL": D(100)}
    return {k: (v.status, v.cum_qty) for k, v in final.oms.items()}


def _intake_open(c: ExecutionClient, coid: str) -> None:
    assert submit_when_open(c, VENUE, price="94.00", client_order_id=coid).client_order_id == coid


def test_warm_start_replays_reconciles_and_opens_intake(short_tmp: Path) -> None:
    """SIGTERM with open orders, then `run` again: the OMS replays its journal (the stop
    left a snapshot), reconciles the venue (nothing to repair), logs `warm_start` with the
    order counts, reports intake open, and has every order as before; nothing was sent to
    the venue again. New orders are taken."""
    with systems() as started:
        first = start(started, root=short_tmp, overrides=overrides())
        before = _trade(first)
        assert first.stop() == 0
        first.wait_event("actor_stopped", actor="oms")
        sut = start(started, root=short_tmp, overrides=overrides())
        warm = sut.wait_event("warm_start", 20.0, actor="oms")
        assert (warm["orders"], warm["open_orders"]) == (5, 3)
        replayed = sut.wait_event("journal_replayed", actor="oms")
        assert replayed["snapshot"] is True and replayed["orders"] == 5
        plan = sut.wait_event("reconcile_plan", actor="oms", venue=VENUE)
        assert plan["actions"] == 0
        connected = sut.wait_event("venue_state", actor="oms", state="CONNECTED")
        # a first pass sent before the connector logged on fails; CONNECTED runs the next
        # pass at once, not after the 1 s retry delay
        assert event_time(plan) - event_time(connected) < 0.8, (connected, plan)
        assert not sut.events("order_resubmitted") and not sut.events("order_adopted")
        with client(sut) as c:
            _intake_open(c, "after-warm")
            now = settle(c, sut, [*RESTING, "mkt-0", "after-warm"])
        assert {k: (v.status, v.cum_qty) for k, v in now.oms.items() if k != "after-warm"} == before
        assert len(now.venue["orders"]) == 6 and now.venue["rejects"] == []
        assert sut.status()["intake"] == "open"


def _risk_positions(sut: SystemUnderTest) -> dict[str, Decimal]:
    """Risk's positions (what its limits read), flat ones left out."""
    rows, why = risk_positions(sut.cfg)
    assert rows is not None, why
    return {str(r["symbol"]): Decimal(str(r["qty"])) for r in rows if Decimal(str(r["qty"]))}


@pytest.mark.parametrize(("policy", "flat"), [("cancel", True), ("adopt", False)])
def test_cold_start_archives_and_handles_open_venue_orders(
    short_tmp: Path, policy: str, flat: bool
) -> None:
    """`run --cold` after trading: the journal moves to state/archive/<ts>/oms and the OMS
    knows none of the old orders; the three orders still open at the venue are adopted as
    external (logged `order_adopted`) and, with the default policy, cancelled at the venue,
    with `adopt` left open. Positions: none from the archived journal; a flat venue reads
    zero, a venue holding a position from before gives the OMS that opening position
    (logged `opening_position`, no `position_mismatch` escalation), and risk's too. `cold_start`
    is logged by the supervisor (archive) and by the OMS (policy, counts); intake opens."""
    cfg = overrides(oms={"cold_start_open_orders": policy})
    old = {"rest-3", "mkt-0", "flat-0"} if flat else {"rest-3", "mkt-0"}
    with systems() as started:
        first = start(started, root=short_tmp, overrides=cfg)
        _trade(first)
        if flat:
            with client(first) as c:
                submit_when_open(c, VENUE, "SELL", "100", None, client_order_id="flat-0")
                settle(c, first, ["flat-0"])
        assert first.stop() == 0
        sut = start(started, root=short_tmp, cold=True, overrides=cfg)
        archived = sut.wait_event("cold_start", actor="supervisor")
        done = sut.wait_event("cold_start", 20.0, actor="oms", step="reconciled")
        assert done["policy"] == policy and done["orders"] == 3
        archive = Path(archived["archive"])
        assert archive.parent == paths.archive_root(sut.state_dir)
        assert (paths.oms_dir(archive) / "snapshot.bin").exists()  # the stop left a snapshot
        marker = paths.cold_marker(sut.state_dir)
        eventually(lambda: not marker.exists(), 5.0)  # removed once the cold pass is done
        open_ids = {f"ext:{VENUE}:{coid}" for coid in RESTING[:3]}
        want = OrderStatus.CANCELLED if policy == "cancel" else OrderStatus.ACCEPTED
        with client(sut) as c:
            final = settle(c, sut, [], ignore=old)
            assert set(final.oms) == open_ids
            assert all(v.external and v.status is want for v in final.oms.values())
            _intake_open(c, "after-cold")
        assert final.oms_positions == ({} if flat else {"AAPL": D(100)})
        eventually(lambda: _risk_positions(sut) == final.oms_positions, 5.0)  # risk's too
        assert bool(sut.events("opening_position", actor="oms")) is not flat
        assert not sut.events("reconcile_escalation", actor="oms", reason="position_mismatch")
        venue_status = {o["cl_ord_ids"][0]: o["status"] for o in final.venue["orders"]}
        assert venue_status == {
            "rest-0": want.value, "rest-1": want.value, "rest-2": want.value,
            **{coid: "FILLED" for coid in old - {"rest-3"}}, "rest-3": "CANCELLED",
        }  # fmt: skip
        adopted = {e["client_order_id"] for e in sut.events("order_adopted", actor="oms")}
        assert adopted == open_ids
        assert all(e["cold"] for e in sut.events("order_adopted", actor="oms"))
