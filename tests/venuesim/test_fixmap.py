"""FIX message mapping against the real (in-process) matching engine: every inbound
application message type, its answers and their tags."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import simplefix  # type: ignore[import-untyped]

from actors.connector.fix import codec as fc
from actors.venuesim import SimStore, Venue
from actors.venuesim.faults import REJECT_TEXT
from actors.venuesim.fixmap import Out, answer, handle
from actors.venuesim.store import inspect
from protocol.config import SimCfg
from protocol.fix_config import DialectCfg
from tests.venuesim.conformance import assert_conforms

D = Decimal
EXEC_TAGS = (37, 17, 150, 39, 55, 54, 38, 40, 151, 14, 6, 11, 60)
TRANSACT_TIME = "20231114-22:13:20.000"


class _Harness:
    def __init__(self, state_dir: Path) -> None:
        cfg = SimCfg(
            reference_prices={"AAPL": D("100"), "MSFT": D("300")}, tick_size=D("0.01"),
            quote_qty=D("100"), quote_levels=5, volatility_bps=0.0,
        )  # fmt: skip
        self.store = SimStore.open(state_dir, book_id="bk")
        self.venue = Venue("simA", cfg, self.store, seed=7)
        self.seq = 0
        self.now_ns = 1_700_000_000_000_000_000

    def send(self, msg_type: str, *pairs: tuple[int, Any], reject: bool = False) -> list[Out]:
        msg = simplefix.FixMessage()
        for tag, value in pairs:
            msg.append_pair(tag, value)
        self.seq += 1
        self.now_ns += 1000
        outs = handle(self.venue, msg_type, msg, self.seq, self.now_ns, lambda: reject)
        for out in outs:  # every answer must be encodable: no empty value, no SOH
            fc.encode(out.msg_type, [], [(t, fc.fix_value(v)) for t, v in out.pairs()])
        assert_conforms((o.msg_type, f(o)) for o in outs)  # and what FIX 4.4 requires
        return outs

    def order(self, cl: str, side: str = "1", qty: str = "10", price: str | None = None,
              symbol: str = "AAPL", tif: str | None = None, **kw: Any) -> list[Out]:  # fmt: skip
        pairs: list[tuple[int, Any]] = [(11, cl), (55, symbol), (54, side), (38, qty)]
        pairs += [(40, "2" if price else "1"), (60, TRANSACT_TIME)]
        if price:
            pairs.append((44, price))
        if tif:
            pairs.append((59, tif))
        return self.send("D", *pairs, **kw)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[_Harness]:
    harness = _Harness(tmp_path)
    yield harness
    harness.store.close()


def f(out: Out) -> dict[int, str]:
    """The fields of an answer as text (the last value of a repeated tag)."""
    return {t: fc.fix_value(v).decode() for t, v in out.pairs()}


def test_market_order_is_new_then_trades(h: _Harness) -> None:
    """A market buy of 150 against 100 @ 100.01 and 100 @ 100.02: New, then two trades
    with LastQty/LastPx, cum qty and avg px; every report carries the required tags, no
    Price(44), and is marked as an execution report (faults apply)."""
    outs = h.order("M1", qty="150")
    assert [o.msg_type for o in outs] == ["8", "8", "8"]
    new, t1, t2 = (f(o) for o in outs)
    assert (new[150], new[39], new[151], new[14]) == ("0", "0", "150", "0")
    assert (t1[150], t1[32], t1[31], t1[39], t1[14]) == ("F", "100", "100.01", "1", "100")
    assert (t2[150], t2[32], t2[31], t2[39], t2[14], t2[151]) == (
        "F",
        "50",
        "100.02",
        "2",
        "150",
        "0",
    )
    assert D(t2[6]).quantize(D("0.0001")) == D("100.0133")
    for out in outs:
        fields = f(out)
        assert all(tag in fields for tag in EXEC_TAGS), fields
        assert 44 not in fields and fields[11] == "M1" and fields[40] == "1"
        assert out.exec_type == fields[150] and out.exec_id == fields[17]
    assert len({f(o)[17] for o in outs}) == 3


def test_limit_order_rests_with_its_price_and_tif(h: _Harness) -> None:
    """A limit buy below the offer rests: one New with Price(44) and TimeInForce(59)."""
    (new,) = h.order("L1", price="99.50", tif="1")
    assert (f(new)[150], f(new)[44], f(new)[59], f(new)[40]) == ("0", "99.50", "1", "2")


def test_duplicate_cl_ord_id_is_rejected_with_reason_6(h: _Harness) -> None:
    """A second D with a ClOrdID the venue has seen: ExecType 8, OrdStatus 8,
    OrdRejReason(103)=6, a Text saying duplicate, the request's instrument echoed."""
    h.order("L1", price="99.50")
    (rej,) = h.order("L1", price="99.60", qty="7", side="2")
    r = f(rej)
    assert (r[150], r[39], r[103], r[11]) == ("8", "8", "6", "L1")
    assert "duplicate" in r[58].lower()
    assert (r[55], r[54], r[38], r[44]) == ("AAPL", "2", "7", "99.60")


