"""A FIX session's first look at an inbound frame (`actors.connector.fix.session`): an
`Inbound` message to sequence, a `Garbled` frame, or a `BadHeader` that ends the session.

Garbled (FIX 4.4 "garbled message"): a wrong CheckSum(10) or BodyLength(9), MsgType(35)
not the third field, or not tag=value. A logged-on session ignores it: no Reject, and its
number is *not* consumed, so the next good message opens a gap and the ResendRequest
brings the damaged message again instead of losing it. Each one is counted
(``tradepulse_fix_garbled_frames``) and logged (``fix_garbled_ignored``, at most one line
per second). Before logon (the peer may be anybody) it disconnects. A bad header
(BeginString, comp ids, no MsgSeqNum or one over the store's `MAX_SEQ`) ends the session:
Logout with a text, then `Disconnect`; wrong comp ids on an active session are rejected
first.

`gap_fill_refusal`: a SequenceReset-GapFill's NewSeqNo the session does not take.
`drain_behind_gap`: what a reset Logon delivers of the messages waiting behind a gap.

Unsolicited informational messages the application does not handle (News 35=B,
TradingSessionStatus 35=h) are accepted and logged by `log_informational`; a Logout's
text is cut by `peer_text`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import simplefix

from actors.connector.fix import codec as fc
from actors.connector.fix.events import Logger
from actors.connector.fix.store import MAX_SEQ
from actors.runtime import metrics

# Garbled.reason values (stable: log field and metric label)
BAD_CHECKSUM = "bad_checksum"
BAD_BODY_LENGTH = "bad_body_length"
MSG_TYPE_NOT_THIRD = "msg_type_not_third"
NOT_TAG_VALUE = "not_tag_value"

MAX_GAP_FILL_JUMP = 100_000  # a GapFill skipping more, to no message seen: refused
# News and TradingSessionStatus: accepted and logged when the application takes neither.
INFORMATIONAL_MSG_TYPES = frozenset({"B", "h"})
_MAX_LOGGED_CHARS = 200


class Inbound(NamedTuple):
    """One parsed inbound message."""

    seq: int
    msg_type: str
    msg: simplefix.FixMessage
    hdr: dict[bytes, bytes]  # tag -> value (last of a repeated tag)
    poss_dup: bool


@dataclass(frozen=True, slots=True)
class Garbled:
    seq: int | None  # its MsgSeqNum, if readable (for the log only)
    reason: str  # BAD_CHECKSUM, BAD_BODY_LENGTH, MSG_TYPE_NOT_THIRD or NOT_TAG_VALUE


@dataclass(frozen=True, slots=True)
class BadHeader:
    text: str
    comp_id_seq: int | None  # comp ids wrong: this MsgSeqNum is rejected first (if active)
    hdr: dict[bytes, bytes]


def read_frame(frame: fc.Frame, *, ours: bytes, theirs: bytes) -> Inbound | Garbled | BadHeader:
    """Parse `frame` and check the header fields that identify the session (`ours`: our
    comp id, the message's TargetCompID; `theirs`: the peer's, its SenderCompID)."""
    if frame.error is not None:
        reason = BAD_CHECKSUM if frame.error == "bad_checksum" else BAD_BODY_LENGTH
        return Garbled(fc.find_seq(frame.raw), reason)
    try:
        pairs = fc.split_fields(frame.raw)
    except ValueError:
        return Garbled(fc.find_seq(frame.raw), NOT_TAG_VALUE)
    if len(pairs) < 3 or pairs[2][0] != b"35":
        return Garbled(fc.find_seq(frame.raw), MSG_TYPE_NOT_THIRD)
    hdr = dict(pairs)
    # no tag repeated (no repeating group): the last occurrence of each is the first too
    first = hdr if len(hdr) == len(pairs) else None
    msg = fc.to_message(pairs, first)
    # fc.get_int(msg, 34), from the index at hand (the order path's every message)
    seq_b = (fc.first_fields(msg) if first is None else first).get(b"34")
    seq = int(seq_b) if seq_b is not None and seq_b.isdigit() and len(seq_b) <= 10 else None
    if pairs[0][1] != b"FIX.4.4":
        return BadHeader("Incorrect BeginString", None, hdr)
    if hdr.get(b"49") != theirs or hdr.get(b"56") != ours:
        return BadHeader("CompID problem", seq, hdr)
    if not seq or seq > MAX_SEQ:  # a number the store cannot keep (it crashed its flush)
        return BadHeader("MsgSeqNum missing or invalid", None, hdr)
    msg_type = pairs[2][1].decode("latin-1")
    return Inbound(seq, msg_type, msg, hdr, hdr.get(b"43") == b"Y")


def gap_fill_refusal(seq: int, new_seq: int, highest_seen: int) -> str | None:
    """Why SequenceReset-GapFill(`seq` -> `new_seq`) is refused (the Reject's Text), or
    None. FIX allows any NewSeqNo above MsgSeqNum, and QuickFIX takes it; taken, a broken
    or hostile 2^31-1 made every later message "MsgSeqNum too low" and the stored next-in
    refused every logon after. A skip of more than `MAX_GAP_FILL_JUMP` numbers is taken
    only up to a message seen (`highest_seen`, queued behind a gap) + 1: a venue that
    really skipped sends its next message there, and its GapFill resent is then taken."""
    if not seq < new_seq <= MAX_SEQ:
        return "NewSeqNo not above MsgSeqNum (or over the maximum)"
    if new_seq - seq > MAX_GAP_FILL_JUMP and new_seq > highest_seen + 1:
        return f"NewSeqNo {new_seq} skips over {MAX_GAP_FILL_JUMP} numbers, none seen"
    return None


def drain_behind_gap(queue: dict[int, tuple[Inbound, bool]]) -> list[Inbound]:
    """Empty a session's queue (seq -> (message, already handled)) at a reset Logon and
    return its application messages not handled yet, in order. They came before the
    reset, numbered in the old numbering: no resend brings their gap now, so waiting for
    it is over. Dropped, a fill held there was lost to the OMS (the venue's new store never
    resends it); kept, the simulator (this code) took a D of ours that crossed its reset as
    our new number once our new numbers reached it, then our own was "too low". Admin
    messages of the old numbers (a ResendRequest, a Reject of our old number) go."""
    held = [m for _, (m, handled) in sorted(queue.items()) if not handled]
    queue.clear()
    return [m for m in held if m.msg_type not in fc.ADMIN_MSG_TYPES]


class GarbledLog:
    """Counts every ignored garbled frame and logs at most one line per `interval_s`
    (``unlogged``: how many were ignored without a line since the previous one)."""

    def __init__(
        self, log: Logger, clock: Callable[[], float], peer: str, interval_s: float = 1.0
    ) -> None:
        self._log = log
        self._clock = clock
        self._peer = peer
        self._interval_s = interval_s
        self._last_log_s: float | None = None
        self._unlogged = 0

    def ignored(self, garbled: Garbled, expected_seq: int) -> None:
        metrics.FIX_GARBLED_FRAMES.labels(peer=self._peer, reason=garbled.reason).inc()
        now = self._clock()
        if self._last_log_s is not None and now - self._last_log_s < self._interval_s:
            self._unlogged += 1
            return
        self._log.warning(
            "fix_garbled_ignored",
            reason=garbled.reason,
            seq=garbled.seq,
            expected_seq=expected_seq,
            unlogged=self._unlogged,
        )
        self._last_log_s = now
        self._unlogged = 0


def log_informational(log: Logger, inbound: Inbound) -> None:
    """Log an unsolicited News (``fix_news``) or TradingSessionStatus
    (``fix_trading_session_status``) with its key fields."""
    msg = inbound.msg
    if inbound.msg_type == "B":
        log.info(
            "fix_news",
            seq=inbound.seq,
            poss_dup=inbound.poss_dup,
            headline=_short(fc.get_str(msg, 148)),
            urgency=fc.get_str(msg, 61),
        )
    else:
        log.info(
            "fix_trading_session_status",
            seq=inbound.seq,
            poss_dup=inbound.poss_dup,
            trading_session_id=_short(fc.get_str(msg, 336)),
            trad_ses_status=fc.get_str(msg, 340),
            text=_short(fc.get_str(msg, 58)),
        )


def _short(text: str | None) -> str | None:
    return None if text is None else text[:_MAX_LOGGED_CHARS]


def peer_text(text: str | None) -> str:
    """A Logout's Text(58) as it goes into our events, logs and venue state: cut to
    `_MAX_LOGGED_CHARS` (the peer sizes it, up to a frame's 1 MiB, and a refused logon's
    text was logged 4 times and sent to the OMS and the supervisor at every reconnect)."""
    if text is None:
        return ""
    if len(text) <= _MAX_LOGGED_CHARS:
        return text
    return f"{text[:_MAX_LOGGED_CHARS]}... ({len(text)} chars)"
