"""The FIX read path's shortcuts answer exactly what the long way answers: SendingTime
parsed with its whole seconds cached, reports built without validating again
(`actors.connector.construct`), numbers read through a cache."""

from __future__ import annotations

import abc
import gc
import re
import tracemalloc
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, field_validator

from actors.connector import outbox
from actors.connector.construct import trusted
from actors.connector.fix import codec as fc
from actors.connector.fix import mapping as fm
from actors.connector.fix.inbound import Inbound, read_frame
from actors.connector.outbox import report_json
from actors.runtime.frames import encode_frame
from protocol.messages import ExecReport, OrderStatus, Side, VenueOrder

_TS = re.compile(r"(\d{4})(\d\d)(\d\d)-(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?")


def _reference_sending_time(value: str) -> float | None:
    """parse_sending_time as it was before its whole seconds were cached."""
    match = _TS.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, sec = (int(g) for g in match.groups()[:6])
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and sec <= 60):
        return None
    frac = match.group(7)
    days = fc._days_from_civil(year, month, day)
    return days * 86400 + hour * 3600 + minute * 60 + sec + (float("0." + frac) if frac else 0.0)


_DIGITS = st.sampled_from("0123456789")
_ODD = st.sampled_from(["", ".", "x", "\u0663", "\u00b2", "-", ":", " ", "1234567890", "\x01"])


@st.composite
def _timestamps(draw: st.DrawFn) -> str:
    """Mostly well-formed UTCTimestamps, some with one character changed, cut or added."""
    parts = [draw(st.text(_DIGITS, min_size=n, max_size=n)) for n in (4, 2, 2, 2, 2, 2)]
    text = "{}{}{}-{}:{}:{}".format(*parts)
    frac_len = draw(st.integers(0, 12))
    if frac_len:
        text += "." + draw(st.text(_DIGITS, min_size=frac_len, max_size=frac_len))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 2))
        text = text[:at] + draw(_ODD) + text[at + cut :]
    return text


@given(_timestamps())
def test_sending_time_parses_as_the_uncached_parser(text: str) -> None:
    """Same value (or None) for any input, well-formed or not, whatever the cache holds."""
    expected = _reference_sending_time(text)
    got = fc.parse_sending_time(text)
    assert got == expected
    assert type(got) is type(expected)
    assert fc.parse_sending_time(text) == expected  # answered from the cache: the same


def test_sending_time_reads_the_fraction_and_refuses_a_long_or_empty_one() -> None:
    assert fc.parse_sending_time("20231114-22:13:20.125") == 1_700_000_000.125
    assert fc.parse_sending_time("20231114-22:13:20.1251") == 1_700_000_000.1251
    assert fc.parse_sending_time("20261204-21:50:01.1234567890") is None
    assert fc.parse_sending_time("20261204-21:50:01.") is None
    assert fc.parse_sending_time("20231114-22:13:20") == 1_700_000_000.0


def test_trusted_build_equals_the_validated_model() -> None:
    """Same values, same fields set, same dump and JSON, frozen like it."""
    values: dict[str, Any] = {
        "venue": "simA", "exec_id": "E1", "kind": "fill", "cl_ord_id": "c-1",
        "side": Side.SELL, "order_qty": Decimal("10"), "price": Decimal("99.50"),
        "last_qty": Decimal("4"), "last_px": Decimal("99.5"), "ord_status": OrderStatus.FILLED,
        "venue_ts_ns": 17,
    }  # fmt: skip
    built, validated = trusted(ExecReport)(**values), ExecReport(**values)
    assert built == validated
    assert built.model_fields_set == validated.model_fields_set
    assert built.model_dump() == validated.model_dump()
    assert built.model_dump_json() == validated.model_dump_json()
    assert list(vars(built)) == list(vars(validated))
    with pytest.raises(Exception, match="frozen"):
        built.text = "changed"  # type: ignore[misc]