def test_injected_reject_rejects_a_valid_order(h: _Harness) -> None:
    """reject_order() True: the otherwise valid order is rejected (103=99)."""
    (rej,) = h.order("R1", price="99.50", reject=True)
    assert (f(rej)[150], f(rej)[103], f(rej)[58]) == ("8", "99", REJECT_TEXT)


@pytest.mark.parametrize(
    ("pairs", "reason"),
    [
        ([(55, "AAPL"), (54, "5"), (38, "10"), (40, "1")], "99"),  # side not 1/2
        ([(55, "AAPL"), (54, "1"), (38, "abc"), (40, "1")], "13"),  # qty not a number
        ([(55, "AAPL"), (54, "1"), (38, "-5"), (40, "1")], "13"),
        ([(55, "AAPL"), (54, "1"), (38, "10"), (40, "3")], "11"),  # stop orders
        ([(55, "AAPL"), (54, "1"), (38, "10"), (40, "2")], "99"),  # limit without price
        ([(55, "NOPE"), (54, "1"), (38, "10"), (40, "1")], "1"),
        ([(55, "AAPL"), (54, "1"), (38, "10"), (40, "1"), (59, "6")], "11"),  # GTD
    ],
)
def test_invalid_orders_get_a_rejection_report(
    h: _Harness, pairs: list[tuple[int, str]], reason: str
) -> None:
    """Invalid field values are answered with an ExecType 8 report naming the reason, the
    order's Side(54) and Symbol(55) echoed (both required in an 8)."""
    (rej,) = h.send("D", (11, "X1"), *pairs, (60, TRANSACT_TIME))
    r = f(rej)
    assert (rej.msg_type, r[150], r[39], r[11]) == ("8", "8", "8", "X1")
    assert r[103] == reason, r
    assert (r[54], r[55]) == (dict(pairs)[54], dict(pairs)[55])


def test_cancel_and_cancel_reject(h: _Harness) -> None:
    """F on a resting order: ExecType 4 with ClOrdID = the cancel's id and OrigClOrdID =
    the order's; F on an unknown or already cancelled one: 35=9 with CxlRejResponseTo=1
    and CxlRejReason 1 (unknown) / 0 (too late), not a fault-able report."""
    h.order("L1", price="99.50")
    (cxl,) = h.send("F", (11, "X1"), (41, "L1"), (55, "AAPL"), (54, "1"))
    c = f(cxl)
    assert (c[150], c[39], c[11], c[41], c[151]) == ("4", "4", "X1", "L1", "0")
    (unknown,) = h.send("F", (11, "X2"), (41, "NOPE"), (55, "AAPL"), (54, "1"))
    (late,) = h.send("F", (11, "X3"), (41, "L1"), (55, "AAPL"), (54, "1"))
    assert unknown.msg_type == late.msg_type == "9" and not unknown.exec_type
    assert (f(unknown)[434], f(unknown)[102], f(unknown)[37], f(unknown)[41]) == (
        "1",
        "1",
        "NONE",
        "NOPE",
    )
    assert (f(late)[434], f(late)[102], f(late)[39]) == ("1", "0", "4")


