"""The FIX adapter's outbound application messages: a FIFO behind the venue's rate limit.

    out = OutboundQueue(TokenBucket(rate_per_s, burst), wake=lambda delay_s: ..., store=store)
    out.put(Outbound("D", fields, done, cl_ord_id))
    each loop turn: done_list = out.pump(session)   # session.send() while tokens last
                    session.data_to_send()          # durable now; the bytes go out
                    out.record_sent()               # the maps below, off the order path
                    for done in done_list: done(None)
    session lost:   out.fail(error)                 # what never left fails, nothing is sent

Excess waits and is never dropped; `wake(delay_s)` is asked once to turn the loop again
when the next token is due. At most `MAX_SENDS_PER_TURN` go per loop turn (2,000 status
requests at once were ~0.1 s of one turn), the rest on the next. The queue also remembers
which request each sent MsgSeqNum carried (to route a venue Reject; one sent before a
restart is read back from the FIX store) and when each order message left (round-trip
metric). The MsgSeqNum -> request map and each ClOrdID's last send are fixed arrays
(`recent`). `pump` keeps what it sent for `record_sent`, which writes all three once the
turn's bytes are on the wire: nothing reads them before an answer to those bytes can come
(a later loop turn), and they are memory only, so a crash in between loses nothing the
store does not hold.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actors.connector.adapter import RequestFailed, SendDone
from actors.connector.fix import codec as fc
from actors.connector.fix.recent import LastOrderSeq, SeqRequests
from actors.connector.fix.session import FixSession
from actors.connector.fix.store import FixStore
from actors.connector.ratelimit import TokenBucket
from protocol.messages import ErrorCode

MAX_SENDS_PER_TURN = 256

TRACKED = 10_000  # bound of the seq -> request and ClOrdID maps (= the store's resend window)


@dataclass(slots=True)
class Outbound:
    msg_type: str
    fields: list[tuple[int, Any]] | fc.Written  # Written: a body written ahead (order_wire)
    done: SendDone | None  # place / cancel / replace: told once the message is durable
    ref: str  # ClOrdID of an order message, query key of a query message


class OutboundQueue:
    def __init__(self, bucket: TokenBucket, wake: Callable[[float], None], store: FixStore) -> None:
        self._bucket = bucket
        self._wake = wake
        self._store = store
        self._queue: deque[Outbound] = deque()
        self._wake_pending = False
        self._seq_ref = SeqRequests(TRACKED)
        self._sent_at: OrderedDict[str, float] = OrderedDict()
        # ClOrdID -> seq of its last D / F / G (an order's, or a cancel's or replace's id)
        self._last_order_seq = LastOrderSeq(TRACKED)
        self._numbering = store.numbering  # the numbering both maps are in
        self._unrecorded: list[tuple[int, Outbound]] = []  # pumped, not in the maps yet

    def _in_numbering(self) -> None:
        """Both maps forget the numbers of a numbering that restarted (a reset, every logon
        under ResetSeqNumFlag, or next-out lowered by the operator): a venue's Reject of our
        new number K must not be matched to the request an old K carried."""
        if self._numbering != self._store.numbering:
            first = self._store.reused_since(self._numbering)  # those below stay unambiguous
            self._numbering = self._store.numbering
            self._seq_ref.drop_from(first)
            self._last_order_seq.drop_from(first)

    def __len__(self) -> int:
        return len(self._queue)

    def put(self, item: Outbound) -> None:
        self._queue.append(item)

    def pump(self, session: FixSession) -> list[SendDone]:
        """Hand queued messages to the active session while the bucket has tokens;
        returns the callbacks to call once the session's bytes are durable."""
        done: list[SendDone] = []
        sent = 0
        if self._queue:
            self._in_numbering()  # the maps in the numbering of these sends (record_sent)
        while self._queue and session.state == "active":
            if sent >= MAX_SENDS_PER_TURN:  # the rest on the next loop turn, at once
                if not self._wake_pending:
                    self._wake_pending = True
                    self._wake(0.0)
                break
            if not self._bucket.try_take():
                if not self._wake_pending:
                    self._wake_pending = True
                    self._wake(self._bucket.wait_s())
                break
            item = self._queue.popleft()
            sent += 1
            try:
                seq = session.send(item.msg_type, item.fields)
            except ValueError as exc:  # a value FIX cannot carry: this request fails, not us
                if item.done is not None:
                    item.done(RequestFailed(ErrorCode.INVALID_ORDER, f"not sendable: {exc}"))
                continue
            self._unrecorded.append((seq, item))
            if item.done is not None:
                done.append(item.done)
        return done

    def record_sent(self) -> None:
        """Note what `pump` handed to the session: which request each MsgSeqNum carried,
        each ClOrdID's last D / F / G, when each order message left (round-trip metric).
        Called once the turn's bytes are written; the maps took `pump`'s numbering, a
        renumbering since then is applied after, as a reader would."""
        if not self._unrecorded:
            return
        now = time.perf_counter()
        for seq, item in self._unrecorded:
            self._seq_ref.put(seq, item.msg_type, item.ref)
            if item.msg_type in ("D", "F", "G"):
                self._last_order_seq.put(item.ref, seq)
            if item.done is not None:
                _bounded_put(self._sent_at, item.ref, now)
        self._unrecorded.clear()
        self._in_numbering()

    def woken(self) -> None:
        """The wake-up asked for has come (the turn's pump sends what it can)."""
        self._wake_pending = False

    def fail(self, error: RequestFailed) -> None:
        """The session is gone: every queued request fails; none of them was sent."""
        queued, self._queue = self._queue, deque()
        for item in queued:
            if item.done is not None:
                item.done(error)

    def sent_request(self, seq: int) -> tuple[str, str]:
        """(MsgType, ref) of the request we sent as `seq`, or ("", "") if not known. One
        sent before a restart is read back from the store: (MsgType, ClOrdID)."""
        self._in_numbering()
        found = self._seq_ref.pop(seq)
        if found is not None:
            return found
        return self._stored_request(seq)

    def last_send_seq(self, cl_ord_id: str) -> int | None:
        """The seq of the last D / F / G this incarnation sent with ClOrdID `cl_ord_id`."""
        self._in_numbering()
        return self._last_order_seq.get(cl_ord_id)

    def is_latest_order_send(self, seq: int, cl_ord_id: str) -> bool:
        """`seq` carried the last D (F, G) this connector incarnation sent for `cl_ord_id`
        (one sent before a restart, or an earlier send of a resubmitted request, is not)."""
        self._in_numbering()
        return self._last_order_seq.get(cl_ord_id) == seq

    def _stored_request(self, seq: int) -> tuple[str, str]:
        for _, raw in self._store.sent_messages(seq, seq):
            msg_type, body, _ = fc.body_of(raw)
            return msg_type, next((v.decode("latin-1") for t, v in body if t == 11), "")
        return "", ""

    def answered(self, cl_ord_id: str) -> float | None:
        """Seconds since the order message `cl_ord_id` left, at its first answer."""
        sent = self._sent_at.pop(cl_ord_id, None)
        return None if sent is None else time.perf_counter() - sent


def _bounded_put(mapping: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    mapping[key] = value
    if len(mapping) > TRACKED:
        mapping.popitem(last=False)