def test_trusted_build_refuses_unknown_or_missing_fields_and_models_with_validators() -> None:
    build = trusted(VenueOrder)
    with pytest.raises(TypeError, match="missing"):
        build(cl_ord_id="c-1", symbol="AAPL", side=Side.BUY, order_qty=Decimal(1))
    with pytest.raises(TypeError, match="unknown"):
        build(
            cl_ord_id="c-1", symbol="AAPL", side=Side.BUY, order_qty=Decimal(1),
            status=OrderStatus.ACCEPTED, colour="red",
        )  # fmt: skip

    class Checked(BaseModel):
        qty: int

        @field_validator("qty")
        @classmethod
        def _positive(cls, v: int) -> int:
            return v

    with pytest.raises(TypeError, match="validators"):
        trusted(Checked)


_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), min_size=0, max_size=8)
_NUMBER = st.one_of(
    st.sampled_from(["0", "10", "99.50", "-0", "1E+2", "1e999999", "NaN", "Infinity", "x", ""]),
    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(str),
)
_TAGS = {
    150: st.sampled_from(["0", "8", "F", "4", "5", "C", "D", "I", "6", "Z", ""]),
    39: st.sampled_from(["0", "1", "2", "4", "6", "8", "A", "C", "E", "3", " 2 ", "x", ""]),
    54: st.sampled_from(["1", "2", "3", ""]),
    40: st.sampled_from(["1", "2", "P", ""]),
    103: st.sampled_from(["6", "5", "0", "x", ""]),
    60: st.one_of(_timestamps(), _TEXT),
    **{t: _TEXT for t in (11, 17, 37, 41, 55, 58)},
    **{t: _NUMBER for t in (38, 44, 32, 31, 14, 6, 151)},
}


@st.composite
def _reports(draw: st.DrawFn) -> list[tuple[bytes, bytes]]:
    """An 8 / 9 body: any subset of the fields the mapping reads, some repeated."""
    tags = draw(st.lists(st.sampled_from(sorted(_TAGS)), max_size=24))
    pairs = []
    for tag in tags:
        value = draw(_TAGS[tag]).replace("\x01", " ")
        if value:
            pairs.append((b"%d" % tag, value.encode()))  # any bytes a venue may send
    return [(b"8", b"FIX.4.4"), (b"9", b"100"), (b"35", b"8"), *pairs]


def _validated_twin(model: BaseModel) -> BaseModel:
    return type(model)(**{name: getattr(model, name) for name in model.model_fields_set})


@given(_reports())
def test_reports_built_from_any_fields_equal_their_validated_twins(
    pairs: list[tuple[bytes, bytes]],
) -> None:
    """Whatever a venue sends, what the mapping builds without validation is what
    validation accepts and yields (same values, same fields set)."""
    msg = fc.to_message(pairs)
    for model in (
        fm.to_exec_report(msg, "simA"),
        fm.cancel_reject_report(msg, "simA"),
        fm.to_venue_order(msg),
    ):
        if model is None:
            continue
        twin = _validated_twin(model)
        assert model == twin
        assert model.model_fields_set == twin.model_fields_set
        assert model.model_dump_json() == twin.model_dump_json()


def test_cached_numbers_are_the_parsed_ones_and_refusals_stay_refused() -> None:
    msg = fc.to_message(
        [(b"35", b"8"), (b"150", b"F"), (b"17", b"E1"), (b"11", b"c"), (b"32", b"1e999999")]
        + [(b"31", b"99.50"), (b"14", b"NaN"), (b"38", b"10")]
    )
    for _ in range(2):  # the second time from the cache
        report = fm.to_exec_report(msg, "simA")
        assert report is not None
        assert (report.last_qty, report.last_px, report.cum_qty) == (0, Decimal("99.50"), 0)
        assert str(report.last_px) == "99.50"
        assert report.order_qty == Decimal("10")


@given(_reports())
def test_outbox_json_equals_the_general_way(pairs: list[tuple[bytes, bytes]]) -> None:
    """The outbox's `report_json` is `model_dump(mode="json")`, key order included."""
    msg = fc.to_message(pairs)
    report = fm.to_exec_report(msg, "simA") or fm.cancel_reject_report(msg, "simA")
    if report is None:
        return
    numbered = report.model_copy(update={"exec_seq": len(pairs)})
    assert list(report_json(numbered).items()) == list(numbered.model_dump(mode="json").items())
    assert ExecReport.model_validate(report_json(numbered)) == numbered


