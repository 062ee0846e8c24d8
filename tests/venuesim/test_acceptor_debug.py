"""The acceptor's per-order debug line (``sim_order``) is written when the log level takes
debug lines, and costs nothing when it does not: its fields (the ClOrdID read again, the
answers' MsgTypes) are not even made (issue 16: the venue's turn per order)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import LogCapture

from actors.connector.fix import codec as fc
from tests.venuesim.test_answer_at_read import _frame, _read_now, open_venue

_ORDER = [(11, b"c1"), (55, b"AAPL"), (54, b"1"), (38, b"1"), (40, b"2"), (44, b"95")]


def _run_order(tmp_path: Path, level: int) -> list[dict[str, Any]]:
    """One Logon and one NewOrderSingle through a venue logging at `level`; the lines."""
    capture = LogCapture()
    log = structlog.wrap_logger(
        None, processors=[capture], wrapper_class=structlog.make_filtering_bound_logger(level)
    )
    with open_venue(tmp_path, log) as (acceptor, client):
        client.sendall(_frame("A", 1, [(98, b"0"), (108, b"30"), (141, b"Y")]))
        acceptor._on_conn_ready()
        assert _read_now(client) == ["A"]
        client.sendall(_frame("D", 2, [*_ORDER, (60, b"x")]))
        acceptor._on_conn_ready()
        assert _read_now(client) == ["8"]  # New (95 bid: it rests)
    return capture.entries


def test_the_order_line_is_written_at_debug_level(tmp_path: Path) -> None:
    """At debug level each order is logged with its MsgType, ClOrdID and answers."""
    lines = [e for e in _run_order(tmp_path, logging.DEBUG) if e["event"] == "sim_order"]
    assert len(lines) == 1
    assert (lines[0]["msg_type"], lines[0]["cl_ord_id"], lines[0]["answers"]) == ("D", "c1", ["8"])


def test_above_debug_the_order_line_costs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At info level there is no order line, and its ClOrdID is never read for it."""
    reads: list[int] = []
    get_str = fc.get_str

    def counting(msg: Any, tag: int) -> str | None:
        reads.append(tag)
        return get_str(msg, tag)

    monkeypatch.setattr(fc, "get_str", counting)
    lines = _run_order(tmp_path, logging.INFO)
    assert not [e for e in lines if e["event"] == "sim_order"]
    assert 11 not in reads
