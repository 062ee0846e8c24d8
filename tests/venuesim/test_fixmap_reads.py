"""A NewOrderSingle's fields are read once (`_Req.texts`) for the session checks, the
engine call and the echoed tags: the answers and the rejects are the ones the reads tag by
tag (`_Req.s`, `_Req.echo`) gave, for D's with fields missing, empty, repeated or invalid."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path

import simplefix  # type: ignore[import-untyped]
from hypothesis import given
from hypothesis import strategies as st

from actors.connector.fix import codec as fc
from actors.venuesim import SimStore, Venue
from actors.venuesim import fixmap as fm
from protocol.config import SimCfg

_VALUES = {
    11: ["c1", "c2", "", "c\x7f"],
    55: ["AAPL", "MSFT", "", "XXX"],
    54: ["1", "2", "5", "", "Z", "9"],
    38: ["10", "0", "-1", "1.5", "", "abc", "1" * 30],
    40: ["1", "2", "", "3", "Q"],
    44: ["100.00", "99.99", "", "0", "1e3"],
    59: ["0", "1", "3", "4", "", "7"],
    60: ["20231114-22:13:20.000", ""],
}


def _old_session_problem(
    msg_type: str, req: fm._Req, *, strict_h: bool = True
) -> tuple[int, int, str] | None:
    required = (11,) if msg_type == "H" and not strict_h else fm._SESSION_REQUIRED.get(msg_type, ())
    for tag in required:
        if not req.s(tag):
            return tag, fm.SR_REQUIRED_TAG_MISSING, "Required tag missing"
    side = req.s(54)
    if msg_type in fm._SESSION_REQUIRED and (54 in required or side) and side not in fm._FIX_SIDES:
        return 54, fm.SR_VALUE_INCORRECT, "Value is incorrect (out of range) for this tag"
    return None


def _old_new_order(r: fm._Req) -> list[fm.Out]:
    force = fm.REJECT_TEXT if r.reject_order() else ""
    events = r.venue.new_order(
        r.s(11) or "", r.s(55) or "", fm._SIDE.get(r.s(54) or "", fm._INVALID), r.s(38),
        fm._ORD_TYPE.get(r.s(40) or "", fm._INVALID), r.s(44),
        fm._TIF.get(r.s(59) or "0", fm._INVALID), r.now_ns, force_reject=force,
        poss_dup=r.poss_dup,
    )  # fmt: skip
    return [fm.event_out(ev, r.echo()) for ev in events]


def _venue(state_dir: Path) -> Venue:
    cfg = SimCfg(
        reference_prices={"AAPL": Decimal("100"), "MSFT": Decimal("300")},
        tick_size=Decimal("0.01"), quote_qty=Decimal("100"), quote_levels=5,
        volatility_bps=0.0,
    )  # fmt: skip
    return Venue("simA", cfg, SimStore.open(state_dir, book_id="bk"), seed=7)


def _message(rng: random.Random) -> simplefix.FixMessage:
    msg = simplefix.FixMessage()
    msg.append_pair(8, "FIX.4.4")
    msg.append_pair(35, "D")
    tags = [t for t in _VALUES if rng.random() < 0.85]
    rng.shuffle(tags)
    for tag in tags + [t for t in tags if rng.random() < 0.1]:  # some twice
        value = rng.choice(_VALUES[tag])
        if value:  # simplefix refuses an empty value: absent instead, or a space
            msg.append_pair(tag, value)
        elif rng.random() < 0.5:
            msg.append_pair(tag, " ")
    return fc.to_message(list(fc.split_fields(msg.encode())))


def test_a_new_order_reads_as_it_did_tag_by_tag(tmp_path: Path) -> None:
    old_venue, new_venue = _venue(tmp_path / "old"), _venue(tmp_path / "new")
    rng = random.Random(16)
    answered = 0
    for seq in range(1, 3001):
        msg = _message(rng)
        reject = rng.random() < 0.05
        now = 1_700_000_000_000_000_000 + seq * 1000
        fields = fc.first_fields(msg)
        old = fm._Req(old_venue, msg, seq, now, lambda r=reject: r, fields)
        new = fm._Req(new_venue, msg, seq, now, lambda r=reject: r, fields)
        assert new.texts((b"11", b"55", b"54", b"60")) == [old.s(t) for t in (11, 55, 54, 60)]
        for msg_type in ("D", "H", "F", "AF", "q"):
            for strict in (True, False):
                expected = _old_session_problem(msg_type, old, strict_h=strict)
                assert fm._session_problem(msg_type, new, strict_h=strict) == expected
        if fm._session_problem("D", new) is None:
            assert fm._new_order(new) == _old_new_order(old)
            answered += 1
    assert answered > 300  # the engine saw many, accepted and rejected


def _old_clean(fields: list[fm.Field]) -> tuple[fm.Field, ...]:
    out: list[fm.Field] = []
    for tag, value in fields:
        if isinstance(value, str):
            if not value:
                continue
            value = value.replace("\x01", " ")
        out.append((tag, value))
    return tuple(out)


class _Text(str):
    """A str subclass (a str enum's member is one)."""


@given(
    st.lists(
        st.tuples(
            st.integers(1, 999),
            st.text(alphabet="a\x01 =", max_size=4)
            | st.text(alphabet="a\x01", max_size=3).map(_Text)
            | st.integers(-5, 5)
            | st.decimals(allow_nan=False, allow_infinity=False, places=2)
            | st.binary(max_size=2),
        ),
        max_size=12,
    )
)
def test_clean_drops_empty_texts_and_spaces_soh_as_before(fields: list[fm.Field]) -> None:
    new, old = fm._clean(fields), _old_clean(fields)
    assert new == old
    assert [type(v) for _, v in new] == [type(v) for _, v in old]
