"""Quarantine inside an ExecReports (a review of the merge of the batches and the
quarantine): a transient error leaves its item unacked (and unapplied), a poison item is
quarantined and acked once, and its resend in a later batch is acked again without being
applied; the siblings apply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from actors.oms.exec_intake import ExecIntake
from actors.oms.exec_quarantine import POISON_ENV
from actors.oms.order_book import OrderBook
from protocol.codec import Sender, decode
from protocol.messages import ExecAck, ExecReports
from protocol.wire_out import dump
from tests.oms.test_exec_quarantine import V, _fill, _Host, _live, _Reply


def _batch(*reports: Any) -> ExecReports:
    msg = ExecReports.model_construct(venue=V, reports=[dump(r) for r in reports])
    body = decode(Sender(f"connector.{V}", 7).encode(msg)).body
    assert isinstance(body, ExecReports)
    return body


def test_transient_poison_and_resend_in_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = OrderBook()
    c1, c2, c3 = _live(book, "o1"), _live(book, "o2"), _live(book, "o3")
    monkeypatch.setenv(POISON_ENV, c2)
    host = _Host(tmp_path, book)
    failed: list[str] = []
    host.count_failed = failed.append  # type: ignore[attr-defined]
    real = book.apply_exec
    flaky = {"on": True}

    def apply_exec(report: Any, ts: int, via: Any = None) -> Any:
        if flaky["on"] and report.cl_ord_id == c1:
            raise OSError("disk I/O error")  # transient: the machine
        return real(report, ts, via)

    book.apply_exec = apply_exec  # type: ignore[method-assign]
    intake = ExecIntake(host, host.log)
    reply = _Reply()
    intake.on_batch(_batch(_fill(c1, "F1"), _fill(c2, "F2"), _fill(c3, "F3")), reply, 7)  # type: ignore[arg-type]
    for fn in host.waiting:
        fn()
    host.waiting.clear()
    assert reply.sent == [ExecAck(venue=V, exec_ids=["F2", "F3"])]
    assert failed == ["exec_report"]
    assert book.get("o1").cum_qty == 0 and book.get("o2").cum_qty == 0  # type: ignore[union-attr]
    assert book.get("o3").cum_qty == 4  # type: ignore[union-attr]
    # the connector resends F1 (now fine) and F2 (quarantined): both acked, F2 not applied
    flaky["on"] = False
    reply2 = _Reply()
    intake.on_batch(_batch(_fill(c1, "F1"), _fill(c2, "F2")), reply2, 7)  # type: ignore[arg-type]
    for fn in host.waiting:
        fn()
    assert reply2.sent == [ExecAck(venue=V, exec_ids=["F1", "F2"])]
    assert book.get("o1").cum_qty == 4 and book.get("o2").cum_qty == 0  # type: ignore[union-attr]
