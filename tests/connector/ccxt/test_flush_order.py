"""The ccxt adapter's turn (`CcxtAdapter.flush`): executions are handed to the listener
(the connector's outbox: durable there) before the intent log's sync, so an execution
never waits for an fdatasync of the venue id it taught us, and an order is forgotten on
disk only once the execution that ended it is durable. Found by `python -m tests.bench
--only ccxt`: two fdatasyncs in series before an order's `new` went to the OMS."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from actors.connector.ccxt import execs
from actors.connector.ccxt.adapter import CcxtAdapter
from actors.connector.ccxt.errors import Failure
from actors.connector.ccxt.intents import Intent, IntentLog
from protocol.ccxt_config import CcxtCfg
from protocol.config import VenueCfg
from protocol.messages import ExecReport, OrdType, PlaceOrder, Side
from tests.connector.fix.support import RecordingListener, TestLoop

VENUE = "bx"


class _Quiet:
    """A logger that says nothing."""

    def debug(self, event: str, **kw: Any) -> None: ...
    def info(self, event: str, **kw: Any) -> None: ...
    def warning(self, event: str, **kw: Any) -> None: ...
    def error(self, event: str, **kw: Any) -> None: ...


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[CcxtAdapter, RecordingListener, Path]]:
    vcfg = VenueCfg(
        name=VENUE, kind="ccxt",
        ccxt=CcxtCfg(api_key_env="BX_KEY", secret_env="BX_SECRET", symbols=["BTC/USDT"]),
    )  # fmt: skip
    listener = RecordingListener()
    adapter = CcxtAdapter(
        TestLoop(), listener, vcfg, store_dir=tmp_path / "store", log=_Quiet(),
        environ={"BX_KEY": "k" * 64, "BX_SECRET": "s" * 64},
    )  # fmt: skip
    try:
        yield adapter, listener, tmp_path / "store"
    finally:
        adapter.close()


def _on_disk(store: Path) -> dict[str, Intent]:
    """The live intents a restarted connector would read from the log now."""
    log = IntentLog(store)
    try:
        return dict(log.live)
    finally:
        log.close()


def _report(cl_ord_id: str) -> ExecReport:
    order = PlaceOrder(
        cl_ord_id=cl_ord_id, symbol="BTC/USDT", side=Side.BUY, qty=Decimal("0.001"),
        order_type=OrdType.LIMIT, price=Decimal("50000"),
    )  # fmt: skip
    return execs.submit_rejected_exec(VENUE, order, Failure("rejected", "test"))


def _sent(adapter: CcxtAdapter, cl_ord_id: str) -> None:
    """An order whose intent is durable (it was sent in an earlier turn)."""
    adapter.intents.add(Intent(cl_ord_id=cl_ord_id, symbol="BTC/USDT", side="BUY", qty="0.001"))
    adapter.intents.sync()


def test_an_execution_is_handed_over_before_the_venue_id_it_taught_is_synced(
    rig: tuple[CcxtAdapter, RecordingListener, Path],
) -> None:
    """The answer's turn: the execution reaches the listener while the learned venue id
    is still only buffered (no fdatasync in series before it); the turn's one sync then
    makes the venue id durable."""
    adapter, listener, store = rig
    _sent(adapter, "c1")
    seen_at_handover: list[tuple[bool, str]] = []

    def at_handover(_reports: Sequence[ExecReport]) -> None:
        seen_at_handover.append((adapter.intents.dirty, _on_disk(store)["c1"].venue_order_id))

    listener.on_execs_hook = at_handover
    adapter.intents.learn("c1", "42")
    adapter.tracker.queue([_report("c1")])
    adapter.flush()
    assert seen_at_handover == [(True, "")]
    assert not adapter.intents.dirty
    assert _on_disk(store)["c1"].venue_order_id == "42"


def test_an_order_is_forgotten_on_disk_only_after_its_final_execution_is_handed_over(
    rig: tuple[CcxtAdapter, RecordingListener, Path],
) -> None:
    """A final execution and the order's `done` in one turn: when the listener gets the
    execution the order is still live in the log (a crash then would look it up again,
    not lose it); after the turn it is forgotten."""
    adapter, listener, store = rig
    _sent(adapter, "c2")
    live_at_handover: list[bool] = []
    listener.on_execs_hook = lambda _r: live_at_handover.append("c2" in _on_disk(store))
    adapter.tracker.queue([_report("c2")])
    adapter.tracker.forget("c2")
    adapter.flush()
    assert live_at_handover == [True]
    assert "c2" not in _on_disk(store)
    assert [r.cl_ord_id for r in listener.execs] == ["c2"]
