"""The OMS's operator commands through `supervisor.py` against a running system:
`reconcile --venue V --dry-run` prints the plan and changes nothing (without --dry-run it
applies it), `intake pause|resume|status` closes and reopens order intake without stopping
anything, and `journal inspect` prints the journal's records (also when the system is
stopped)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from protocol.client import NotReady
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest, eventually
from tests.integration.oms_support import (
    overrides,
    settle,
    start,
    systems,
)
from tests.system_ops import (
    VENUE,
    client,
    find_venue_order,
    journal_records,
    sim_fault,
    submit_when_open,
    venue_status,
)

pytestmark = pytest.mark.integration
D = Decimal


def _ok(sut: SystemUnderTest, *argv: str) -> str:
    out = sut.cli(*argv)
    assert out.returncode == 0, f"{argv}: exit {out.returncode}\n{out.stdout}\n{out.stderr}"
    return out.stdout


def _json(sut: SystemUnderTest, *argv: str) -> dict[str, Any]:
    reply: dict[str, Any] = json.loads(_ok(sut, *argv, "--json"))
    return reply


def test_reconcile_dry_run_prints_the_plan_and_changes_nothing() -> None:
    """The venue swallows a fill, so the OMS has the order ACCEPTED while the venue has it
    FILLED. `reconcile --dry-run` prints a plan with that missed fill (table and --json)
    and changes nothing: same order state, same journal, no `reconcile_plan` logged.
    Without --dry-run the plan is applied: FILLED, position 100, OMS equals the venue. An
    unknown venue is an error (exit 1)."""
    with systems() as started:
        sut = start(started, overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="warm-1")
            settle(c, sut, ["warm-1"])
            sim_fault(sut, VENUE, "swallow_fills", "1")
            submit_when_open(c, VENUE, qty="100", price=None, client_order_id="gap-1")
            eventually(lambda: venue_status(sut, VENUE, "gap-1") == "FILLED", 10.0)
            eventually(lambda: c.get_order("gap-1").status is OrderStatus.ACCEPTED, 10.0)
            journal_before = journal_records(sut)
            since = sut.mark()
            table = _ok(sut, "reconcile", "--venue", VENUE, "--dry-run")
            assert f"reconcile plan for venue {VENUE}: 1 action(s) (apply_missed_fill=1)" in table
            assert "apply_missed_fill" in table and "gap-1" in table
            reply = _json(sut, "reconcile", "--venue", VENUE, "--dry-run")
            assert reply["status"] == "ok" and reply["data"]["dry_run"] is True
            assert reply["data"]["summary"]["apply_missed_fill"] == 1
            [action] = reply["data"]["actions"]
            assert (action["action"], action["client_order_id"]) == ("apply_missed_fill", "gap-1")
            assert D(action["qty"]) == 100
            view = c.get_order("gap-1")
            assert (view.status, view.cum_qty) == (OrderStatus.ACCEPTED, D(0))
            assert journal_records(sut) == journal_before
            assert not sut.events("reconcile_plan", since=since)
            applied = _json(sut, "reconcile", "--venue", VENUE)
            assert applied["data"]["dry_run"] is False
            assert applied["data"]["summary"]["apply_missed_fill"] == 1
            final = settle(c, sut, ["warm-1", "gap-1"])
        gap = final.oms["gap-1"]
        assert (gap.status, gap.cum_qty) == (OrderStatus.FILLED, D(100))
        assert final.oms_positions == {"AAPL": D(100)}
        sut.wait_event("reconcile_plan", since=since, apply_missed_fill=1)
        unknown = sut.cli("reconcile", "--venue", "nope", "--dry-run")
        assert unknown.returncode == 1 and "unknown venue" in unknown.stdout


def test_intake_pause_refuses_new_orders_until_resumed() -> None:
    """`intake pause --reason`: new submits get NotReady (IntakePaused) naming the reason,
    status shows intake paused, a resting
    order can still be cancelled; `intake resume`: submits are taken again, status shows
    intake open and the per-venue queue depth."""
    with systems() as started:
        sut = start(started, overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="live-1")
            c.wait_for_status("live-1", {OrderStatus.ACCEPTED})
            since = sut.mark()
            assert "intake paused" in _ok(sut, "intake", "pause", "--reason", "desk break")
            sut.wait_event("intake_paused", since=since, actor="oms")
            eventually(lambda: sut.status()["intake"] == "paused", 5.0)
            assert "intake paused" in _ok(sut, "intake", "status")
            with pytest.raises(NotReady, match="paused by an operator: desk break"):
                c.submit(VENUE, "AAPL", "BUY", "10", "LIMIT", price="95", client_order_id="new-1")
            c.cancel("live-1")
            c.wait_for_status("live-1", {OrderStatus.CANCELLED})
            assert "intake open" in _ok(sut, "intake", "resume")
            sut.wait_event("intake_resumed", since=since, actor="oms")
            view = c.submit(VENUE, "AAPL", "BUY", "10", price="95", client_order_id="new-1")
            assert view.client_order_id == "new-1"
            eventually(lambda: sut.status()["intake"] == "open", 5.0)
            final = settle(c, sut, ["live-1", "new-1"])
        assert final.oms["live-1"].status is OrderStatus.CANCELLED
        status = sut.status()
        assert status["queues"] == {VENUE: 0}
        text = _ok(sut, "status")
        assert "intake: open" in text and f"queues: {{'{VENUE}': 0}}" in text


def test_journal_inspect_prints_the_records() -> None:
    """`journal inspect --json` prints one record per line while the system runs: the new
    order, its events, and one fill record per venue execution with the venue's exec id;
    the table form names the orders too. After a stop it still works (it reads the state
    dir) and shows the snapshot the stop wrote."""
    with systems() as started:
        sut = start(started, overrides=overrides())
        with client(sut) as c:
            submit_when_open(c, VENUE, client_order_id="j-rest")
            submit_when_open(c, VENUE, qty="700", price=None, client_order_id="j-mkt")
            final = settle(c, sut, ["j-rest", "j-mkt"])
        records = [r["data"] for r in journal_records(sut) if r["kind"] == "record"]
        new = [r["order"]["client_order_id"] for r in records if r["kind"] == "new"]
        assert new == ["j-rest", "j-mkt"]
        events = [r["event"] for r in records if r["kind"] == "event" and r["id"] == "j-rest"]
        assert events == ["risk_approved", "accepted"]
        fills = [r["exec_id"] for r in records if r["kind"] == "fill" and r["id"] == "j-mkt"]
        venue_fills = [
            f["exec_id"] for f in (find_venue_order(final.venue, "j-mkt") or {})["fills"]
        ]
        assert fills == venue_fills and len(fills) == 2  # 500 @ 100.01, 200 @ 100.02
        table = _ok(sut, "journal", "inspect")
        assert "j-rest" in table and "j-mkt" in table
        assert sut.stop() == 0
        after = journal_records(sut)
        assert after[0]["kind"] == "snapshot"
        snap = {o["client_order_id"]: o for o in after[0]["data"]["orders"]}
        assert snap["j-mkt"]["status"] == "FILLED" and D(snap["j-mkt"]["cum_qty"]) == 700
