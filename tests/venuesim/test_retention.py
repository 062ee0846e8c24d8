"""The simulated venue keeps its open orders and the newest ended ones in memory; older
ended orders leave it, and a reuse of their ClOrdIDs is still a duplicate (a real venue
rejects one all day). The log, and so `inspect`, keeps everything."""

from __future__ import annotations

import pytest

from actors.venuesim import ExecType, OrdRejReason, OrdStatus, inspect
from actors.venuesim import engine as engine_mod
from actors.venuesim import ledger as ledger_mod
from tests.venuesim.support import Sim, execs


@pytest.fixture
def small(monkeypatch: pytest.MonkeyPatch, make_sim: object) -> Sim:
    """A venue keeping 3 ended orders and 50 retired ClOrdIDs."""
    monkeypatch.setattr(engine_mod, "KEEP_TERMINAL", 3)
    monkeypatch.setattr(ledger_mod, "RETIRED_IDS", 50)
    sim: Sim = make_sim()  # type: ignore[operator]
    return sim


def _ended(sim: Sim, n: int, prefix: str = "m") -> None:
    """`n` market buys of 1: each fills at once (ended)."""
    for i in range(n):
        assert execs(sim.order(f"{prefix}{i}", "BUY", 1))[-1].ord_status is OrdStatus.FILLED


def test_only_the_newest_ended_orders_stay_in_memory(small: Sim) -> None:
    """Ten filled orders leave three in memory; a resting order stays however many end
    after it; the log still has all eleven."""
    small.order("rest", "BUY", 1, "90.00")
    _ended(small, 10)
    assert small.venue.status("m0") is None and small.venue.status("m9") is not None
    assert [o.cl_ord_id for o in small.venue.open_orders()] == ["rest"]
    assert small.venue.status("rest") is not None
    assert len(inspect(small.state_dir)["orders"]) == 11


def test_a_reused_clordid_of_an_order_gone_from_memory_is_a_duplicate(small: Sim) -> None:
    """A NewOrderSingle or a cancel/replace reusing the ClOrdID of an order that left memory
    is rejected as a duplicate, as for one in memory; its status query says unknown."""
    _ended(small, 10)
    (rej,) = execs(small.order("m0", "BUY", 1))
    assert rej.exec_type is ExecType.REJECTED and rej.ord_rej_reason is OrdRejReason.DUPLICATE_ORDER
    assert "duplicate" in rej.text
    report = small.venue.status_report("m0", 1)
    assert report.ord_rej_reason is OrdRejReason.UNKNOWN_ORDER
    small.order("rest", "BUY", 1, "90.00")
    cancel = small.cancel("m1", "rest")  # the cancel's own ClOrdID is a used one
    assert any("duplicate" in getattr(e, "text", "") for e in cancel)


def test_a_restart_rebuilds_the_same_bounded_state(small: Sim) -> None:
    """Replaying the log at start-up evicts the same way: memory stays bounded after a
    restart, and the duplicates are still known."""
    _ended(small, 10)
    small.restart()
    assert small.venue.status("m0") is None and small.venue.status("m9") is not None
    (rej,) = execs(small.order("m0", "BUY", 1))
    assert rej.ord_rej_reason is OrdRejReason.DUPLICATE_ORDER


def test_the_retired_ids_are_bounded_too(small: Sim) -> None:
    """Past RETIRED_IDS the oldest retired ClOrdIDs are forgotten (documented limit)."""
    _ended(small, 60)
    ledger = small.venue._ledger
    assert len(ledger._retired) <= 50 and len(ledger.orders) == 3