def test_replace_and_replace_reject(h: _Harness) -> None:
    """G: ExecType 5 with the new qty/price, 11 = new id, 41 = old; a G on a filled
    order: 35=9 with CxlRejResponseTo=2."""
    h.order("L1", price="99.50")
    (rep,) = h.send("G", (11, "L2"), (41, "L1"), (55, "AAPL"), (54, "1"), (38, "20"),
                    (40, "2"), (44, "99.60"))  # fmt: skip
    r = f(rep)
    assert (r[150], r[39], r[11], r[41], r[38], r[44], r[151]) == (
        "5",
        "0",
        "L2",
        "L1",
        "20",
        "99.60",
        "20",
    )
    h.order("M1", qty="5")
    (rej,) = h.send("G", (11, "M2"), (41, "M1"), (38, "6"), (40, "1"))
    assert (rej.msg_type, f(rej)[434], f(rej)[102]) == ("9", "2", "0")


def test_replace_that_becomes_marketable_trades(h: _Harness) -> None:
    """A G that moves a resting buy through the offer: Replaced, then a trade."""
    h.order("L1", price="99.50")
    outs = h.send("G", (11, "L2"), (41, "L1"), (38, "10"), (40, "2"), (44, "100.01"))
    assert [f(o)[150] for o in outs] == ["5", "F"]
    assert all(o.exec_type for o in outs)


def test_status_known_and_unknown(h: _Harness) -> None:
    """H on a known order: ExecType I with its state, ExecID 0, OrdStatusReqID echoed,
    an answer (no faults); on an unknown ClOrdID: ExecType I, OrdStatus 8, OrdRejReason
    5, Text UNKNOWN_ORDER, the ClOrdID echoed."""
    h.order("L1", price="99.50")
    (known,) = h.send("H", (11, "L1"), (54, "1"), (55, "AAPL"), (790, "Q1"))
    k = f(known)
    assert (k[150], k[39], k[17], k[790], k[44], k[151]) == ("I", "0", "0", "Q1", "99.50", "10")
    assert not known.exec_type
    (unknown,) = h.send("H", (11, "NOPE"), (54, "2"), (55, "MSFT"))
    u = f(unknown)
    assert (u[150], u[39], u[103], u[58], u[11], u[37]) == (
        "I",
        "8",
        "5",
        "UNKNOWN_ORDER",
        "NOPE",
        "NONE",
    )
    assert (u[54], u[55]) == ("2", "MSFT")  # the H's: an 8 requires Side and Symbol
    assert not unknown.exec_type


def test_mass_status_with_and_without_open_orders(h: _Harness) -> None:
    """AF 585=7 with none open: one ExecType I report, ClOrdID NONE, 911=0, 912=Y, 584
    echoed, Symbol [N/A] (the AF's if it named one) and Side 1. With two open: one report
    each, 584 on both, 911=2, 912=Y on the last only. 585=1 limits it to one symbol."""
    (none,) = h.send("AF", (584, "MS1"), (585, "7"))
    n = f(none)
    assert (n[150], n[11], n[911], n[912], n[584]) == ("I", "NONE", "0", "Y", "MS1")
    assert (n[55], n[54]) == ("[N/A]", "1")  # placeholders: an 8 requires Symbol and Side
    (none_msft,) = h.send("AF", (584, "MS0"), (585, "1"), (55, "MSFT"))
    assert (f(none_msft)[55], f(none_msft)[911]) == ("MSFT", "0")
    h.order("L1", price="99.50")
    h.order("L2", price="299.00", symbol="MSFT", side="1")
    h.order("M1", qty="5")  # filled: not open
    outs = h.send("AF", (584, "MS2"), (585, "7"))
    assert [f(o)[11] for o in outs] == ["L1", "L2"]
    assert [f(o).get(912) for o in outs] == [None, "Y"]
    assert all(f(o)[584] == "MS2" and f(o)[911] == "2" and f(o)[150] == "I" for o in outs)
    (msft,) = h.send("AF", (584, "MS3"), (585, "1"), (55, "MSFT"))
    assert (f(msft)[11], f(msft)[911], f(msft)[912]) == ("L2", "1", "Y")
    (bad,) = h.send("AF", (584, "MS4"), (585, "8"))
    assert (bad.msg_type, f(bad)[372]) == ("j", "AF")


