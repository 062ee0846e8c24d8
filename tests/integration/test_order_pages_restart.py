"""A listing cut by an OMS kill -9 (issue 16 review of the ListOrders cursor): the new
incarnation numbers its book again, so the old cursor would point past most open orders and
end the listing early. It is refused (NOT_READY, field `offset`), and the client's
`list_orders` started from 0 lists every open order."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from protocol.messages import ErrorCode, ListOrders, OrderList, OrderStatus, RequestRejected
from tests.integration.oms_support import overrides, start, systems
from tests.system_ops import VENUE, client, submit_when_open

pytestmark = pytest.mark.integration


def test_a_cursor_from_before_an_oms_kill_is_refused_and_the_list_starts_again(
    short_tmp: Path,
) -> None:
    oms = {"recent_terminal_orders": 2, "snapshot_every": 30}
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=overrides(oms=oms))
        with client(sut) as c:
            for i in range(12):  # filled, most of them archived: their places are gone
                submit_when_open(c, VENUE, qty="1", price=None, client_order_id=f"f{i:02d}")
            resting = [f"r{i}" for i in range(6)]
            for coid in resting:  # below the bids: they rest
                submit_when_open(c, VENUE, qty="1", price="95.00", client_order_id=coid)
            for coid in resting:
                c.wait_for_status(coid, {OrderStatus.ACCEPTED})
            first = c._request(ListOrders(open_only=True, limit=2))  # noqa: SLF001
            assert isinstance(first, OrderList) and first.next_offset is not None
        since = sut.mark()
        os.kill(sut.pid_of("oms"), signal.SIGKILL)
        sut.wait_event("actor_ready", 20.0, since=since, child="oms")
        with client(sut) as c:
            stale = c._request(ListOrders(open_only=True, offset=first.next_offset, limit=2))  # noqa: SLF001
            assert isinstance(stale, RequestRejected), stale
            assert stale.code is ErrorCode.NOT_READY and stale.field == "offset"
            assert sorted(o.client_order_id for o in c.list_orders(open_only=True)) == resting
