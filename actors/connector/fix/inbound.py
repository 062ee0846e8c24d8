"""A FIX session's first look at an inbound frame (`actors.connector.fix.session`): an
`Inbound` message to sequence, a `Garbled` frame, or a `BadHeader` that ends the session.

Garbled: a wrong CheckSum or BodyLength, or not tag=value. The session answers it with a
Reject whose RefSeqNum is its readable MsgSeqNum, but that number is *not* consumed: the
next message opens a gap and the ResendRequest recovers the damaged message instead of
losing it. Without a readable MsgSeqNum (or before logon) it disconnects. A bad header
(BeginString, comp ids, no MsgSeqNum) ends the session: Logout with a text, then
`Disconnect`; wrong comp ids on an active session are rejected first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import simplefix

from actors.connector.fix import codec as fc

_GARBLED = {"bad_checksum": "CheckSum(10) mismatch", "bad_body_length": "BodyLength(9) wrong"}


class Inbound(NamedTuple):
    """One parsed inbound message."""

    seq: int
    msg_type: str
    msg: simplefix.FixMessage
    hdr: dict[bytes, bytes]  # tag -> value (last of a repeated tag)
    poss_dup: bool


@dataclass(frozen=True, slots=True)
class Garbled:
    seq: int | None  # its MsgSeqNum, if readable
    reason: int  # SessionRejectReason (373) of the Reject
    what: str  # the CheckSum / BodyLength problem; "" when it is not tag=value


@dataclass(frozen=True, slots=True)
class BadHeader:
    text: str
    comp_id_seq: int | None  # comp ids wrong: this MsgSeqNum is rejected first (if active)
    hdr: dict[bytes, bytes]


def read_frame(frame: fc.Frame, *, ours: bytes, theirs: bytes) -> Inbound | Garbled | BadHeader:
    """Parse `frame` and check the header fields that identify the session (`ours`: our
    comp id, the message's TargetCompID; `theirs`: the peer's, its SenderCompID)."""
    try:
        pairs = fc.split_fields(frame.raw) if frame.error is None else None
    except ValueError:
        pairs = None
    if pairs is None:
        reason = fc.REASON_VALUE_INCORRECT if frame.error else fc.REASON_BAD_DATA_FORMAT
        return Garbled(fc.find_seq(frame.raw), reason, _GARBLED.get(frame.error or "", ""))
    hdr = dict(pairs)
    msg = fc.to_message(pairs)
    seq = fc.get_int(msg, 34)
    if pairs[0][1] != b"FIX.4.4":
        return BadHeader("Incorrect BeginString", None, hdr)
    if hdr.get(b"49") != theirs or hdr.get(b"56") != ours:
        return BadHeader("CompID problem", seq, hdr)
    if not seq:
        return BadHeader("MsgSeqNum missing or invalid", None, hdr)
    msg_type = hdr.get(b"35", b"").decode("latin-1")
    return Inbound(seq, msg_type, msg, hdr, hdr.get(b"43") == b"Y")
