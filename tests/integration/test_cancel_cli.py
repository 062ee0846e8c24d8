"""`tradepulse cancel ORDER_ID` against a running system: the runbook's "cancel them
first" (before `stop connector.V`, at the end of the day) in one command."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from protocol import paths
from protocol.messages import OrderStatus
from tests.helpers import SystemUnderTest
from tests.system_ops import VENUE, client, submit_when_open

pytestmark = pytest.mark.integration


def test_cancel_cancels_one_working_order_so_its_connector_can_be_stopped(
    start_system: Callable[..., SystemUnderTest],
) -> None:
    """A resting order makes `stop connector.simA` refuse ("cancel them first");
    `cancel ORDER --reason` sends its cancel (exit 0, `operator_cancel` logged with who and
    why, an audit record), the venue confirms (CANCELLED), and the stop then goes through
    without --force. A second cancel says it is already CANCELLED (exit 0); an unknown id
    is refused in one line (exit 1; a control command's answer is on stdout), a missing id
    is a usage error (exit 2)."""
    sut = start_system(venues=(VENUE,))
    with client(sut) as c:
        order = submit_when_open(c, VENUE, client_order_id="rest-1")  # BUY 10 @ 95: rests
        c.wait_for_status(order.client_order_id, {OrderStatus.ACCEPTED}, timeout_s=10)
        refused = sut.cli("stop", f"connector.{VENUE}", "--reason", "maintenance")
        assert refused.returncode == 1 and "cancel them first" in refused.stdout, refused

        done = sut.cli("cancel", "rest-1", "--reason", "end of day")
        assert done.returncode == 0, (done.stdout, done.stderr)
        assert done.stdout.startswith("ok: rest-1 on simA: cancel requested: ")
        assert len(done.stdout.splitlines()) == 1, done.stdout  # one line; --json: the view
        c.wait_for_status("rest-1", {OrderStatus.CANCELLED}, timeout_s=10)
    logged = sut.wait_event("operator_cancel", client_order_id="rest-1", actor="oms")
    assert logged["reason"] == "end of day" and "uid" in logged["by"], logged
    records = paths.audit_log_path(sut.state_dir).read_text().splitlines()
    audited = [json.loads(r) for r in records if '"cancel"' in r]
    assert [(a["command"], a["reason"], a["result"]) for a in audited] == [
        ("cancel", "end of day", "ok")
    ], audited

    again = sut.cli("cancel", "rest-1")
    assert again.returncode == 0 and "already CANCELLED" in again.stdout, again
    unknown = sut.cli("cancel", "no-such-order")
    assert unknown.returncode == 1 and "no order 'no-such-order'" in unknown.stdout, unknown
    assert (unknown.stderr, len(unknown.stdout.splitlines())) == ("", 1), unknown
    assert sut.cli("cancel").returncode == 2

    stopped = sut.cli("stop", f"connector.{VENUE}", "--reason", "maintenance")
    assert stopped.returncode == 0, (stopped.stdout, stopped.stderr)
    assert sut.stop() == 0
