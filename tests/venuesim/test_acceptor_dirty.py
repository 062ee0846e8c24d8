"""The venue's engine log is marked for the next batched fsync by every order that wrote
an execution (the acceptor's `on_dirty`), and not by a request that wrote none."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import simplefix  # type: ignore[import-untyped]
import structlog

from actors.connector.fix import codec as fc
from actors.connector.fix.events import AppMessage
from actors.connector.fix.store import FixStore
from actors.venuesim import SimStore, Venue
from actors.venuesim.acceptor import SimAcceptor
from actors.venuesim.faults import Faults
from protocol.config import SimCfg


class _Loop:
    def add_fd(self, fd: int, handler: Callable[[], None], events: int = 0) -> None: ...
    def modify_fd(self, fd: int, events: int) -> None: ...
    def remove(self, sock_or_fd: Any) -> None: ...
    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None: ...


def _msg(*pairs: tuple[int, str]) -> simplefix.FixMessage:
    msg = simplefix.FixMessage()
    for tag, value in ((8, "FIX.4.4"), (35, "D"), *pairs):
        msg.append_pair(tag, value)
    return fc.to_message(list(fc.split_fields(msg.encode())))


def test_an_order_marks_the_log_dirty_a_status_request_does_not(tmp_path: Path) -> None:
    cfg = SimCfg(reference_prices={"AAPL": Decimal("100")}, tick_size=Decimal("0.01"))
    store = SimStore.open(tmp_path / "sim", book_id="bk")
    fix_store = FixStore(tmp_path / "fix", fsync=False)
    marks: list[int] = []
    acceptor = SimAcceptor(
        venue=Venue("simA", cfg, store, seed=7), store=fix_store, sender_comp_id="V",
        client_comp_id="C", heartbeat_s=30, faults=Faults(), loop=_Loop(),
        log=structlog.get_logger("test"), on_dirty=lambda: marks.append(1),
    )  # fmt: skip
    try:
        order = _msg((11, "c1"), (55, "AAPL"), (54, "1"), (38, "1"), (40, "1"), (60, "x"))
        acceptor._on_app(AppMessage("D", order, False, 1))
        assert marks
        marks.clear()
        acceptor._on_app(AppMessage("H", _msg((11, "c1"), (55, "AAPL"), (54, "1")), False, 2))
        assert not marks
    finally:
        store.close()
        fix_store.close()
