"""Terminal orders out of the OMS's memory, in the real system: with a tiny
`recent_terminal_orders` and frequent snapshots, old filled orders are only in the archive
(`<state>/oms/orders.sqlite`), their journal records compacted away; after a kill -9 of the
OMS they are still found by id, counted in the operator's view, and their client order ids
are still refused for a new order; a client's order list pages on into the archive."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from actors.oms.order_archive import ARCHIVE_NAME, OrderArchive
from protocol import paths
from protocol.client import InvalidOrder
from protocol.messages import OrderStatus
from tests.helpers import eventually
from tests.integration.oms_support import overrides, start, systems
from tests.system_ops import SYMBOL, VENUE, client, journal_records, submit_when_open

pytestmark = pytest.mark.integration
ORDERS = 40


def test_evicted_orders_survive_compaction_and_kill_9(short_tmp: Path) -> None:
    """40 market orders fill; the OMS keeps 5 terminal ones, archives the rest and
    snapshots every 60 records (so the journal no longer holds the first orders). After a
    kill -9 of the OMS: GetOrder of the first order answers FILLED, the same submit again is
    a duplicate (nothing new at the venue), the same id with other terms is refused, and
    `tradepulse orders` lists all 40."""
    oms = {"recent_terminal_orders": 5, "snapshot_every": 60}
    with systems() as started:
        sut = start(started, root=short_tmp, overrides=overrides(oms=oms))
        coids = [f"arch-{i:03d}" for i in range(ORDERS)]
        with client(sut) as c:
            for coid in coids:
                submit_when_open(c, VENUE, qty="1", price=None, client_order_id=coid)
            for coid in coids:
                c.wait_for_status(coid, {OrderStatus.FILLED})
        snapshot = paths.oms_dir(sut.state_dir) / "snapshot.bin"
        eventually(snapshot.exists, 20.0, message="no journal snapshot")
        eventually(lambda: "arch-000" not in _journal_ids(sut), 20.0, interval_s=0.2)
        since = sut.mark()
        os.kill(sut.pid_of("oms"), signal.SIGKILL)
        sut.wait_event("actor_ready", 15.0, since=since, child="oms")
        with client(sut) as c:
            first = c.get_order("arch-000")
            assert first.status is OrderStatus.FILLED and first.cum_qty == 1
            again = submit_when_open(c, VENUE, qty="1", price=None, client_order_id="arch-000")
            assert again.status is OrderStatus.FILLED  # the duplicate: the order as it is
            with pytest.raises(InvalidOrder, match="reused"):
                c.submit(VENUE, SYMBOL, "BUY", "2", "MARKET", client_order_id="arch-001")
            listed = [o.client_order_id for o in c.list_orders(VENUE)]
            assert sorted(listed) == coids  # each once, the archived ones too
        view = sut.control("orders", limit=100)
        assert view.data is not None and view.data["total"] == ORDERS
        assert sorted(r["client_order_id"] for r in view.data["orders"]) == coids
        # the compacted order is durably in the archive (a reader sees committed rows only)
        archive = OrderArchive(paths.oms_dir(sut.state_dir) / ARCHIVE_NAME)
        try:
            old = archive.get("arch-000")
            assert old is not None and old.status is OrderStatus.FILLED
        finally:
            archive.close()


def _journal_ids(sut: object) -> set[str]:
    """The client order ids the journal's live segments still hold records of."""
    out = set()
    for r in journal_records(sut):  # type: ignore[arg-type]
        if r["kind"] != "record":
            continue
        d = r["data"]
        if d.get("kind") == "new":
            out.add(d["order"]["client_order_id"])
        elif "id" in d:
            out.add(d["id"])
    return out