def test_outbox_json_of_a_fee_is_the_general_way_without_pydantic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every field of ExecReport, the fee's included, is in the outbox's record as
    `model_dump(mode="json")` writes it; and the record is written without pydantic's
    serializer (the fee fields, added after the field list it had, sent every record
    through it: ~3.3 us instead of ~1.6, found by a profile of the connector)."""
    report = ExecReport(
        venue="simA", exec_id="E1", kind="fill", cl_ord_id="c1", side=Side.SELL,
        order_qty=Decimal("2"), price=Decimal("10.5"), last_qty=Decimal("2"),
        last_px=Decimal("10.5"), cum_qty=Decimal("2"), avg_px=Decimal("10.5"),
        ord_status=OrderStatus.FILLED, venue_ts_ns=7, exec_seq=3,
        fee=Decimal("0.0021"), fee_asset="USDT",
    )  # fmt: skip
    expected = report.model_dump(mode="json")

    def refused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("model_dump called")

    monkeypatch.setattr(ExecReport, "model_dump", refused)
    got = report_json(report)
    assert list(got.items()) == list(expected.items())
    assert got["fee"] == "0.0021" and got["fee_asset"] == "USDT"
    assert ExecReport.model_validate(got) == report
    # the record on disk: the bytes of the general way (so files of either build read back)
    general = encode_frame(msgpack.packb(["x", expected], use_bin_type=True), b"TX")
    assert outbox._record(["x", got]) == general


def _inbound(msg_type: str, body: list[tuple[int, bytes]]) -> Any:
    header = [(49, b"V"), (56, b"US"), (34, b"7"), (52, b"20261204-21:00:00")]
    got = read_frame(fc.Frame(fc.encode(msg_type, header, body), None), ours=b"US", theirs=b"V")
    assert isinstance(got, Inbound)
    return got.msg


def test_a_hostile_venues_long_numbers_are_not_kept_by_the_number_cache() -> None:
    """64 execution reports, each with a distinct 256 KiB OrderQty (a frame may be 1 MiB):
    refused as numbers, and not kept as keys of the number cache (review: 16 MiB kept, up
    to 4,096 x 1 MiB)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(64):
        big = b"%d" % i + b"0" * (256 << 10)
        msg = _inbound("8", [(150, b"F"), (17, b"E%d" % i), (11, b"C"), (38, big), (54, b"1")])
        report = fm.to_exec_report(msg, "v")
        assert report is not None and report.order_qty is None
        del msg, report
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert kept < 1 << 20, f"{kept >> 20} MiB kept"


def test_a_position_row_whose_net_leaves_the_bounds_is_refused_not_raised() -> None:
    """LongQty - ShortQty of two numbers within the bounds may not be (19 nines less -19
    nines): the row is refused as UnreadableField (its query fails, see
    test_queries), not a ValidationError out of the session's receive (which disconnected
    the venue as an internal error)."""
    row = [(55, b"S"), (704, b"9" * 19), (705, b"-" + b"9" * 19)]
    with pytest.raises(fm.UnreadableField, match="out of bounds"):
        fm.to_position(_inbound("AP", row), "v")
    ok = fm.to_position(_inbound("AP", [(55, b"S"), (704, b"5"), (705, b"2")]), "v")
    assert ok is not None and ok.qty == 3


def test_trusted_build_makes_no_abc_check_of_its_decimals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing fields found by name: comparing each value with a sentinel made each Decimal
    ask isinstance(sentinel, numbers.Rational), an ABC check (~1 us a Decimal)."""
    checks: list[object] = []
    real = abc.ABCMeta.__instancecheck__

    def counted(cls: abc.ABCMeta, instance: object) -> bool:
        checks.append(cls)
        return real(cls, instance)

    monkeypatch.setattr(abc.ABCMeta, "__instancecheck__", counted)
    trusted(ExecReport)(
        venue="simA", exec_id="E1", kind="fill", cl_ord_id="c-1", side=Side.SELL,
        order_qty=Decimal("10"), price=Decimal("99.50"), last_qty=Decimal("4"),
        last_px=Decimal("99.5"), ord_status=OrderStatus.FILLED, venue_ts_ns=17,
    )  # fmt: skip
    monkeypatch.undo()
    assert checks == []