def test_positions_none_then_long_and_short(h: _Harness) -> None:
    """AN with nothing traded: one AP with PosReqResult 2 and TotalNumPosReports 0. After
    a buy of AAPL and a sell of MSFT: one AP per symbol, 728=0, 727=2, LongQty/ShortQty,
    SettlPrice = the average price, the required AP tags, and no LastRptRequested(912),
    which a PositionReport does not have (727 says how many come)."""
    (none,) = h.send("AN", (710, "P1"), (724, "0"), (1, "ACC"), (581, "1"))
    n = f(none)
    assert (none.msg_type, n[710], n[728], n[727]) == ("AP", "P1", "2", "0")
    h.order("B1", qty="150")
    h.order("S1", qty="30", side="2", symbol="MSFT")
    outs = h.send("AN", (710, "P2"), (724, "0"), (1, "ACC"), (581, "1"))
    aapl, msft = (f(o) for o in outs)
    for p in (aapl, msft):
        assert all(t in p for t in (721, 728, 715, 1, 581, 730, 731, 734, 710, 727))
        assert (p[710], p[728], p[727], p[1], p[581], p[731], p[734]) == (
            "P2",
            "0",
            "2",
            "ACC",
            "1",
            "1",
            "0",
        )
    assert (aapl[55], aapl[704], aapl[705]) == ("AAPL", "150", "0")
    assert D(aapl[730]).quantize(D("0.0001")) == D("100.0133")
    assert (msft[55], msft[704], msft[705], msft[730]) == ("MSFT", "0", "30", "299.99")
    assert 912 not in aapl and 912 not in msft and aapl[721] != msft[721]


def test_mass_cancel_reports_then_cancels(h: _Harness) -> None:
    """q 530=7: an r first (ClOrdID and 530 echoed, 531=7, 533 = count), then one
    ExecType 4 per open order; q 530=1 with a Symbol cancels only that symbol's; an
    unsupported type gets r with 531=0."""
    h.order("L1", price="99.50")
    h.order("L2", price="299.00", symbol="MSFT")
    h.order("L3", price="99.40")
    outs = h.send("q", (11, "MC1"), (530, "1"), (55, "MSFT"))
    assert [o.msg_type for o in outs] == ["r", "8"]
    assert (f(outs[0])[531], f(outs[0])[533], f(outs[1])[11]) == ("1", "1", "L2")
    outs = h.send("q", (11, "MC2"), (530, "7"))
    r = f(outs[0])
    assert (outs[0].msg_type, r[11], r[530], r[531], r[533]) == ("r", "MC2", "7", "7", "2")
    assert [(f(o)[150], f(o)[11]) for o in outs[1:]] == [("4", "L1"), ("4", "L3")]
    assert all(o.exec_type == "4" for o in outs[1:]) and not outs[0].exec_type
    (bad,) = h.send("q", (11, "MC3"), (530, "3"))
    assert (bad.msg_type, f(bad)[531]) == ("r", "0")


@pytest.mark.parametrize(
    ("msg_type", "pairs", "reason"),
    [
        ("F", [(11, "X")], "5"),  # no OrigClOrdID
        ("G", [(41, "X")], "5"),
        ("AF", [(585, "7")], "5"),
        ("AN", [(724, "0")], "5"),
        ("q", [(11, "X")], "5"),
        ("8", [(11, "X")], "3"),  # a venue's message sent to the venue
        ("AD", [(568, "T")], "3"),
    ],
)
def test_missing_tags_and_unsupported_types_get_business_reject(
    h: _Harness, msg_type: str, pairs: list[tuple[int, str]], reason: str
) -> None:
    """A required tag missing, or a message type the venue does not serve:
    BusinessMessageReject(j) with RefSeqNum, RefMsgType and BusinessRejectReason."""
    (rej,) = h.send(msg_type, *pairs)
    r = f(rej)
    assert (rej.msg_type, r[45], r[372], r[380]) == ("j", str(h.seq), msg_type, reason)
    assert r[58]


