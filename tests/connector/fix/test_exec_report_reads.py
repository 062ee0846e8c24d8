"""`to_exec_report` reads an 8's text fields and its numbers in one comprehension each:
the report (values, fields set, refusals) is the one the field-by-field reads built, for
any fields a venue may send (missing, repeated, empty, hostile numbers)."""

from __future__ import annotations

import simplefix  # type: ignore[import-untyped]
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.connector.fix import codec as fc
from actors.connector.fix import mapping as fm
from protocol.messages import ExecReport
from tests.connector.fix.test_fast_reads import _reports


def _old_to_exec_report(msg: simplefix.FixMessage, venue: str) -> ExecReport | None:
    f = fc.first_fields(msg)
    s = fc.text
    kind = fm.EXEC_KINDS.get(s(f, b"150") or "")
    exec_id = s(f, b"17")
    cl_ord_id = s(f, b"11")
    if kind is None or not exec_id or cl_ord_id is None:
        return None
    text = s(f, b"58") or ""
    reject_reason = ""
    if kind == "rejected" and fc.get_int(msg, 103) == fm.ORD_REJ_DUPLICATE:
        reject_reason = "DUPLICATE_ORDER"
        if "duplicate" not in text.lower():
            text = f"duplicate order: {text}" if text else "duplicate order"
    order_id = s(f, b"37") or ""
    return fm._exec_report(
        venue=venue, exec_id=exec_id, kind=kind, cl_ord_id=cl_ord_id,
        orig_cl_ord_id=s(f, b"41") or "",
        venue_order_id="" if order_id == fm.NO_ORDER else order_id,
        symbol=s(f, b"55") or "", side=fm.SIDE_FROM_FIX.get(s(f, b"54") or ""),
        order_qty=fm.number(f, b"38"), price=fm.number(f, b"44"),
        last_qty=fm._number0(f, b"32"), last_px=fm._number0(f, b"31"),
        cum_qty=fm._number0(f, b"14"), avg_px=fm._number0(f, b"6"),
        leaves_qty=fm._number0(f, b"151"), ord_status=fm._ord_status(s(f, b"39")),
        text=text, reject_reason=reject_reason, venue_ts_ns=fm._ts_ns(s(f, b"60")),
    )  # fmt: skip


@st.composite
def _forwarded(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    """Mostly reports that are forwarded (a known ExecType, an ExecID and a ClOrdID first,
    the first occurrence counts), with any other fields behind them."""
    pairs = draw(_reports())
    if draw(st.booleans()) or draw(st.booleans()):
        kind = draw(st.sampled_from(sorted(fm.EXEC_KINDS))).encode()
        head = [(b"150", kind), (b"17", b"E%d" % draw(st.integers(0, 9))), (b"11", b"c")]
        pairs = [*pairs[:3], *head, *pairs[3:]]
    return pairs


@settings(max_examples=400)
@given(_forwarded())
def test_an_exec_report_is_the_one_the_field_by_field_reads_built(
    pairs: list[tuple[bytes, bytes]],
) -> None:
    msg = fc.to_message(pairs)
    new, old = fm.to_exec_report(msg, "simA"), _old_to_exec_report(msg, "simA")
    assert new == old
    if new is not None and old is not None:
        assert new.model_fields_set == old.model_fields_set
        assert new.model_dump_json() == old.model_dump_json()
        assert [type(getattr(new, n)) for n in ExecReport.model_fields] == [
            type(getattr(old, n)) for n in ExecReport.model_fields
        ]


@given(st.sampled_from(["0", "2", " 2 ", "a", "c ", " E", "3", "x", "", "\xe9"]))
def test_an_ord_status_as_sent_or_padded_maps_as_the_field_by_field_read(code: str) -> None:
    """An OrdStatus read as sent, then (missed) stripped and upper-cased: as `_ord_status`."""
    pairs = [(b"8", b"FIX.4.4"), (b"9", b"100"), (b"35", b"8"), (b"150", b"0"), (b"17", b"E1")]
    pairs += [(b"11", b"c"), *([(b"39", code.encode("latin-1"))] if code else [])]
    msg = fc.to_message(pairs)
    new, old = fm.to_exec_report(msg, "simA"), _old_to_exec_report(msg, "simA")
    assert new is not None and old is not None and new.ord_status is old.ord_status
