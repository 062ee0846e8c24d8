"""What FIX 4.4 requires and allows in every message type the connector or the simulated
venue sends, as a table, and the checks that use it.

Sources: /work/shared/FIX44_REFERENCE.txt (each message's required fields and components,
the enum values; read through the generated `actors.connector.fix.dictionary`), and the
FIX 4.4 specification's message layouts for the tags each message may carry (`ALLOWED`:
the fields of the message, its components and repeating groups, as far as our messages
use them or a venue commonly does; a tag outside it is what an engine validating the FIX
4.4 dictionary rejects with 373=2 "Tag not defined for this message type").

- `problems(msg_type, fields)`: one message's fields (tag -> value) against the table;
- `message_problems(raw)`: a whole encoded message (header, trailer, BodyLength, CheckSum,
  repeated tags, then `problems`); `tests/fixlogs.py` runs it over every message either
  side wrote to a FIX message log anywhere in the test session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from actors.connector.fix import dictionary

Fields = Mapping[int, object]

HEADER_REQUIRED = (8, 9, 35, 49, 56, 34, 52)
HEADER = frozenset({*HEADER_REQUIRED, 43, 97, 122, 50, 57, 115, 128, 369, 10})
# The required fields of the components a message requires (FIX 4.4): Instrument ->
# Symbol(55); OrderQtyData -> OrderQty(38) (or CashOrderQty 152, which we never send).
# Parties, PositionQty and PositionAmountData require no field of their own.
_COMPONENT_REQUIRED = {"Instrument": (55,), "OrderQtyData": (38,)}

# MsgType -> tags FIX 4.4 requires in it (the reference's fields and required components)
REQUIRED: Mapping[str, tuple[int, ...]] = {
    msg_type: fields
    + tuple(
        tag
        for comp in dictionary.REQUIRED_COMPONENTS.get(msg_type, ())
        for tag in _COMPONENT_REQUIRED.get(comp, ())
    )
    for msg_type, fields in dictionary.REQUIRED.items()
}

# ExecType (150) values whose report names the trade it busts or corrects (ExecRefID 19):
# FIX 4.4 makes 19 conditionally required there, which the reference's table cannot say
_TRADE_TAKEN_BACK = ("G", "H")
_PARTIES = (453, 448, 447, 452)
_INSTRUMENT = (55, 65, 48, 22, 460, 461, 167, 200, 541, 207, 106, 107)
_TEXT = (58, 354, 355)
# MsgType -> body tags FIX 4.4 defines for it (besides the standard header and trailer)
ALLOWED: Mapping[str, frozenset[int]] = {
    t: frozenset(tags)
    for t, tags in {
        "0": (112,),
        "1": (112,),
        "2": (7, 16),
        "3": (45, 371, 372, 373, *_TEXT),
        "4": (123, 36),
        "5": _TEXT,
        "A": (98, 108, 95, 96, 141, 789, 383, 384, 372, 385, 464, 553, 554),
        "D": (11, 526, 583, 1, 660, 581, 589, 590, 591, 70, 78, 63, 64, 544, 21, 18, 110,
              111, 100, 386, 336, 625, 81, 114, *_PARTIES, *_INSTRUMENT, 140, 54, 60, 38, 152,
              516, 468, 469, 40, 423, 44, 99, 15, 376, 377, 23, 117, 59, 168, 432, 126, 427,
              528, 529, 582, 121, 120, 775, *_TEXT, 77, 203, 210, 211, 388, 389, 847, 848,
              849, 494),
        "F": (41, 37, 11, 526, 583, 586, 1, 660, 581, *_PARTIES, *_INSTRUMENT, 54, 60, 38,
              152, 516, 468, 469, 376, *_TEXT),
        "G": (37, 41, 11, 526, 583, 586, 1, 660, 581, 589, 590, 591, 70, 78, 63, 64, 544, 21,
              18, 110, 111, 100, 386, 336, 625, 81, *_PARTIES, *_INSTRUMENT, 54, 60, 38, 152,
              516, 468, 469, 40, 423, 44, 99, 15, 376, 377, 23, 117, 59, 168, 432, 126, 427,
              528, 529, 582, 121, 120, 775, *_TEXT, 77, 203, 210, 211, 388, 389, 494),
        "8": (37, 198, 526, 527, 11, 41, 583, 693, 790, 584, 911, 912, 66, 797, 17, 19, 150,
              39, 636, 103, 378, 1, 660, 581, 589, 590, 591, 70, 78, 63, 64, 544, 21, 18, 110,
              111, 100, 386, 81, *_PARTIES, *_INSTRUMENT, 54, 38, 152, 516, 468, 469, 40, 423,
              44, 99, 15, 376, 377, 23, 117, 59, 168, 432, 126, 427, 32, 31, 151, 14, 6, 424,
              425, 75, 60, 113, 29, 30, 336, 625, 12, 13, 479, 497, 528, 529, 582, 121, 120,
              775, 77, 203, 210, 211, 388, 389, *_TEXT),
        "9": (37, 198, 11, 526, 41, 583, 586, 66, 39, 636, 1, 660, 581, 434, 102, 60, 376,
              *_TEXT),
        "H": (37, 11, 526, 583, *_PARTIES, 790, 1, 660, *_INSTRUMENT, 54),
        "AF": (584, 585, *_PARTIES, 1, 660, 336, 625, *_INSTRUMENT, 54),
        "q": (11, 526, 530, 336, 625, *_INSTRUMENT, 54, 60, *_TEXT),
        "r": (11, 526, 37, 198, 530, 531, 532, 533, 534, 41, 535, 536, 336, 625, *_INSTRUMENT,
              54, 60, *_TEXT),
        "AN": (710, 724, 573, 263, *_PARTIES, 1, 660, 581, *_INSTRUMENT, 15, 715, 716, 717,
               60, 725, 726, 58),
        "AO": (721, 710, 727, 728, 729, 325, *_PARTIES, 1, 660, 581, *_INSTRUMENT, 15, 725,
               726, *_TEXT),
        "AP": (721, 710, 724, 263, 727, 728, 325, 715, 716, *_PARTIES, 1, 660, 581,
               *_INSTRUMENT, 15, 730, 731, 734, 702, 703, 704, 705, 706, 753, 707, 708, 506,
               *_TEXT),
        "j": (45, 372, 379, 380, *_TEXT),
        "AD": (568, 569, 263, 571, 150, 17, 37, 11, *_PARTIES, *_INSTRUMENT, 54, 60, 58),
    }.items()
}  # fmt: skip
# Tags that may repeat in one message: the fields of the repeating groups above
_GROUP_TAGS = frozenset({448, 447, 452, 703, 704, 705, 706, 707, 708, 41, 535, 536, 385, 372})
# FIX's user-defined tags: allowed where the venue agreed to them (a dialect's logon fields)
USER_DEFINED = range(5000, 10000)
# Side(54) values FIX 4.4 defines (kept for the callers that name it)
SIDES = frozenset(dictionary.ENUMS[54])


def problems(msg_type: str, fields: Fields) -> list[str]:
    """What is wrong with one message of `msg_type` holding `fields` (empty: conforms):
    a required tag missing, a tag the message type does not define, an enum value FIX 4.4
    does not list."""
    if msg_type not in REQUIRED or msg_type not in ALLOWED:
        return [f"MsgType {msg_type} is not in the conformance table"]
    found = [f"required tag {t} missing" for t in REQUIRED[msg_type] if t not in fields]
    found += [
        f"tag {t} not defined for {msg_type}"
        for t in fields
        if t not in ALLOWED[msg_type] and t not in HEADER and t not in USER_DEFINED
    ]
    if msg_type == "8" and str(fields.get(150)) in _TRADE_TAKEN_BACK and 19 not in fields:
        found.append("ExecRefID(19) missing from a trade bust or correction (150=H/G)")
    for tag, value in fields.items():
        values = dictionary.ENUMS.get(tag)
        if values is not None and str(value) not in values:
            found.append(f"{dictionary.TAGS.get(tag, tag)}({tag}) {value!r} is no FIX 4.4 value")
    return found


def message_problems(raw: bytes, *, redacted: bool = False) -> list[str]:
    """What is wrong with one encoded message (empty: conforms). `redacted`: credential
    values were replaced in it (message log), so BodyLength and CheckSum are not checked."""
    try:
        pairs = [(int(t), v) for t, _, v in (f.partition(b"=") for f in raw.split(b"\x01")[:-1])]
    except ValueError:
        return ["not tag=value"]
    tags = [t for t, _ in pairs]
    if tags[:3] != [8, 9, 35] or tags[-1] != 10:
        return ["header must start 8, 9, 35 and the message end with 10"]
    found = [f"header tag {t} missing" for t in HEADER_REQUIRED if t not in tags]
    found += [f"tag {t} appears more than once" for t, n in Counter(tags).items()
              if n > 1 and t not in _GROUP_TAGS]  # fmt: skip
    found += [f"tag {t} has no value" for t, v in pairs if not v]
    if not redacted:
        body_start = raw.index(b"\x01", raw.index(b"\x019=") + 1) + 1
        trailer = raw.rindex(b"\x0110=") + 1
        if int(pairs[1][1]) != trailer - body_start:
            found.append("BodyLength(9) wrong")
        if int(pairs[-1][1]) != sum(raw[:trailer]) & 0xFF:
            found.append("CheckSum(10) wrong")
    fields = {t: v.decode("latin-1") for t, v in pairs}
    return found + problems(fields[35], fields)


def assert_conforms(messages: Iterable[tuple[str, Fields]]) -> None:
    for msg_type, fields in messages:
        wrong = problems(msg_type, fields)
        assert not wrong, f"35={msg_type} {dict(fields)}: {wrong}"
