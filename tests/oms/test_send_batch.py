"""The OMS's venue requests of one turn's sends go to each connector as one `Requests`
(actors/oms/send_batch.py), after the turn's journal commit, in the order dispatched; a
lone one, or one dispatched outside the sends (a reconciliation pass), goes alone at once."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from actors.oms.send_batch import HeldSends
from protocol.codec import Envelope
from protocol.messages import CancelOrder, Message
from tests.oms.test_sends_first import _Oms

Callback = Callable[[Envelope | None], None]


class _Peer:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def request(self, body: Message, callback: Callback, timeout_s: float) -> str:
        self.calls.append(f"request {_coid(body)}")
        return "id"

    def request_many(self, items: Sequence[tuple[Message, Callback]], timeout_s: float) -> None:
        self.calls.append("request_many " + " ".join(_coid(b) for b, _ in items))


def _coid(body: Message) -> str:
    assert isinstance(body, CancelOrder)
    return body.client_order_id


def _nothing(env: Envelope | None) -> None:
    pass


def test_requests_held_during_the_sends_go_as_one_in_order() -> None:
    calls: list[str] = []
    sends = HeldSends(_Peer(calls), 2.0)
    sends.hold()
    for c in ("a", "b", "c"):
        sends.request(CancelOrder(client_order_id=c), _nothing)
    assert calls == []
    sends.release()
    assert calls == ["request_many a b c"]
    sends.request(CancelOrder(client_order_id="d"), _nothing)  # not held: at once
    assert calls[-1] == "request d"
    sends.hold()
    sends.release()  # nothing held: nothing sent
    assert len(calls) == 2


class _Link:
    def __init__(self, calls: list[str]) -> None:
        self.sends = HeldSends(_Peer(calls), 2.0)


def test_the_turns_sends_to_a_venue_leave_as_one_message_after_the_commit() -> None:
    oms = _Oms()
    link = _Link(oms.calls)
    oms.venues = {"simA": link}
    for coid in ("o1", "o2"):
        oms.approve(coid)

        def send(coid: str = coid) -> None:
            oms.calls.append(f"dispatch {coid}")
            link.sends.request(CancelOrder(client_order_id=coid), _nothing)

        oms.after_commit(send, first=True)
    oms.after_iteration()
    sent: list[Any] = [c for c in oms.calls if not c.startswith("event")]
    assert sent == [
        "commit", "after_journal_before_send", "dispatch o1", "dispatch o2",
        "request_many o1 o2",
    ]  # fmt: skip
