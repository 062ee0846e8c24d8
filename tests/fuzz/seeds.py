"""Seed corpora: valid inputs of each target, for the fuzzers to mutate from (so they get
deep: a random byte string is rarely a msgpack envelope or a FIX message with a good
checksum). Built from the real thing: every wire message (tests.protocol.samples), FIX
messages as the venue and the connector send them, the shipped deploy/config/*.toml."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from actors.connector.fix import codec as fc
from protocol import codec
from tests.fuzz.targets import CLOCK_S, OURS, THEIRS, frame_body
from tests.protocol.samples import MESSAGE_CLASSES, build

ROOT = Path(__file__).resolve().parents[2]
_TS = fc.sending_time(CLOCK_S).encode()


def envelope() -> list[bytes]:
    out = []
    sender = codec.Sender("oms", 3)
    for cls in MESSAGE_CLASSES:
        for full in (True, False):
            out += sender.encode(build(cls, full=full), corr_id="c-1")
    return out


def _body(msg_type: str, seq: int, fields: Sequence[tuple[int, str]] = ()) -> bytes:
    """A peer's message body (after BodyLength): header to us, then `fields`."""
    head = [(35, msg_type), (49, THEIRS), (56, OURS), (34, str(seq)), (52, _TS.decode())]
    return b"".join(b"%d=%s\x01" % (tag, value.encode()) for tag, value in [*head, *fields])


_EXEC = [(37, "O1"), (11, "c-1"), (17, "E1"), (150, "F"), (39, "2"), (55, "AAPL"), (54, "1")]
_EXEC += [(38, "10"), (40, "2"), (44, "100.5"), (151, "0"), (14, "10"), (6, "100.5")]
_EXEC += [(31, "100.5"), (32, "10"), (60, _TS.decode())]
_VENUE_SAYS = [  # what a venue sends the connector (after its Logon)
    ("8", _EXEC),
    ("8", [*_EXEC[:3], (150, "0"), (39, "0"), *_EXEC[5:13], (6, "0"), (60, _TS.decode())]),
    ("9", [(37, "O1"), (11, "c-2"), (41, "c-1"), (39, "0"), (434, "1"), (102, "1"), (58, "x")]),
    ("AP", [(721, "P1"), (710, "r1"), (1, "ACC"), (55, "AAPL"), (702, "1"), (704, "5")]),
    ("j", [(45, "3"), (372, "D"), (380, "3"), (58, "Unsupported")]),
    ("0", []),
    ("1", [(112, "T1")]),
    ("2", [(7, "1"), (16, "0")]),
    ("3", [(45, "2"), (372, "D"), (373, "1"), (58, "Required tag missing"), (371, "54")]),
    ("4", [(123, "Y"), (36, "12")]),  # the next is 12
    ("B", [(148, "headline"), (61, "0")]),
    ("h", [(336, "1"), (340, "2")]),
    ("5", [(58, "bye")]),
]
_ORDER = [(11, "c-1"), (55, "AAPL"), (54, "1"), (38, "10"), (40, "2"), (44, "100")]
_ORDER += [(59, "0"), (60, _TS.decode())]
_CLIENT_SAYS = [  # what the connector sends a venue (after its Logon)
    ("D", _ORDER),
    ("F", [(11, "c-2"), (41, "c-1"), (55, "AAPL"), (54, "1"), (38, "10"), (60, _TS.decode())]),
    ("G", [(11, "c-3"), (41, "c-1"), *_ORDER[1:]]),
    ("H", [(11, "c-1"), (55, "AAPL"), (54, "1")]),
    ("AF", [(584, "m1"), (585, "7")]),
    ("AN", [(710, "p1"), (724, "0"), (1, "SIM"), (581, "1"), (715, "20231114"), (60, "x")]),
    ("q", [(11, "mc1"), (530, "7"), (60, _TS.decode())]),
    ("0", []),
    ("1", [(112, "T1")]),
    ("2", [(7, "1"), (16, "0")]),
    ("4", [(123, "Y"), (36, "13")]),  # the next is 13
    ("5", []),
]


def _session(flags: int, logon: Sequence[tuple[int, str]], says: list[tuple[str, list]]) -> bytes:
    bodies = [_body("A", 1, logon)]
    bodies += [_body(t, seq, fields) for seq, (t, fields) in enumerate(says, start=2)]
    return bytes([flags]) + b"\n".join(bodies)


def fix_session() -> list[bytes]:
    logon = [(98, "0"), (108, "30")]
    out = [
        _session(0, logon, _VENUE_SAYS),  # initiator, re-framed
        _session(4, [*logon, (141, "Y")], _VENUE_SAYS),  # initiator, reset logon
        _session(1, logon, _CLIENT_SAYS),  # acceptor, re-framed
        _session(5, [*logon, (141, "Y"), (553, "user")], _CLIENT_SAYS),
    ]
    for flags in (0, 1):  # the same, raw: frames as on the wire, one per chunk
        says = _VENUE_SAYS if flags == 0 else _CLIENT_SAYS
        frames = [frame_body(_body("A", 1, logon))]
        frames += [frame_body(_body(t, s, f)) for s, (t, f) in enumerate(says, start=2)]
        out.append(bytes([flags | 2]) + b"\n".join(frames))
    return out


def fix_frames() -> list[bytes]:
    frames = [frame_body(_body(t, s, f)) for s, (t, f) in enumerate(_VENUE_SAYS, start=1)]
    frames += [frame_body(_body(t, s, f)) for s, (t, f) in enumerate(_CLIENT_SAYS, start=1)]
    raw_data = frame_body(_body("B", 1, [(148, "h"), (95, "5"), (96, "a\x01b=c")]))
    stream = b"".join(frames)
    return [
        bytes([63]) + stream,
        bytes([0]) + stream,
        bytes([7]) + b"junk" + frames[0] + b"\x00\xff" + frames[1][:-3] + b"999\x01" + frames[2],
        bytes([12]) + raw_data + frames[3],
    ]


def config() -> list[bytes]:
    shipped = sorted((ROOT / "deploy" / "config").glob("*.toml"))
    return [p.read_bytes() for p in shipped] + [b"", b'[system]\nname = "x"\n']


SEEDS = {"envelope": envelope, "fix_frames": fix_frames, "fix_session": fix_session}
SEEDS["config"] = config
