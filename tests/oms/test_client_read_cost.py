"""A read of many orders is charged in the turn budget by its size, not as the turn's end
(found by review: a client polling `list_orders(limit=1)` made every OMS turn stop after
its one read, another client's queued submits read ~1 a turn, each such turn a journal
commit): 200 submits and 200 cheap reads take 2 turns, as before the charge."""

from __future__ import annotations

from pathlib import Path

import zmq

from actors.oms.client_endpoint import ClientEndpoint
from protocol.codec import Sender
from protocol.messages import ListOrders
from tests.runtime.test_turn_budget import _ClientHost, _submit, _wait_readable


def test_a_cheap_list_orders_poller_does_not_starve_other_clients_submits(tmp_path: Path) -> None:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    try:
        host = _ClientHost(ctx)
        url = f"ipc://{tmp_path}/client.sock"
        endpoint = ClientEndpoint(host, url)  # type: ignore[arg-type]
        dealers = []
        for _ in ("trader", "monitor"):
            d = ctx.socket(zmq.DEALER)
            d.setsockopt(zmq.LINGER, 0)
            d.setsockopt(zmq.SNDHWM, 0)
            d.connect(url)
            dealers.append(d)
        trader, monitor = dealers
        ts, ms = Sender("trader", 1), Sender("monitor", 1)
        for i in range(200):
            trader.send_multipart(ts.encode(_submit(i)))
            monitor.send_multipart(ms.encode(ListOrders(limit=1)))
        turns = 0
        while len(host.served) < 400:
            assert _wait_readable(endpoint.sock)
            endpoint.on_readable()
            turns += 1
        print(f"{turns} turns to read 200 submits + 200 list_orders(limit=1)")
        assert turns <= 4, f"{turns} turns (each a commit in the OMS) for 200 submits"
    finally:
        ctx.destroy(linger=0)
