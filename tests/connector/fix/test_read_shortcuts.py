"""The inbound order path's inline reads answer what the helpers they stand for answer:
`read_frame`'s MsgSeqNum is `codec.get_int(msg, 34)` (a repeated 34, odd digits, none at
all), and the reply router's ExecType is `mapping.exec_type(msg)`."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actors.connector.fix import codec as fc
from actors.connector.fix import mapping as fm
from actors.connector.fix.events import AppMessage
from actors.connector.fix.inbound import BadHeader, Inbound, read_frame
from actors.connector.fix.replies import ReplyRouter
from actors.runtime.metrics import VENUE_ANSWERS_UNREADABLE
from actors.runtime.ratelog import LogBudget

_seq_values = st.one_of(
    st.integers(0, 2**31 + 5).map(lambda n: b"%d" % n),
    st.sampled_from([b"0001", b"12345678901", b"1a", b"\xd9\xa1", b"+5", b" 7", b"99999999999"]),
)


def _frame(extra: list[tuple[bytes, bytes]]) -> fc.Frame:
    body = b"".join(b"%s=%s\x01" % pair for pair in [(b"35", b"8"), (b"49", b"V"), *extra])
    head = b"8=FIX.4.4\x019=%d\x01" % len(body)
    raw = head + body
    return fc.Frame(raw + b"10=%03d\x01" % (sum(raw) % 256))


@given(
    seqs=st.lists(_seq_values, max_size=3),
    others=st.lists(st.sampled_from([(b"56", b"US"), (b"55", b"X"), (b"55", b"Y")]), max_size=3),
)
def test_read_frame_seq_is_get_int_of_34(
    seqs: list[bytes], others: list[tuple[bytes, bytes]]
) -> None:
    extra = [(b"56", b"US"), *[(b"34", s) for s in seqs], *others]
    item = read_frame(_frame(extra), ours=b"US", theirs=b"V")
    assert isinstance(item, (Inbound, BadHeader))
    pairs = fc.split_fields(_frame(extra).raw)
    expected = fc.get_int(fc.to_message(pairs), 34)
    if isinstance(item, Inbound):
        assert item.seq == expected
    else:  # refused for its number (the comp ids are right): none, 0 or past MAX_SEQ
        assert item.text == "MsgSeqNum missing or invalid"
        assert not expected or expected > 2**31 - 1


@given(st.lists(st.sampled_from([b"0", b"I", b"\xe9", b"F", b"6"]), max_size=2))
def test_reply_router_exec_type_is_mapping_exec_type(values: list[bytes]) -> None:
    pairs = [(b"35", b"8"), *[(b"150", v) for v in values], (b"11", b"c")]
    msg = fc.to_message(pairs)
    seen: list[str] = []

    class _Queries:
        def feed_status(self, _msg: object) -> bool:
            seen.append(fm.EXEC_TYPE_STATUS)
            return True

    class _Log:
        def debug(self, _event: str, **kw: object) -> None:
            seen.append(str(kw["exec_type"]))

        warning = debug

    router = ReplyRouter.__new__(ReplyRouter)
    router._queries, router._log, router._venue = _Queries(), _Log(), "v"  # type: ignore[assignment]
    router._unreadable = VENUE_ANSWERS_UNREADABLE.labels(venue="v", source="exec_report")
    router._unreadable_log = LogBudget(burst=1_000)  # every one logged here
    router.on_app(AppMessage("8", msg, False, 1), [])
    assert seen == [fm.exec_type(msg)]  # no ExecID(17): any other ExecType is logged