_D = [(11, "N1"), (55, "AAPL"), (54, "1"), (38, "10"), (40, "1"), (60, TRANSACT_TIME)]
_H = [(11, "N1"), (790, "Q1"), (55, "AAPL"), (54, "1")]


@pytest.mark.parametrize(
    ("msg_type", "pairs", "drop", "ref_tag"),
    [
        ("D", _D, (11,), 11),
        ("D", _D, (40,), 40),
        ("D", _D, (54,), 54),
        ("D", _D, (55,), 55),
        ("D", _D, (60,), 60),
        ("H", _H, (11,), 11),
        ("H", _H, (55,), 55),
        ("H", _H, (54,), 54),
        ("H", _H, (54, 55), 54),  # what an H by ClOrdID alone got from a real engine
    ],
)
def test_d_or_h_without_a_required_tag_gets_a_session_reject(
    h: _Harness, msg_type: str, pairs: list[tuple[int, str]], drop: tuple[int, ...], ref_tag: int
) -> None:
    """A D or H without a tag FIX 4.4 requires of it is refused as a FIX engine refuses it:
    a session Reject (35=3) with RefSeqNum, RefTagID = the (lowest) missing tag, RefMsgType
    and SessionRejectReason 1, and nothing else; a D so refused creates no order."""
    (rej,) = h.send(msg_type, *[(t, v) for t, v in pairs if t not in drop])
    r = f(rej)
    assert (rej.msg_type, r[45], r[371], r[372], r[373]) == (
        "3",
        str(h.seq),
        str(ref_tag),
        msg_type,
        "1",
    )
    assert r[58] == "Required tag missing" and not rej.exec_type
    assert h.venue.status("N1") is None


def test_a_side_fix_does_not_define_gets_a_session_reject(h: _Harness) -> None:
    """Side(54)=Z is no FIX 4.4 value: Reject 373=5 (value incorrect), RefTagID 54, on a
    D and on an H; a Side FIX defines that the venue does not trade (5, sell short) is
    the venue's business: an ExecutionReport rejecting the order, the Side echoed."""
    for msg_type, pairs in (("D", _D), ("H", _H)):
        (rej,) = h.send(msg_type, *[(t, "Z" if t == 54 else v) for t, v in pairs])
        assert (rej.msg_type, f(rej)[371], f(rej)[372], f(rej)[373]) == ("3", "54", msg_type, "5")
    (er,) = h.send("D", *[(t, "5" if t == 54 else v) for t, v in _D])
    assert (er.msg_type, f(er)[150], f(er)[54]) == ("8", "8", "5")


