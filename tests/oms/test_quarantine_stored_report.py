"""A quarantined report is matched to its resend by content without parsing the stored
report with the current ExecReport model (review rv_recon2b, finding 2): a record an earlier
build journalled whose report no longer validates (or is not JSON at all) is "not the same"
and never raises out of the quarantine guard (answered INTERNAL, resent forever: the venue
blocked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.oms.exec_quarantine import quarantine_record
from tests.oms.test_exec_quarantine import _fill, _Host, _live


def _older(report_json: str) -> str:
    old = json.loads(report_json)
    old["ord_status"] = "2"  # as an older build wrote it (FIX OrdStatus code, outbox format 2)
    return json.dumps(old)


@pytest.mark.parametrize("stored", [_older, lambda _: "{not json", lambda _: "[1, 2]"])
def test_a_stored_report_that_no_longer_validates_does_not_raise_out_of_apply(
    tmp_path: Path, stored: object
) -> None:
    host = _Host(tmp_path)
    cl = _live(host.book, "o1")
    report = _fill(cl, "F1", "4")
    record = quarantine_record(report, RuntimeError("bug"), 1)
    record["report"] = stored(record["report"])  # type: ignore[operator]
    host.book.apply_record(record)  # replayed from the journal / a snapshot
    assert not host.book.quarantined.holds(report)
    out = host.exec_applier.apply(report, 10)  # its resend: not the same, applied
    assert out is not None and out.applied
    o1 = host.book.get("o1")
    assert o1 is not None and o1.cum_qty == 4


def test_the_same_report_with_another_exec_seq_is_still_held(tmp_path: Path) -> None:
    host = _Host(tmp_path)
    cl = _live(host.book, "o1")
    report = _fill(cl, "F1", "4")
    host.book.apply_record(quarantine_record(report, RuntimeError("bug"), 1))
    assert host.book.quarantined.holds(report.model_copy(update={"exec_seq": 99}))
    assert not host.book.quarantined.holds(_fill(cl, "F1", "5"))
