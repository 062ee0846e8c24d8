"""`tradepulse reconcile --venue V [--dry-run]` at the OMS (actors/oms/operator_orders.py):
the operator gets the plan of a pass that compared the venue's view with the book, and an
error naming why when the pass failed, never an empty plan ("0 action(s)", exit 0) that
reads as "the venue agrees with us"."""

from __future__ import annotations

from pathlib import Path

import pytest

from actors.oms import operator_orders
from protocol import commands
from protocol.messages import (
    ControlReply,
    GetPositions,
    OpenOrders,
    OpenOrdersRequest,
    VenueConnState,
)
from tests.oms.test_reconcile_cut import _answer
from tests.oms.test_reconcile_slices import _approved, _ledger, _listed, _rig
from tests.oms.test_venue_link import V


@pytest.mark.parametrize("dry_run", [True, False], ids=["dry_run", "applying"])
def test_a_pass_with_no_answer_from_the_connector_is_an_error_not_an_empty_plan(
    tmp_path: Path, dry_run: bool
) -> None:
    """Found with simB's connector stopped: `reconcile --venue simB --dry-run` answered
    "ok: reconcile plan for venue simB: 0 action(s)" after `reconcile_failed` ("no answer
    from the connector"). The same failure of a pass that applies is an error too."""
    link, oms, peer, _ = _rig(tmp_path)
    _approved(oms, "a")  # the venue would list it: a plan with an action, had it answered
    replies: list[ControlReply] = []
    operator_orders.reconcile(
        {V: link}, commands.Reconcile(venue=V, dry_run=dry_run), replies.append
    )
    peer.fail_pending()  # the open-orders request times out (no connector answered)
    oms.run()
    (reply,) = replies
    assert (reply.status, reply.reason) == (
        "error",
        f"reconcile of venue {V} failed: no answer from the connector",
    )
    assert "summary" not in reply.data


def test_a_pass_given_up_for_a_connector_restart_is_an_error(tmp_path: Path) -> None:
    link, oms, peer, _ = _rig(tmp_path)
    replies: list[ControlReply] = []
    operator_orders.reconcile({V: link}, commands.Reconcile(venue=V, dry_run=False), replies.append)
    link.on_state(VenueConnState.CONNECTED, 8, "a new connector incarnation")
    oms.run()
    assert [r.status for r in replies] == ["error"]
    assert replies[0].reason.startswith(f"reconcile of venue {V} failed: ")


def test_a_dry_run_the_venue_answered_is_its_plan(tmp_path: Path) -> None:
    link, oms, peer, _ = _rig(tmp_path)
    _approved(oms, "a")
    replies: list[ControlReply] = []
    operator_orders.reconcile({V: link}, commands.Reconcile(venue=V, dry_run=True), replies.append)
    _answer(peer, OpenOrdersRequest, OpenOrders(venue=V, orders=[_listed("a")]))
    oms.run()
    _answer(peer, GetPositions, _ledger())
    oms.run()
    (reply,) = replies
    assert reply.status == "ok" and reply.data["summary"]["update"] == 1
