"""FIX 4.4 tag=value helpers: encode, frame, parse, SendingTime.

Pure functions and one streaming framer, no I/O. The hot paths (encode one message,
split one frame into fields) are hand-written because `simplefix.FixMessage.encode` and
`simplefix.FixParser` cost 13 us and 40 us per message (measured, 200-byte order);
these cost about 3 us and 2 us. Parsed messages are still handed out as
`simplefix.FixMessage`, and a frame carrying a raw-data field (95/96 and friends, whose
value may contain SOH) is parsed by `simplefix.FixParser`.

Framing policy (`FrameReader`): a frame starts at ``8=`` with a BeginString, then
``9=<BodyLength>``, and ends at ``10=<3 digits>SOH``. Bytes that do not start a frame are
skipped up to the next ``8=FIX`` and counted in `FrameReader.junk_bytes`; the session
disconnects when that count passes its bound. A frame whose BodyLength does not point at
its checksum trailer is still cut out (at the first trailer after the header) and
returned flagged ``bad_body_length``; a checksum mismatch is flagged ``bad_checksum``.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import simplefix
from simplefix.data import RAW_LEN_TAGS

from actors.connector.fix.checksum import fix_checksum

SOH = b"\x01"
BEGIN_STRING = "FIX.4.4"

# FIX 4.4 message types (tag 35) that the session layer handles itself.
ADMIN_MSG_TYPES = frozenset({"0", "1", "2", "3", "4", "5", "A"})
# Application message types of /work/shared/FIX44_REFERENCE.txt (the default accept list).
APP_MSG_TYPES = frozenset(
    {"D", "F", "G", "8", "9", "H", "AF", "q", "r", "AN", "AO", "AP", "j", "AD"}
)
# Every MsgType FIX 4.4 defines (its data dictionary: 0-9, A-H, J-N, P-T, V-Z, a-z, AA-BH).
# A type outside this set gets a session Reject 373=11; one inside it that the
# application does not handle gets a BusinessMessageReject 380=3.
FIX44_MSG_TYPES = frozenset(
    "0 1 2 3 4 5 6 7 8 9 A B C D E F G H J K L M N P Q R S T V W X Y Z"
    " a b c d e f g h i j k l m n o p q r s t u v w x y z"
    " AA AB AC AD AE AF AG AH AI AJ AK AL AM AN AO AP AQ AR AS AT AU AV AW AX AY AZ"
    " BA BB BC BD BE BF BG BH".split()
)

# SessionRejectReason (373) values used by the session.
REASON_REQUIRED_TAG_MISSING = 1
REASON_VALUE_INCORRECT = 5
REASON_BAD_DATA_FORMAT = 6
REASON_COMP_ID = 9
REASON_SENDING_TIME = 10
REASON_INVALID_MSG_TYPE = 11
REASON_OTHER = 99
# BusinessRejectReason (380) the session sends for a valid MsgType nobody handles.
BUSINESS_REJECT_UNSUPPORTED_MSG_TYPE = 3

# Required fields of the admin messages, and which of them are numbers.
_REQUIRED = {"1": (112,), "2": (7, 16), "3": (45,), "4": (36,), "A": (98, 108)}
_INT_FIELDS = frozenset({7, 16, 36, 45, 108})
_HEADER_TAGS = frozenset({b"8", b"9", b"35", b"49", b"56", b"34", b"52", b"43", b"122", b"10"})
_RAW_LEN_TAGS = frozenset(str(t).encode() for t in RAW_LEN_TAGS)
_TRAILER = re.compile(rb"\x0110=(\d{3})\x01")
_SEQ = re.compile(rb"\x0134=(\d{1,10})\x01")
_MAX_BEGIN_LEN = 16
_MAX_LEN_DIGITS = 9

Value = str | bytes | int | Decimal


def fix_value(value: Value) -> bytes:
    """Bytes of one field value (a Decimal in plain notation, never ``1E+2``); a value
    that is empty or contains SOH is a programming error."""
    kind = type(value)  # the common exact types first (a subclass takes the checks below)
    if kind is str:
        out = value.encode()  # type: ignore[union-attr]  # a str: checked just above
    elif kind is bytes:
        out = value
    elif kind is int:
        out = b"%d" % value  # type: ignore[str-format]  # str(value).encode() of an int
    elif kind is Decimal:
        out = _plain(value).encode()  # type: ignore[arg-type]  # a Decimal: checked just above
    elif isinstance(value, bytes):
        out = value
    elif isinstance(value, str):
        out = value.encode()
    elif isinstance(value, Decimal):
        out = _plain(value).encode()
    else:
        out = str(value).encode()
    if not out or 1 in out:  # SOH, as an int: a bytes needle costs a TypeError raised and cleared
        # the value is not shown: it may be a credential (a password with a pasted SOH)
        raise ValueError(f"FIX field value must be non-empty without SOH ({len(out)} bytes)")
    return out


def _plain(value: Decimal) -> str:
    """`format(value, "f")`: `str(value)` where that has no exponent (the same text, ~4x
    faster; an exponent form has an "E", or an "e" under a context with capitals=0),
    else the format."""
    text = str(value)
    return text if "E" not in text and "e" not in text else format(value, "f")


class Written(bytes):
    """Body fields written ahead as ``tag=value<SOH>...``: every value non-empty and
    without SOH, no tag the session sets (its writer's guarantee, e.g. venuesim
    status_wire's); `encode` puts them in as they are, `pairs()` reads them back."""

    __slots__ = ()

    def pairs(self) -> list[tuple[int, bytes]]:
        return [(int(tag), value) for tag, _, value in _fields_of(self)]


def _fields_of(raw: bytes) -> list[tuple[bytes, bytes, bytes]]:
    return [field.partition(b"=") for field in raw[:-1].split(SOH)] if raw else []


def encode(
    msg_type: str, header: list[tuple[int, bytes]], body: list[tuple[int, bytes]] | Written
) -> bytes:
    """One complete FIX 4.4 frame: 8, 9, 35, then `header` and `body` in order, then 10."""
    prefix = _TAG_PREFIX
    parts = [b"35=", msg_type.encode(), SOH]
    for tag, value in header:
        parts += (prefix.get(tag) or b"%d=" % tag, value, SOH)
    if isinstance(body, Written):
        parts.append(body)
    else:
        for tag, value in body:
            parts += (prefix.get(tag) or b"%d=" % tag, value, SOH)
    payload = b"".join(parts)
    msg = b"8=FIX.4.4\x019=%d\x01%s" % (len(payload), payload)
    return msg + b"10=%03d\x01" % fix_checksum(msg)


# b"<tag>=" of the tags below 1000 (every tag of our hot messages), built once
_TAG_PREFIX = {tag: b"%d=" % tag for tag in range(1000)}


def split_fields(raw: bytes) -> list[tuple[bytes, bytes]]:
    """The (tag, value) pairs of one framed message; ValueError when it is not tag=value.

    Tags are ASCII digits and values non-empty; a message with a raw-data length tag
    goes through `simplefix.FixParser`, which honours embedded SOH bytes.
    """
    pairs: list[tuple[bytes, bytes]] = []
    for field in raw[:-1].split(SOH):
        tag, eq, value = field.partition(b"=")
        if not eq or not tag.isdigit() or not value:
            raise ValueError(f"malformed field {field[:32]!r}")
        if tag in _RAW_LEN_TAGS:
            return _split_with_simplefix(raw)
        pairs.append((tag, value))
    return pairs


def _split_with_simplefix(raw: bytes) -> list[tuple[bytes, bytes]]:
    parser = simplefix.FixParser()
    parser.append_buffer(raw)
    try:
        msg = parser.get_message()
    except Exception as exc:  # noqa: BLE001 - simplefix raises bare library errors
        raise ValueError(f"unparseable: {exc}") from exc
    if msg is None or parser.get_buffer():
        raise ValueError("raw-data field length does not match the frame")
    return list(msg.pairs)


class _ParsedMessage(simplefix.FixMessage):  # type: ignore[misc]  # simplefix is untyped
    """A parsed message whose `get(tag)` of a field's first occurrence is one dict look-up
    instead of `simplefix`'s scan of every field (with its tag conversion): reading the
    ~18 fields of each of a mass status's 10,000 reports was a third of the connector's
    time in a warm start. The index is rebuilt if fields were added or removed since."""

    def __init__(
        self, pairs: list[tuple[bytes, bytes]], first: dict[bytes, bytes] | None = None
    ) -> None:
        self.begin_string: bytes | None = None  # simplefix's fields, as its __init__ sets them
        self.message_type: bytes | None = None
        self.header_index = 0
        self.pairs = pairs
        self._first: dict[bytes, bytes] = {} if first is None else first
        self._indexed = -1 if first is None else len(pairs)  # len(pairs) when `_first` was built

    def first_fields(self) -> dict[bytes, bytes]:
        """Tag (bytes) -> value of its first occurrence; not to be modified."""
        if self._indexed != len(self.pairs):
            self._first = dict(reversed(self.pairs))  # the first occurrence wins
            self._indexed = len(self.pairs)
        return self._first

    def get(self, tag: object, nth: object = 1) -> bytes | None:
        if nth != 1 or type(tag) is not int:
            value: bytes | None = super().get(tag, nth)
            return value
        return self.first_fields().get(TAG_BYTES.get(tag) or b"%d" % tag)


TAG_BYTES = {tag: b"%d" % tag for tag in range(1000)}  # tag -> b"<tag>", below 1000


def first_fields(msg: simplefix.FixMessage) -> dict[bytes, bytes]:
    """Tag (bytes) -> value (bytes) of the first occurrence of each field of `msg`, as
    `msg.get(tag)` answers it: one dict to read many fields of one message from (a parsed
    message has it already). Not to be modified."""
    if isinstance(msg, _ParsedMessage):
        return msg.first_fields()
    return {bytes(t): bytes(v) for t, v in reversed(msg.pairs)}


def text(fields: dict[bytes, bytes], tag: bytes) -> str | None:
    """Field `tag` (bytes, e.g. ``b"11"``) of `first_fields` as text (latin-1), or None."""
    value = fields.get(tag)
    return None if value is None else value.decode("latin-1")


def to_message(
    pairs: list[tuple[bytes, bytes]], first: dict[bytes, bytes] | None = None
) -> simplefix.FixMessage:
    """A `simplefix.FixMessage` holding `pairs` as they came (no copy of the values);
    `first`: their `first_fields` if the caller has it already."""
    msg = _ParsedMessage(pairs, first)
    for tag, value in pairs[:3]:
        if tag == b"8":
            msg.begin_string = value
        elif tag == b"35":
            msg.message_type = value
    return msg


def get_str(msg: simplefix.FixMessage, tag: int) -> str | None:
    """Field `tag` decoded as text (latin-1, never fails), or None when absent."""
    value = msg.get(tag)
    if value is None:
        return None
    return (value if type(value) is bytes else bytes(value)).decode("latin-1")


def get_int(msg: simplefix.FixMessage, tag: int) -> int | None:
    """Field `tag` as a non-negative int; None when absent or not all digits."""
    value = msg.get(tag)
    if value is None or not value.isdigit() or len(value) > 10:
        return None
    return int(value)


def find_seq(raw: bytes) -> int | None:
    """MsgSeqNum of a possibly damaged frame, if one can be read."""
    match = _SEQ.search(raw)
    return int(match.group(1)) if match else None


def check_message(
    msg: simplefix.FixMessage,
    hdr: dict[bytes, bytes],
    now_s: float,
    max_skew_s: float | None,
) -> tuple[int, str] | None:
    """(SessionRejectReason, Text) when a well-framed message must be rejected, else None.

    `hdr` maps tags to values (the last one of a repeated tag); MsgType is the third field
    (a frame where it is not is garbled, see fix inbound). Checks: MsgType a FIX 4.4 one,
    SendingTime present, well-formed and within `max_skew_s` of `now_s`, and the required
    fields of admin messages present (and numeric where they are numbers).
    """
    msg_type = hdr[b"35"].decode("latin-1")
    if msg_type not in FIX44_MSG_TYPES:
        return REASON_INVALID_MSG_TYPE, f"Invalid MsgType {msg_type[:8]}"
    sent = hdr.get(b"52")
    if sent is None:
        return REASON_REQUIRED_TAG_MISSING, "SendingTime(52) missing"
    sent_s = parse_sending_time(sent.decode("latin-1"))
    if sent_s is None:
        return REASON_BAD_DATA_FORMAT, "SendingTime(52) malformed"
    if max_skew_s is not None and abs(sent_s - now_s) > max_skew_s:
        return REASON_SENDING_TIME, "SendingTime(52) too far from our clock"
    for tag in _REQUIRED.get(msg_type, ()):
        if msg.get(tag) is None:
            return REASON_REQUIRED_TAG_MISSING, f"Required tag {tag} missing"
        if tag in _INT_FIELDS and get_int(msg, tag) is None:
            return REASON_BAD_DATA_FORMAT, f"Tag {tag} is not a number"
    return None


def logon_body(
    heartbeat_s: int, reset: bool, extra: Sequence[tuple[int, Value]]
) -> list[tuple[int, bytes]]:
    """Body of a Logon: EncryptMethod=0, HeartBtInt, ResetSeqNumFlag=Y if `reset`, extra."""
    body = [(98, b"0"), (108, b"%d" % heartbeat_s)]
    if reset:
        body.append((141, b"Y"))
    body.extend((tag, fix_value(value)) for tag, value in extra)
    return body


def body_of(raw: bytes) -> tuple[str, list[tuple[int, bytes]], bytes | None]:
    """(MsgType, body fields, SendingTime) of a message we encoded, to send it again."""
    pairs = split_fields(raw)
    header = dict(pairs[:8])
    body = [(int(tag), value) for tag, value in pairs if tag not in _HEADER_TAGS]
    return header[b"35"].decode(), body, header.get(b"52")


def sending_time(ts_s: float) -> str:
    """UTCTimestamp with milliseconds, e.g. ``20240131-09:30:00.125``."""
    whole = int(ts_s)
    return f"{_whole_seconds(whole)}.{int((ts_s - whole) * 1000):03d}"


@functools.lru_cache(maxsize=4)
def _whole_seconds(whole_s: int) -> str:
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(whole_s))


