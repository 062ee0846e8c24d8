"""The FIX adapter against the simulated venue's own acceptor and matching engine, in one
test loop over a real loopback socket: the venue validates what we send as a FIX 4.4
engine does (an OrderStatusRequest without Symbol and Side gets a session Reject)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.connector.adapter import StatusResult
from actors.connector.fix.adapter import FixAdapter
from actors.connector.fix.msglog import MessageLog
from actors.connector.fix.store import FixStore
from actors.venuesim import SimStore, Venue
from actors.venuesim.acceptor import SimAcceptor
from actors.venuesim.faults import Faults
from protocol.config import SimCfg
from protocol.fix_config import DialectCfg
from protocol.messages import OrderStatus, Side
from tests.connector.fix.support import LOG, RecordingListener, TestLoop, venue_cfg
from tests.connector.fix.test_adapter import Done, ask, order

D = Decimal


class SimHarness:
    def __init__(self, root: Path, *, sim_dialect: DialectCfg | None = None, **venue: Any) -> None:
        """`sim_dialect`: how the venue behaves; `venue`: VenueCfg overrides (e.g. the
        connector's `dialect`)."""
        self.loop = TestLoop()
        cfg = SimCfg(reference_prices={"AAPL": D("100")}, volatility_bps=0.0, dialect=sim_dialect)
        self.sim_store = SimStore.open(root / "sim", book_id="bk")
        self.fix_store = FixStore(root / "sim-fix", fsync=False)
        # both sides' messages are checked against FIX 4.4 with the session's logs
        self.logs = [MessageLog(root / "venues" / "mini" / "fix" / "messages"),
                     MessageLog(root / "fix" / "mini" / "messages")]  # fmt: skip
        self.acceptor = SimAcceptor(
            venue=Venue("mini", cfg, self.sim_store, seed=7), store=self.fix_store,
            sender_comp_id="MINI", client_comp_id="TRADEPULSE", heartbeat_s=5,
            faults=Faults(), loop=self.loop, log=LOG, message_log=self.logs[0],
        )  # fmt: skip
        port = self.acceptor.listen("127.0.0.1", 0)
        self.loop.after_turn.append(self.acceptor.turn)
        self.listener = RecordingListener()
        self.adapter = FixAdapter(
            self.loop, self.listener, venue_cfg(**{"request_timeout_s": 3.0, **venue}),
            store_dir=root / "fix", address=lambda: ("127.0.0.1", port), log=LOG,
            id_prefix="t", fsync=False,
        )  # fmt: skip
        self.adapter.session.set_message_log(self.logs[1])
        self.loop.after_turn.append(self.adapter.flush)
        self.adapter.connect()
        self.loop.run_until(lambda: self.listener.ups)

    def close(self) -> None:
        self.adapter.close()
        self.acceptor.close()
        self.fix_store.close()
        self.sim_store.close()
        for log in self.logs:
            log.close()


@pytest.fixture
def h(tmp_path: Path) -> Iterator[SimHarness]:
    harness = SimHarness(tmp_path)
    yield harness
    harness.close()


def test_status_requests_carry_symbol_and_side_and_the_venue_answers(h: SimHarness) -> None:
    """Each H carries ClOrdID, Symbol(55) and Side(54), as FIX 4.4 requires: the venue
    answers every one (no session Reject), naming a known order's state and an unknown
    ClOrdID as unknown."""
    h.adapter.place(order("c1", price="99.00"), Done())
    h.loop.run_until(lambda: h.listener.execs)
    status = Done()
    h.adapter.order_status([ask("c1"), ask("ghost", side=Side.SELL)], status)
    h.loop.run_until(lambda: status.calls)
    (result,) = status.calls
    assert isinstance(result, StatusResult), result
    assert [(o.cl_ord_id, o.status) for o in result.orders] == [("c1", OrderStatus.ACCEPTED)]
    assert result.unknown == ["ghost"]
