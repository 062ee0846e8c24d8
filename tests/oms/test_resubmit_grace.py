"""`oms.resubmit_grace_s`: how long a resubmitted order the venue still does not know waits
before a pass may resubmit it again (30 s by default; a venue whose orders may land later,
or a test that must not wait 30 s a round, sets it). It was a constant of the planner."""

from __future__ import annotations

import time

import pytest
import structlog

from actors.oms.venue_link import VenueLink
from protocol.config import parse_config
from protocol.exceptions import ConfigError
from tests.oms.test_resubmit_unsent import _approved
from tests.oms.test_venue_link import CONNECTED, StubOms, StubPeer, V, _complete_pass


@pytest.mark.parametrize(("grace_s", "again"), [(5.0, True), (30.0, False)])
def test_a_pass_resubmits_again_only_once_the_configured_grace_is_over(
    grace_s: float, again: bool
) -> None:
    """An order resubmitted 10 s ago that the venue still says it never saw: resubmitted
    again with a grace of 5 s, left alone with 30 s."""
    oms, peer = StubOms(), StubPeer()
    link = VenueLink(
        V, oms, peer, request_timeout_s=5.0, log=structlog.get_logger(), rand=lambda: 0.5,
        resubmit_grace_s=grace_s,
    )  # fmt: skip
    link.on_state(CONNECTED, 7, "logged on")
    _complete_pass(peer)  # the first pass: nothing resubmitted before this process
    _approved(oms.book, "r1")
    oms.book.mark_resubmitted("r1", 3)
    link.resubmitted_at_s["r1"] = time.monotonic() - 10.0
    link.on_state(CONNECTED, 8, "logged on again")
    _complete_pass(peer, never_seen=("r1",))
    (plan,) = oms.plans[-1:]
    resubmits = [a.client_order_id for a in plan.actions if a.name == "resubmit"]
    assert resubmits == (["r1"] if again else [])


@pytest.mark.parametrize("bad", [0, 0.5, -1, float("nan"), float("inf"), 241])
def test_a_resubmit_grace_out_of_bounds_is_refused_naming_the_field(bad: float) -> None:
    with pytest.raises(ConfigError, match="oms.resubmit_grace_s"):
        parse_config({"oms": {"resubmit_grace_s": bad}, "venues": [{"name": "a"}]})
    assert parse_config({"venues": [{"name": "a"}]}).oms.resubmit_grace_s == 30.0