_TS_WHOLE = re.compile(r"(\d{4})(\d\d)(\d\d)-(\d\d):(\d\d):(\d\d)")
_TS_FRAC = re.compile(r"\.(\d{1,9})")
_TS_WHOLE_LEN = 17  # YYYYMMDD-HH:MM:SS


def parse_sending_time(value: str) -> float | None:
    """Seconds since the epoch of a UTCTimestamp, or None when it is not one."""
    whole = _whole_seconds_of(value[:_TS_WHOLE_LEN])
    if whole is None:
        return None
    if len(value) == _TS_WHOLE_LEN:
        return whole + 0.0
    frac = _TS_FRAC.fullmatch(value, _TS_WHOLE_LEN)
    return None if frac is None else whole + float("0." + frac.group(1))


@functools.lru_cache(maxsize=64)
def _whole_seconds_of(value: str) -> int | None:
    """Seconds since the epoch of ``YYYYMMDD-HH:MM:SS``; None when it is not one. Cached:
    every inbound message's SendingTime (and an execution's TransactTime) is read, and
    within one second they share this part."""
    match = _TS_WHOLE.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, sec = (int(g) for g in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and sec <= 60):
        return None
    return _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + sec


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@dataclass(frozen=True, slots=True)
class Frame:
    """One message cut from the stream; `error` is None, bad_checksum or bad_body_length."""

    raw: bytes
    error: str | None = None


