"""`OrderStatusAnswer.pending` (ids the venue does not know yet while a create of ours may
still reach it): written and read like `unknown`, by the fast outgoing path
(`protocol.wire_out`) as by pydantic; an answer without it (a connector that never
answers `pending`, the FIX one, or an older build) reads as an empty list."""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import wire_out
from protocol.codec import Sender, decode, encode
from protocol.messages import ExecCut, OrderStatusAnswer

_ids = st.lists(st.text(min_size=1, max_size=12), max_size=20)
_cut = ExecCut(connector_epoch=7, exec_seq=3, since=1, oms_epoch=2)


def _round_trip(answer: OrderStatusAnswer) -> OrderStatusAnswer:
    env = Sender("connector.binance", 7).envelope(answer, corr_id="q1")
    body = decode(encode(env)).body
    assert isinstance(body, OrderStatusAnswer)
    return body


def test_the_answer_keeps_its_fast_outgoing_path() -> None:
    """`pending` (a list of str with a default factory) is a field `wire_out` derives: the
    answer is still built and written without pydantic (c66b3cc)."""
    assert OrderStatusAnswer in wire_out.BUILDERS and OrderStatusAnswer in wire_out.DUMPERS


@settings(max_examples=200, deadline=None)
@given(_ids, _ids, st.booleans())
def test_an_answer_with_pending_ids_round_trips(
    unknown: list[str], pending: list[str], cut: bool
) -> None:
    values: dict[str, Any] = {"venue": "binance", "orders": [], "unknown": unknown}
    values |= {"pending": pending, "cut": _cut if cut else None}
    validated = OrderStatusAnswer(**values)
    built = wire_out.construct(OrderStatusAnswer, **values)
    assert built == validated and built.model_fields_set == validated.model_fields_set
    assert wire_out.dump(built) == validated.model_dump(mode="json", exclude={"type"})
    back = _round_trip(built)
    assert (back.unknown, back.pending) == (unknown, pending)


def test_an_answer_without_pending_on_the_wire_reads_as_none_pending() -> None:
    """The body as a connector that does not know the field writes it."""
    env = Sender("connector.simA", 7).envelope(
        OrderStatusAnswer(venue="simA", orders=[], unknown=["a"], cut=_cut), corr_id="q1"
    )
    obj = msgpack.unpackb(encode(env)[0], raw=False)
    del obj["body"]["pending"]
    body = decode([msgpack.packb(obj, use_bin_type=True)]).body
    assert isinstance(body, OrderStatusAnswer)
    assert (body.unknown, body.pending) == (["a"], [])
    built = wire_out.construct(OrderStatusAnswer, venue="simA", orders=[], unknown=["a"])
    assert built.pending == [] and "pending" not in built.model_fields_set
