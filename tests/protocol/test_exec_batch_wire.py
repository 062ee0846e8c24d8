"""`ExecReports` on the wire: a connector's executions of one turn in one message. Each item is
the body a lone `ExecReport` would carry and is decoded exactly as that body would be
(`codec.decode_item`: the same value, the same refusals, on the fast and the full path); a
malformed envelope (no items, too many, an item that is not a map) is refused whole by the
codec; the batch is refused from a connector reporting for another venue."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest

from actors.connector.exec_batch import exec_messages
from actors.runtime.senders import refusal
from protocol import fastpath
from protocol.codec import Sender, decode, decode_item
from protocol.exceptions import ProtocolError
from protocol.messages import ExecReport, ExecReports, Side
from protocol.venue_messages import MAX_EXEC_BATCH
from protocol.wire_out import dump

V = "simA"


def _report(i: int) -> ExecReport:
    return ExecReport(
        venue=V, exec_id=f"E{i}", kind="fill", cl_ord_id=f"c{i}", symbol="AAPL", side=Side.BUY,
        last_qty="1.5", last_px="100.25", cum_qty="1.5", exec_seq=i,
    )  # fmt: skip


def _frame(msg: Any) -> list[bytes]:
    return Sender(f"connector.{V}", 1).encode(msg)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
def test_an_item_decodes_to_what_the_lone_message_decodes_to(fast: bool) -> None:
    report = _report(7)
    lone = decode(_frame(report), fast=fast).body
    batch = decode(_frame(next(exec_messages(V, [report, _report(8)]))[0]), fast=fast).body
    assert isinstance(batch, ExecReports)
    item = decode_item("exec_report", batch.reports[0], fast=fast)
    assert item == lone == report
    assert type(item) is type(lone) and item.model_fields_set == lone.model_fields_set


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "full"])
@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"last_qty": "1e999999"}, "last_qty"),  # out of the decimal bounds
        ({"kind": "bogus"}, "kind"),
        ({"exec_id": 5}, "exec_id"),
        ({"extra": 1}, "extra"),
        ({"type": "exec_report"}, "type"),
    ],
)
def test_an_item_is_refused_as_the_lone_message_is(
    fast: bool, change: dict[str, Any], needle: str
) -> None:
    body = {**dump(_report(1)), **change}
    with pytest.raises(ProtocolError, match=needle):
        decode_item("exec_report", body, fast=fast)


def test_an_item_that_is_not_a_map_is_refused() -> None:
    with pytest.raises(ProtocolError, match="map"):
        decode_item("exec_report", ["E1"])


@pytest.mark.parametrize(
    "reports",
    [[], [{"k": 1}] * (MAX_EXEC_BATCH + 1), ["not a map", {}], "nothing"],
    ids=["empty", "too_many", "not_maps", "not_a_list"],
)
def test_a_malformed_envelope_is_refused_whole(reports: Any) -> None:
    obj = msgpack.unpackb(_frame(next(exec_messages(V, [_report(1), _report(2)]))[0])[0])
    obj["body"]["reports"] = reports
    for fast in (True, False):
        with pytest.raises(ProtocolError, match="exec_reports"):
            decode([msgpack.packb(obj)], fast=fast)


def test_one_message_carries_a_turns_executions_in_order_a_lone_one_as_today() -> None:
    reports = [_report(i) for i in range(5)]
    [(msg, carried)] = list(exec_messages(V, reports))
    assert isinstance(msg, ExecReports) and carried == reports
    assert [decode_item("exec_report", b) for b in msg.reports] == reports
    [(lone, _)] = list(exec_messages(V, reports[:1]))
    assert lone is reports[0]


def test_more_than_the_bound_go_as_several_batches_in_order() -> None:
    reports = [_report(i) for i in range(2 * MAX_EXEC_BATCH + 1)]
    out = list(exec_messages(V, reports))
    assert [len(c) for _, c in out] == [MAX_EXEC_BATCH, MAX_EXEC_BATCH, 1]
    assert [r for _, c in out for r in c] == reports
    assert isinstance(out[-1][0], ExecReport)


def test_a_batch_for_another_venue_is_refused_from_its_connector() -> None:
    msg = next(exec_messages(V, [_report(1), _report(2)]))[0]
    assert refusal(b"connector.simA:1", msg) is None
    assert "reports for venue" in (refusal(b"connector.simB:1", msg) or "")
    assert "not taken" in (refusal(b"risk:1", msg) or "")


def test_a_full_batch_of_executions_with_every_field_takes_the_fast_path() -> None:
    """The bound keeps the largest batch inside the fast path's plain-map bound."""
    full = _report(1).model_copy(
        update={"orig_cl_ord_id": "o1", "venue_order_id": "v1", "order_qty": "10",
                "price": "100", "leaves_qty": "8.5", "ord_status": "PARTIALLY_FILLED",
                "text": "t", "reject_reason": "r", "venue_ts_ns": 5}
    )  # fmt: skip
    msg = next(exec_messages(V, [full] * MAX_EXEC_BATCH))[0]
    assert isinstance(msg, ExecReports) and len(msg.reports) == MAX_EXEC_BATCH
    assert fastpath.decode_fast(_frame(msg)[0]) is not None