class FrameReader:
    """Cuts a byte stream fed in any chunking into `Frame`s (see the module docstring)."""

    def __init__(self, *, max_msg_bytes: int = 1 << 20) -> None:
        self._buf = bytearray()
        self._max_msg_bytes = max_msg_bytes
        self.junk_bytes = 0  # skipped since the last good frame

    def feed(self, data: bytes) -> None:
        self._buf += data

    def clear(self) -> None:
        self._buf.clear()
        self.junk_bytes = 0

    def next_frame(self) -> Frame | None:
        """The next complete frame, or None until more bytes arrive."""
        buf = self._buf
        while True:
            start = buf.find(b"8=FIX")
            if start < 0:
                keep = min(len(buf), 4)  # a marker may be split across chunks
                self._skip(len(buf) - keep)
                return None
            self._skip(start)
            cut = self._cut(buf)
            if cut is None:
                return None
            if isinstance(cut, int):  # not a frame after all: drop the marker, look again
                self._skip(cut)
                continue
            end, error = cut
            raw = bytes(buf[:end])
            del buf[:end]
            if error is None:
                self.junk_bytes = 0
            return Frame(raw, error)

    def _skip(self, n: int) -> None:
        if n > 0:
            del self._buf[:n]
            self.junk_bytes += n

    def _cut(self, buf: bytearray) -> tuple[int, str | None] | int | None:
        """(end, error) of the frame at buf[0]; an int = bytes of junk; None = need more."""
        soh1 = buf.find(SOH, 2, 2 + _MAX_BEGIN_LEN + 1)
        if soh1 < 0:
            return None if len(buf) <= 2 + _MAX_BEGIN_LEN else 1
        if len(buf) < soh1 + 3:
            return None
        if buf[soh1 + 1 : soh1 + 3] != b"9=":
            return 1
        soh2 = buf.find(SOH, soh1 + 3, soh1 + 3 + _MAX_LEN_DIGITS + 1)
        if soh2 < 0:
            return None if len(buf) <= soh1 + 3 + _MAX_LEN_DIGITS else 1
        length_field = bytes(buf[soh1 + 3 : soh2])
        if not length_field.isdigit():
            return 1
        body_end = soh2 + 1 + int(length_field)
        trailer_end = body_end + 7
        if len(buf) >= trailer_end and _TRAILER.match(buf, body_end - 1, trailer_end):
            checksum = int(buf[body_end + 3 : body_end + 6])
            if fix_checksum(memoryview(buf)[:body_end]) != checksum:
                return trailer_end, "bad_checksum"
            return trailer_end, None
        found = _TRAILER.search(buf, soh2)
        if found is not None:
            return found.end(), "bad_body_length"
        if len(buf) > self._max_msg_bytes:
            return 1
        return None