_SCENARIOS: list[tuple[str, list[tuple[str, list[tuple[int, str]]]]]] = [
    ("fills", [("D", _D)]),
    ("rest, cancel, unknown cancel", [
        ("D", [(11, "L1"), (55, "AAPL"), (54, "2"), (38, "5"), (40, "2"), (44, "101"),
               (60, TRANSACT_TIME)]),
        ("F", [(11, "L1.x"), (41, "L1"), (55, "AAPL"), (54, "2"), (60, TRANSACT_TIME)]),
        ("F", [(11, "L1.y"), (41, "NOPE"), (55, "AAPL"), (54, "2"), (60, TRANSACT_TIME)]),
    ]),
    ("rest, replace", [
        ("D", [(11, "L2"), (55, "MSFT"), (54, "1"), (38, "5"), (40, "2"), (44, "299"),
               (60, TRANSACT_TIME)]),
        ("G", [(11, "L2.r"), (41, "L2"), (55, "MSFT"), (54, "1"), (38, "7"), (40, "2"),
               (44, "298"), (60, TRANSACT_TIME)]),
    ]),
    ("duplicate, bad qty, unknown symbol, unsupported side", [
        ("D", _D), ("D", _D),
        ("D", [(11, "B1"), (55, "AAPL"), (54, "1"), (38, "-1"), (40, "1"), (60, TRANSACT_TIME)]),
        ("D", [(11, "B2"), (55, "NOPE"), (54, "1"), (38, "1"), (40, "1"), (60, TRANSACT_TIME)]),
        ("D", [(11, "B3"), (55, "AAPL"), (54, "8"), (38, "1"), (40, "1"), (60, TRANSACT_TIME)]),
    ]),
    ("status known and unknown", [("D", _D), ("H", _H), ("H", [(11, "NOPE"), *_H[1:]])]),
    ("empty mass status, then mass status, mass cancel", [
        ("AF", [(584, "M1"), (585, "7")]),
        ("D", [(11, "L3"), (55, "AAPL"), (54, "1"), (38, "5"), (40, "2"), (44, "99"),
               (60, TRANSACT_TIME)]),
        ("AF", [(584, "M2"), (585, "7")]),
        ("q", [(11, "MC"), (530, "7"), (60, TRANSACT_TIME)]),
    ]),
    ("positions none and some", [
        ("AN", [(710, "P1"), (724, "0"), (1, "A"), (581, "1")]),
        ("D", _D),
        ("AN", [(710, "P2"), (724, "0"), (1, "A"), (581, "1")]),
        ("AN", [(710, "P3"), (724, "1"), (1, "A"), (581, "1")]),
    ]),
    ("refused requests", [("D", _D[1:]), ("H", _H[:2]), ("F", [(11, "X")]), ("AD", [])]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "sends"), _SCENARIOS, ids=[n for n, _ in _SCENARIOS])
def test_every_message_the_venue_sends_has_what_fix_44_requires(
    h: _Harness, name: str, sends: list[tuple[str, list[tuple[int, str]]]]
) -> None:
    """Each scenario's answers, every one checked against the FIX 4.4 table of required
    (and not defined) tags per MsgType in tests/venuesim/conformance.py: every 8 has
    37 17 150 39 54 151 14 6 and Symbol, every AP its required tags and no 912."""
    outs = [o for msg_type, pairs in sends for o in h.send(msg_type, *pairs)]
    assert outs, name
    assert_conforms((o.msg_type, f(o)) for o in outs)  # h.send checks each too


def test_a_venue_without_positions_refuses_an_with_business_reject_380_3(
    tmp_path: Path,
) -> None:
    """`[venues.sim.dialect] serves_positions = false`: a RequestForPositions (AN) gets
    BusinessMessageReject 380=3 (Unsupported Message Type), as a venue without AN answers."""
    cfg = SimCfg(reference_prices={"AAPL": D("100")}, dialect=DialectCfg(serves_positions=False))
    store = SimStore.open(tmp_path, book_id="bk")
    try:
        venue = Venue("simA", cfg, store, seed=7)
        msg = simplefix.FixMessage()
        for tag, value in [(710, "P1"), (724, "0"), (1, "SIM"), (581, "1"), (715, "20231114")]:
            msg.append_pair(tag, value)
        (rej,) = handle(venue, "AN", msg, 4, 1_700_000_000_000_000_000)
        r = f(rej)
        assert (rej.msg_type, r[45], r[372], r[380]) == ("j", "4", "AN", "3")
    finally:
        store.close()


def _dialect_venue(tmp_path: Path, **dialect: Any) -> tuple[Venue, SimStore]:
    cfg = SimCfg(reference_prices={"AAPL": D("100")}, dialect=DialectCfg(**dialect))
    store = SimStore.open(tmp_path, book_id="bk")
    return Venue("simA", cfg, store, seed=7), store


def _msg(*pairs: tuple[int, Any]) -> simplefix.FixMessage:
    msg = simplefix.FixMessage()
    for tag, value in pairs:
        msg.append_pair(tag, value)
    return msg


