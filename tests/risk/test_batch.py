"""`BatchAnswer`: a batch's verdicts collected slot by slot, sent once, in check order."""

from __future__ import annotations

from actors.risk.batch import BatchAnswer
from protocol.messages import ErrorCode, Message, RequestRejected, RiskVerdict, RiskVerdicts


def test_the_answer_goes_once_the_last_slot_is_filled_in_check_order() -> None:
    """Slots filled out of order (a held check answered last): one RiskVerdicts, in the
    checks' order; a slot answered again changes nothing."""
    sent: list[Message] = []
    batch = BatchAnswer(sent.append, ["a", "b", "c"])
    batch.slot(2)(RiskVerdict(client_order_id="c", approved=True))
    batch.slot(0)(RiskVerdict(client_order_id="a", approved=False, reason_code="max_order_qty"))
    assert sent == []
    batch.slot(0)(RiskVerdict(client_order_id="a", approved=True))  # answered already
    batch.slot(1)(RiskVerdict(client_order_id="b", approved=True))
    (answer,) = sent
    assert isinstance(answer, RiskVerdicts)
    assert [(v.client_order_id, v.approved) for v in answer.verdicts] == [
        ("a", False), ("b", True), ("c", True),
    ]  # fmt: skip


def test_a_slot_answered_with_anything_but_a_verdict_fails_that_order_closed() -> None:
    """Not a verdict (an error): that order's verdict is a risk_error refusal."""
    sent: list[Message] = []
    batch = BatchAnswer(sent.append, ["a"])
    batch.slot(0)(RequestRejected(code=ErrorCode.INTERNAL, reason="boom"))
    (answer,) = sent
    assert isinstance(answer, RiskVerdicts)
    (v,) = answer.verdicts
    assert v.client_order_id == "a" and not v.approved and v.reason_code == "risk_error"
