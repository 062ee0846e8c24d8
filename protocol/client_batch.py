"""`ExecutionClient.submit_many`'s wire side: several submits sent as `SubmitOrders`, their
answers gathered from lone replies and `Replies`, resent until each has one or the call's
one deadline passes.

Every submit keeps the rules of a lone `submit`: its body is built and checked before
anything is sent, it is resent every `retry_interval_s` with the same client order id (a new
message id each time; an answer to any of its ids counts: idempotent at the OMS), and only
the submits still unanswered are resent. A batch holds at most `MAX_SUBMIT_BATCH` submits
and `MAX_SUBMIT_BATCH_BYTES` (more go as several); one submit left alone goes as a lone
`SubmitOrder`. At most `WINDOW` submits of a call are in flight (sent, unanswered) at a
time: a call of any size hands the OMS a bounded backlog.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import zmq

from protocol import compat
from protocol.batch_messages import MAX_SUBMIT_BATCH, MAX_SUBMIT_BATCH_BYTES
from protocol.codec import Sender, decode, decode_item
from protocol.exceptions import ProtocolError
from protocol.messages import Message, Replies, SubmitOrder
from protocol.wire_out import dump

WINDOW = 2 * MAX_SUBMIT_BATCH  # submits of one call in flight at a time


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """One order of `ExecutionClient.submit_many`: the arguments of `submit`."""

    venue: str
    symbol: str
    side: str
    qty: Decimal | str | int
    order_type: str = "LIMIT"
    price: Decimal | str | None = None
    tif: str = "DAY"
    client_order_id: str | None = None


def request_many(
    sock: zmq.Socket[bytes],
    sender: Sender,
    bodies: Sequence[SubmitOrder | None],
    *,
    retry_interval_s: float,
    timeout_s: float,
    window: int = WINDOW,
) -> list[Message | ProtocolError | None]:
    """The OMS's answer to each of `bodies` (None in: nothing sent, None out), in order;
    None for a submit unanswered at the deadline, the `ProtocolError` of an answer this
    library cannot read (a newer core's value: a resend gets the same answer). At most
    `window` submits are in flight (sent, unanswered): the next go as answers come, so a
    call of any size hands the OMS a bounded backlog; one in flight for `retry_interval_s`
    is sent again, all of them while answers come, else one alone (a probe: a stalled OMS
    is not handed the window again every `retry_interval_s`; once it answers, the rest
    follow)."""
    deadline = time.monotonic() + timeout_s
    wire = [None if b is None else dump(b) for b in bodies]
    answers: list[Message | ProtocolError | None] = [None] * len(bodies)
    index: dict[str, int] = {}  # every message id sent -> its submit
    todo = deque(i for i, w in enumerate(wire) if w is not None)  # never sent yet
    sent_at: dict[int, float] = {}  # in flight: submit -> when it was last sent
    answering = False  # an answer came since the last resend
    probes = 0
    held: set[int] = set()  # due, not resent (a stalled OMS gets a probe): go at an answer
    while True:
        now = time.monotonic()
        for i in [i for i in sent_at if answers[i] is not None]:
            del sent_at[i]
        if (not todo and not sent_at) or now >= deadline:
            return answers
        due = [i for i, t in sent_at.items() if now - t >= retry_interval_s]
        if answering or not due:
            send = list(due)
        else:  # nothing answered since the last round: one probe, a different one each time
            probes += 1
            send = [due[probes % len(due)]]
        sending = set(send)
        held.update(i for i in due if i not in sending)  # the others: at the next answer
        held.difference_update(sending)
        answering = answering and not due
        fresh = [todo.popleft() for _ in range(min(window - len(sent_at), len(todo)))]
        send += fresh
        for start in range(0, len(send), MAX_SUBMIT_BATCH):
            _send(sock, sender, [(i, wire[i]) for i in send[start : start + MAX_SUBMIT_BATCH]],
                  index)  # fmt: skip
        sent_at.update(dict.fromkeys(due + fresh, now))
        wake = min(deadline, min(sent_at.values()) + retry_interval_s)
        if sock.poll(max(1, int((wake - time.monotonic()) * 1000))):
            if _receive(sock, index, answers):
                answering = True
                for i in held & sent_at.keys():  # the OMS answers again: no interval more
                    sent_at[i] = float("-inf")
                held.clear()


def _send(
    sock: zmq.Socket[bytes],
    sender: Sender,
    chunk: list[tuple[int, Any]],
    index: dict[str, int],
) -> None:
    if len(chunk) == 1:
        msg_id, frames = sender.encode_body("submit_order", chunk[0][1])
        index[msg_id] = chunk[0][0]
        sock.send_multipart(frames)
        return
    ids = [sender.next_id() for _ in chunk]
    items = [{"id": m, "body": body} for m, (_, body) in zip(ids, chunk, strict=True)]
    _, frames = sender.encode_body("submit_orders", {"orders": items})
    if len(frames[0]) > MAX_SUBMIT_BATCH_BYTES:  # long ids or fields: in halves
        half = len(chunk) // 2
        _send(sock, sender, chunk[:half], index)
        _send(sock, sender, chunk[half:], index)
        return
    index.update(zip(ids, (i for i, _ in chunk), strict=True))
    sock.send_multipart(frames)


def _receive(
    sock: zmq.Socket[bytes], index: dict[str, int], answers: list[Message | ProtocolError | None]
) -> bool:
    """Every reply waiting on `sock`, each to its submit (a late or foreign one ignored);
    whether any was new."""
    new = False
    while True:
        try:
            frames = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return new
        try:
            env = decode(frames, tolerant=True)  # a newer core's fields ignored
        except ProtocolError as exc:
            if (i := index.get(compat.answered(frames))) is not None and answers[i] is None:
                answers[i] = exc  # the OMS's answer, unreadable here: final
                new = True
            continue
        if isinstance(env.body, Replies) and not env.corr_id:
            for item in env.body.replies:
                i, mtype = index.get(str(item.get("corr"))), item.get("type")
                if i is None or answers[i] is not None or not isinstance(mtype, str):
                    continue
                try:
                    answers[i] = decode_item(mtype, item.get("body"), tolerant=True)
                except ProtocolError as exc:
                    answers[i] = exc  # as an unreadable lone reply: final
                new = True
        elif (i := index.get(env.corr_id)) is not None and answers[i] is None:
            answers[i] = env.body
            new = True