def test_a_venue_without_mass_status_refuses_af_with_business_reject_380_3(
    tmp_path: Path,
) -> None:
    """`serves_mass_status = false`: an OrderMassStatusRequest (AF) gets
    BusinessMessageReject 380=3 (Unsupported Message Type), like AN without positions."""
    venue, store = _dialect_venue(tmp_path, serves_mass_status=False)
    try:
        (rej,) = handle(venue, "AF", _msg((584, "M1"), (585, "7")), 5, 1_700_000_000_000_000_000)
        r = f(rej)
        assert (rej.msg_type, r[45], r[372], r[380]) == ("j", "5", "AF", "3")
    finally:
        store.close()


def test_a_silent_venue_answers_an_af_matching_no_orders_with_nothing(tmp_path: Path) -> None:
    """`empty_mass_status = "silent"`: an AF that matches no order gets no message at all
    (FIX 4.4 defines no answer for it); one that matches orders is answered as usual."""
    venue, store = _dialect_venue(tmp_path, empty_mass_status="silent")
    try:
        now = 1_700_000_000_000_000_000
        assert handle(venue, "AF", _msg((584, "M1"), (585, "7")), 5, now) == []
        order = _msg((11, "C1"), (55, "AAPL"), (54, "1"), (38, "5"), (40, "2"), (44, "90"),
                     (60, TRANSACT_TIME))  # fmt: skip
        handle(venue, "D", order, 6, now + 1)
        (report,) = handle(venue, "AF", _msg((584, "M2"), (585, "7")), 7, now + 2)
        r = f(report)
        assert (report.msg_type, r[11], r[150], r[912]) == ("8", "C1", "I", "Y")
    finally:
        store.close()


def test_status_request_instrument_switch_strict_rejects_h_without_55_54(
    tmp_path: Path,
) -> None:
    """`status_request_instrument = true` (FIX 4.4, the default): an H without Symbol and
    Side gets a session Reject 373=1 naming the lowest missing tag (54); false: the venue
    serves it (an unknown order's answer carries placeholder Symbol/Side, as an 8 must)."""
    now = 1_700_000_000_000_000_000
    bare_h = _msg((11, "C9"), (790, "S1"))
    strict, store = _dialect_venue(tmp_path / "strict")
    try:
        (rej,) = handle(strict, "H", bare_h, 3, now)
        r = f(rej)
        assert (rej.msg_type, r[371], r[372], r[373]) == ("3", "54", "H", "1")
    finally:
        store.close()
    lenient, store = _dialect_venue(tmp_path / "lenient", status_request_instrument=False)
    try:
        (ans,) = handle(lenient, "H", bare_h, 3, now)
        r = f(ans)
        assert (ans.msg_type, r[150], r[790], r[58], r[55], r[54]) == (
            "8", "I", "S1", "UNKNOWN_ORDER", "[N/A]", "1",
        )  # fmt: skip
        assert_conforms([(ans.msg_type, r)])
        (bad,) = handle(lenient, "H", _msg((11, "C9"), (54, "Z")), 4, now)
        assert (bad.msg_type, f(bad)[373]) == ("3", "5")  # a Side it carries is checked
    finally:
        store.close()


def test_a_duplicate_in_a_possdup_copy_is_marked_as_one(h: _Harness, tmp_path: Path) -> None:
    """The venue asked for its messages again (it restarted, its inbound sequence lost) and
    got a D it had: refused as a duplicate as any, and its reject says PossDup, so the chaos
    checker does not take the copy for a second send (a resubmit of an order in flight);
    a fresh D with a used ClOrdID is not marked."""
    h.order("L1", price="99.50")
    msg = simplefix.FixMessage()
    for tag, value in [(11, "L1"), (55, "AAPL"), (54, "1"), (38, "10"), (40, "2"),
                       (60, TRANSACT_TIME), (44, "99.50")]:  # fmt: skip
        msg.append_pair(tag, value)
    (copy,) = answer(h.venue, "D", msg, 99, h.now_ns + 1, poss_dup=True)  # type: ignore[misc]
    assert (f(copy)[150], f(copy)[103]) == ("8", "6")
    h.order("L1", price="99.60")  # a new send of a used ClOrdID
    h.store.sync()
    rejects = inspect(tmp_path)["rejects"]
    assert [(r["cl_ord_id"], r["poss_dup"]) for r in rejects] == [("L1", True), ("L1", False)]
