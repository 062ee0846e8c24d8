"""kill -9 of the FIX connector with a NewOrderSingle in its FIX store and not on the wire
(`connector.<venue>:fix_stored_before_send`), with real processes: the order was acked to
the OMS only by the dead process's numbering, the venue never read it. The restarted
connector logs on, the venue asks for that number, and gets a gap fill (a D of a
connection that is gone is not copied from the store: fix transmit); the OMS's pass at
the logon finds the venue does not know the order and resubmits it, once. The market
sweep ends FILLED 2000 @ 100.025 like the venue, every fill once. (A hold meanwhile, the
kill-switch say, rejects it instead: tests/integration/test_unreceived_order_resend.py.)"""

from __future__ import annotations

import pytest

from tests.integration.oms_support import OmsSystem, overrides, sweep_through_crash, systems
from tests.system_ops import VENUE

pytestmark = pytest.mark.integration
CONNECTOR = f"connector.{VENUE}"
POINT = "fix_stored_before_send"


def test_an_order_stored_but_never_sent_is_resubmitted_by_the_oms_once() -> None:
    with systems() as started:
        sut = OmsSystem(crash_at=[f"{CONNECTOR}:{POINT}"], overrides=overrides())
        started.append(sut)
        sut.start()
        since = sut.mark()
        sweep_through_crash(sut, CONNECTOR, POINT)  # the sweep FILLED like the venue, once
        sut.wait_event("actor_exited", 15.0, since=since, child=CONNECTOR, signal="SIGKILL")
        served = sut.wait_event("fix_resend_served", 30.0, since=since, actor=CONNECTOR)
        assert served["orders_gap_filled"] == 1 and served["resent"] == 0, served
        resubmits = sut.wait_events("order_resubmitted", 1, 10.0, since=since)
        assert len(sut.events("order_resubmitted", since=since)) == 1, resubmits
