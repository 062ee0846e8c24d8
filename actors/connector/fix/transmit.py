"""The sending half of a FIX session (`actors.connector.fix.session.FixSession`): numbers
each outbound message, puts it in the store before its bytes can leave, and answers a
ResendRequest from the store (PossDup copies, SequenceReset-GapFill for the rest).

A NewOrderSingle sent on an earlier connection (or by an earlier process) is not sent
again: its number gets a gap fill (`NOT_RESENT`, counted by the session). The peer asks for
a number it never recorded: mostly a D it never read (the bytes died with that connection,
or with the venue), sometimes one it took and died before recording the number. Whether
that order should still go is the OMS's decision, not the store's: the OMS runs a
reconciliation pass at every logon, finds whether the venue knows the order and, if not,
resubmits it (same ClOrdID) unless it is held (kill-switch engaged, connector stopped or
given up on, trading window closed). The copy from the store went past all of these,
however long the venue had been down: a market order filled with the kill-switch engaged.
A D of the current connection asked for within `order_resend_age_s` of its send (two
HeartBtInt: a garbled frame's gap shows at the next message or heartbeat) is resent as
before, ahead of anything sent after it, a mass cancel included, as its first send did;
asked for later (a venue gateway that lost it behind the same session), it gets a gap fill
too, and the OMS's periodic pass resubmits it. Cancels and replaces are always resent: they
act on an order the venue already holds.

Bytes wait in the transmitter until `take()`, which syncs the store first (group commit:
one fsync for the batch), so nothing is on the wire that a crash could forget we sent.

A peer's ResendRequests are bounded per batch (between two `take()`s: one loop turn). One
request brings at most what the store keeps (~11,000 messages, ~0.12 s); a peer that sent
20 of them for everything (1.6 KB, one read) held one turn 2.9 s and queued 37 MB, a 64 KiB
read of them ~800. A request whose every number this batch answered already is skipped
(`COVERED`: the copies go out ahead of anything sent after it), and once the batch resent
`MAX_RESENT_PER_BATCH` messages the rest are skipped (`OVER_BUDGET`: a peer still missing
something asks again). The first request of a batch is always answered whole.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from actors.connector.fix import codec as fc
from actors.connector.fix.events import Logger
from actors.connector.fix.msglog import OUT, MessageLog
from actors.connector.fix.store import FixStore
from actors.runtime import metrics
from actors.runtime.ratelog import LogBudget

# header and trailer tags the session sets; an application message may not
_RESERVED_TAGS = frozenset({8, 9, 10, 34, 35, 43, 49, 52, 56, 122})
MAX_RESENT_PER_BATCH = 20_000  # messages resent between two take()s (~2 full stores)
# why a ResendRequest was skipped (stable: log field and metric label)
COVERED = "covered"
OVER_BUDGET = "over_budget"
NOT_RESENT = frozenset({"D"})  # gap-filled if of an earlier connection, or old (see above)


def text_value(text: str) -> bytes:
    """A Text(58) value: SOH, which would end the field, becomes a space."""
    return text.replace("\x01", " ").encode()


def app_body(
    fields: Sequence[tuple[int, fc.Value]] | fc.Written,
) -> list[tuple[int, bytes]] | fc.Written:
    """An application message's body; ValueError for a tag the session sets itself. A
    body written ahead (`fc.Written`) is taken as it is: its writer checked it."""
    if isinstance(fields, fc.Written):
        return fields
    body: list[tuple[int, bytes]] = []
    append, reserved, fix_value = body.append, _RESERVED_TAGS, fc.fix_value
    for tag, value in fields:
        if tag in reserved:
            raise ValueError(f"tag {tag} is set by the session")
        if type(value) is str and value and "\x01" not in value:
            append((tag, value.encode()))  # fix_value's answer for a plain str, inline
        else:
            append((tag, fix_value(value)))
    return body


class Transmitter:
    def __init__(
        self,
        store: FixStore,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
        sender_comp_id: str,
        target_comp_id: str,
    ) -> None:
        self._store = store
        self._clock = clock  # wall time: SendingTime only
        self._mono = monotonic
        self._comp_header = [(49, sender_comp_id.encode()), (56, target_comp_id.encode())]
        self._out: list[bytes] = []
        self.last_sent_s = 0.0  # on the monotonic clock
        self._resent_through = 0  # highest seq sent again (as PossDup) on request
        self._numbering = store.numbering  # the numbering it is in
        self.resends = 0  # messages sent again (PossDup or gap fill) on request, ever
        self.message_log: MessageLog | None = None  # every message out, as encoded
        self._batch_cover: tuple[int, int] | None = None  # numbers resent in this batch
        self._batch_resent = 0  # messages resent in this batch
        self._connection_from = 1  # our first number on the current connection
        self._connection_numbering = store.numbering  # the numbering it was taken in
        self.order_resend_age_s = 60.0  # the session sets two HeartBtInt (see above)
        # the D's this connection sent within order_resend_age_s, on the monotonic clock (a
        # step of the wall clock changes nothing): (first seq, time) of each second with one
        self._young_orders: deque[tuple[int, float]] = deque()
        self._young_numbering = store.numbering  # the numbering those D's were sent in

    @property
    def resent_through(self) -> int:
        """The highest of our numbers sent again on request, in the current numbering:
        numbers a reset or a lowered next-out gives to new messages are not counted."""
        if self._numbering != self._store.numbering:
            first = self._store.reused_since(self._numbering)
            self._numbering = self._store.numbering
            self._resent_through = min(self._resent_through, first - 1)
        return self._resent_through

    def new_connection(self) -> None:
        """A transport is up: messages numbered from here on are this connection's."""
        self._connection_from = self._store.next_out
        self._connection_numbering = self._young_numbering = self._store.numbering
        self._young_orders.clear()

    def _withheld(self, msg_type: str, seq: int) -> bool:
        """A NewOrderSingle not to send again (see the module docstring)."""
        if msg_type not in NOT_RESENT:
            return False
        if self._sent_before_connection(seq):
            return True
        young = self._young_orders
        self._forget_old(young)
        return not young or seq < young[0][0]

    def _order_sent(self, seq: int) -> None:
        """A D numbered now: a second's first opens an entry (at most ~age_s + 1 of them).
        The entries of an earlier numbering go (a venue's reset Logon mid-connection: their
        higher numbers made every D after it "old", gap-filled when asked for at once)."""
        young, now = self._young_orders, self._mono()
        if self._young_numbering != self._store.numbering:
            young.clear()
            self._young_numbering = self._store.numbering
        if not young or now - young[-1][1] >= 1.0:
            young.append((seq, now))
            self._forget_old(young)

    def _forget_old(self, young: deque[tuple[int, float]]) -> None:
        """Entries opened before the age bound go: a D before the oldest left is old (one
        of the oldest second may be up to a second younger than the bound: a gap fill)."""
        oldest_s = self._mono() - self.order_resend_age_s
        while young and young[0][1] < oldest_s:
            young.popleft()

    def _sent_before_connection(self, seq: int) -> bool:
        """`seq` was taken before the current connection: a number given again since it
        (a reset, a lowered next-out) is this connection's."""
        if self._connection_numbering != self._store.numbering:
            first = self._store.reused_since(self._connection_numbering)
            self._connection_from = min(self._connection_from, first)
            self._connection_numbering = self._store.numbering
        return seq < self._connection_from

    def emit(
        self,
        msg_type: str,
        body: list[tuple[int, bytes]] | fc.Written,
        *,
        keep: bool = False,
        seq: int | None = None,
        orig_time: bytes | None = None,
    ) -> int:
        """Encode and queue one message; a new number is taken and stored unless `seq`
        (a resend). `keep`: the whole message is stored, to be resent on request."""
        now = self._clock()
        new = seq is None
        number = self._store.next_out if seq is None else seq
        header = [*self._comp_header, (34, b"%d" % number)]
        if not new:
            header.append((43, b"Y"))
        header.append((52, fc.sending_time(now).encode()))
        if orig_time is not None:
            header.append((122, orig_time))
        raw = fc.encode(msg_type, header, body)
        if new:
            if keep:
                self._store.save_sent(number, raw)
                if msg_type in NOT_RESENT:
                    self._order_sent(number)
            else:
                self._store.set_next_out(number + 1)
        self._out.append(raw)
        if self.message_log is not None:
            self.message_log.record(OUT, raw)
        self.last_sent_s = self._mono()
        return number

    def resend_refusal(self, begin: int, end: int) -> tuple[str, int] | None:
        """Why ResendRequest(`begin`, `end`) asks for no message we could send (the Reject's
        Text and RefTagID), or None: answer it. Numbers start at 1 (a BeginSeqNo 0 was read
        as 1 and everything resent); a range ends at or after it begins (EndSeqNo 0:
        infinity); a correct peer asks only for numbers it saw us use, never past our last
        (that went unanswered: the peer waited and learnt nothing)."""
        last = self._store.next_out - 1
        if end and begin > end:
            return f"BeginSeqNo(7) {begin} above EndSeqNo(16) {end}", 16
        if begin < 1:
            return f"BeginSeqNo(7) {begin}: sequence numbers start at 1", 7
        if begin > last:
            return f"BeginSeqNo(7) {begin} above our last MsgSeqNum {last}", 7
        return None

    def skip_resend(self, begin: int, end: int) -> str | None:
        """Why ResendRequest(begin, end) gets no answer in this batch (`COVERED`,
        `OVER_BUDGET`; see the module docstring), or None: answer it (`resend`)."""
        last = self._store.next_out - 1
        end = last if end == 0 or end > last else end
        cover = self._batch_cover
        if cover is not None and cover[0] <= max(begin, 1) and end <= cover[1]:
            return COVERED
        return OVER_BUDGET if self._batch_resent >= MAX_RESENT_PER_BATCH else None

    def resend(self, begin: int, end: int) -> tuple[int, int, int]:
        """Answer ResendRequest(begin, end; 0 = up to the last sent): the kept messages
        again, gap fills between and after them and over each `NOT_RESENT` one withheld (of
        an earlier connection, or old). Returns (last seq covered, messages resent, orders
        gap-filled)."""
        last = self._store.next_out - 1
        end = last if end == 0 or end > last else end
        gap_start = max(begin, 1)
        cover = self._batch_cover
        if gap_start > end:  # nothing asked that we sent: nothing covered
            pass
        elif cover is None or gap_start > cover[1] + 1 or end < cover[0] - 1:
            self._batch_cover = (gap_start, end)
        else:  # overlapping or adjacent: one range
            self._batch_cover = (min(gap_start, cover[0]), max(end, cover[1]))
        count = withheld = 0
        for seq, raw in self._store.sent_messages(gap_start, end):
            msg_type, body, orig_time = fc.body_of(raw)
            if self._withheld(msg_type, seq):
                withheld += 1  # part of the gap: filled with what follows it
                continue
            if seq > gap_start:
                self._gap_fill(gap_start, seq)
            self.emit(msg_type, body, seq=seq, orig_time=orig_time)
            gap_start = seq + 1
            count += 1
        if gap_start <= end:
            self._gap_fill(gap_start, end + 1)
        self.resends += count + 1  # a request answered by gap fills alone counts too
        self._batch_resent += count
        self._resent_through = max(self.resent_through, end)
        return end, count, withheld

    def _gap_fill(self, seq: int, new_seq: int) -> None:
        orig = fc.sending_time(self._clock()).encode()
        self.emit("4", [(123, b"Y"), (36, b"%d" % new_seq)], seq=seq, orig_time=orig)

    def take(self, *, flush_log: bool = True) -> bytes:
        """Sync the store (group commit), then hand out every queued outbound byte.
        `flush_log` False: the caller flushes the message log once the bytes are out."""
        self._store.sync()
        self._batch_cover, self._batch_resent = None, 0
        if flush_log and self.message_log is not None:
            self.message_log.flush()  # once per loop turn; a diagnostic record: no fsync
        if not self._out:
            return b""
        data = b"".join(self._out)
        self._out.clear()
        return data

    def clear(self) -> None:
        """The connection is gone: what was not handed out is dropped (its numbers are
        taken; kept messages go again when the peer asks for a resend, but a D: see above)."""
        self._out.clear()
        self._batch_cover, self._batch_resent = None, 0


class ResendSkips:
    """Counts every skipped ResendRequest (``tradepulse_fix_resend_requests_skipped``) and
    logs at most one line (``fix_resend_request_skipped``) a second (`LogBudget`);
    ``unlogged``: how many were skipped without a line since the previous one."""

    def __init__(self, log: Logger, clock: Callable[[], float], peer: str) -> None:
        self._log = log
        self._peer = peer
        self._budget = LogBudget(burst=1, window_s=1.0, clock=clock)

    def skipped(self, reason: str, begin: int, end: int) -> None:
        metrics.FIX_RESEND_REQUESTS_SKIPPED.labels(peer=self._peer, reason=reason).inc()
        if (unlogged := self._budget.take()) is not None:
            self._log.warning(
                "fix_resend_request_skipped", reason=reason, begin=begin, end=end,
                unlogged=unlogged,
            )  # fmt: skip
