"""The connector's Acks of one adapter flush, as one message per requester.

A place / cancel / replace is acknowledged once its FIX message is in the durable store:
all of a turn's at once, at the adapter's flush (`ConnectorActor.after_iteration`). Inside
that window each Ack is held and the window's end sends them: one alone as today's `Ack`
(correlated to its request), several as one `Acks` naming each request's message id, which
the OMS's `Peer` hands to each request as its lone Ack (its own callback, its own
deadline). Order on the socket is kept: a refusal sent inside the window first sends the
Acks held before it. At most `MAX_ACK_BATCH` (256, the adapter's sends per turn) a message.
"""

from __future__ import annotations

from collections.abc import Callable

from actors.connector.adapter import RequestFailed
from actors.runtime.peer import Replier
from protocol.messages import MAX_ACK_BATCH, Ack, Acks, ErrorCode, Message

SendRouter = Callable[[list[bytes], Message, str], bool]


class AckBatch:
    def __init__(self, send_router: SendRouter) -> None:
        self._send = send_router
        self._open = False
        self._held: dict[bytes, list[str]] = {}  # requester identity -> request ids, in order

    def sent_reply(
        self, reply: Replier, msg_id: str, code: Callable[[RequestFailed], ErrorCode]
    ) -> Callable[[RequestFailed | None], None]:
        """The adapter's `done` of one request: Ack it (held while the window is open),
        or refuse it (after the Acks held so far)."""

        def done(err: RequestFailed | None) -> None:
            if err is None and self._open:
                self._held.setdefault(reply.identity, []).append(msg_id)
            elif err is None:
                reply(Ack(ref=msg_id))
            else:
                self.send()
                reply.reject(code(err), str(err))

        return done

    def open(self) -> None:
        self._open = True

    def close(self) -> None:
        self._open = False
        if self._held:  # most turns hold none (the window closes at every loop turn)
            self.send()

    def send(self) -> None:
        """Send the Acks held, per requester, in order."""
        if not self._held:
            return
        held, self._held = self._held, {}
        for identity, refs in held.items():
            for start in range(0, len(refs), MAX_ACK_BATCH):
                chunk = refs[start : start + MAX_ACK_BATCH]
                if len(chunk) == 1:
                    self._send([identity], Ack(ref=chunk[0]), chunk[0])
                else:
                    self._send([identity], Acks(refs=chunk), "")
