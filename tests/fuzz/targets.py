"""The fuzz targets: one function per parser, `target(data: bytes) -> None`.

A target feeds `data` to the parser and checks its invariant; it raises (an
`InvariantBroken` or whatever escaped the parser) only when the invariant does not hold,
so any exception a fuzzer sees is a finding. Common to every target: only the documented
errors, no hang (the engines bound the time per input), no unbounded memory (the engines
bound RSS; the targets check the buffers they can see).

- ``envelope``: `protocol.codec.decode` of one frame raises only `ProtocolError`, and never
  through its catch-all (``undecodable message: ...`` means a check let something through
  that then blew up), with a bounded text (actors log it); a decoded message is what every
  actor gets, so it must encode again and decode to the same message.
- ``fix_frames``: the stream framer (`FrameReader`) and the tag=value parse. Bytes fed in
  any chunking come out as frames (each starting ``8=FIX``) plus counted junk plus a
  bounded rest, none lost or made up; `split_fields` raises only ValueError;
  `read_frame` always answers (Inbound, Garbled or BadHeader).
- ``fix_session``: the sans-I/O `FixSession`, as the connector's initiator (its
  application messages then go through the connector's mapping) or as the simulator's
  acceptor (through `venuesim.fixmap` and a real matching engine), fed a stream of frames
  (by default re-framed with a correct BodyLength and CheckSum, so mutations reach the
  session logic; or raw). `receive`/`tick`/`data_to_send` never raise and the session
  never takes its internal-error exit (``fix_session_internal_error``): the answers are a
  Reject, a Logout or a Disconnect; every byte it sends is a well-formed FIX frame.
- ``config``: `protocol.config.load_config` of any TOML text raises only `ConfigError`,
  whose text is one line naming the field.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from actors.connector.fix import codec as fc
from actors.connector.fix import mapping as fm
from actors.connector.fix.events import AppMessage, SessionRejectReceived
from actors.connector.fix.inbound import read_frame
from actors.connector.fix.session import FixSession
from actors.connector.fix.store import FixStore
from protocol import codec
from protocol.config import SimCfg, load_config
from protocol.exceptions import ConfigError, ProtocolError
from tests.log_stub import RecordingLog

# The session's peers in every `fix_session` input: we are OURS, the peer THEIRS.
OURS, THEIRS = "US", "THEM"
CLOCK_S = 1_700_000_000.0  # the session's wall clock (seed SendingTimes match it)
VENUE = "fuzzvenue"
_MAX_READER_REST = 1 << 20  # FrameReader's max_msg_bytes (its default)


class InvariantBroken(AssertionError):
    """A target's invariant does not hold for this input."""


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise InvariantBroken(what)


# -- envelope --------------------------------------------------------------------------------


def envelope(data: bytes) -> None:
    """The core's strict reading and a client's tolerant one (`protocol.compat`): each
    refuses with a `ProtocolError` naming the problem or decodes what survives a re-encode;
    what the strict one takes, the tolerant one reads the same."""
    strict = _envelope(data, tolerant=False)
    tolerant = _envelope(data, tolerant=True)
    if strict is not None:
        _check(tolerant is not None and tolerant.body == strict.body,
               f"a client reads otherwise the {strict.type} the core takes")  # fmt: skip


def _envelope(data: bytes, *, tolerant: bool) -> codec.Envelope | None:
    try:
        env = codec.decode([data], tolerant=tolerant)
    except ProtocolError as exc:
        text = str(exc)
        _check(not text.startswith("undecodable message"), f"decode catch-all: {text}")
        _check(len(text) <= 600, f"error text of {len(text)} characters (it is logged)")
        return None
    again = codec.decode(codec.encode(env))
    _check(again.body == env.body, f"{env.type} does not survive encode/decode")
    return env


# -- FIX frames --------------------------------------------------------------------------------


def fix_frames(data: bytes) -> None:
    if not data:
        return
    chunk = 1 + data[0] % 64  # the stream arrives in chunks of this size
    stream = data[1:]
    reader = fc.FrameReader()
    out = rest = 0
    for i in range(0, len(stream), chunk):
        reader.feed(stream[i : i + chunk])
        while (frame := reader.next_frame()) is not None:
            _check(frame.raw.startswith(b"8=FIX"), f"frame not at 8=FIX: {frame.raw[:20]!r}")
            out += len(frame.raw)
            _parse_frame(frame)
        rest = len(reader._buf)  # noqa: SLF001 - the bound is on the private buffer
        _check(rest <= _MAX_READER_REST + chunk, f"reader keeps {rest} bytes")
    _check(out + rest <= len(stream), "the reader made bytes up")


def _parse_frame(frame: fc.Frame) -> None:
    try:
        pairs = fc.split_fields(frame.raw)
    except ValueError:
        pass
    else:
        _check(all(tag.isdigit() and value for tag, value in pairs), "bad pair out of split_fields")
    read_frame(frame, ours=OURS.encode(), theirs=THEIRS.encode())


# -- FIX session -------------------------------------------------------------------------------


def frame_body(body: bytes) -> bytes:
    """A FIX frame around `body` (the fields after BodyLength) with a correct BodyLength
    and CheckSum."""
    msg = b"8=FIX.4.4\x019=%d\x01%s" % (len(body), body)
    return msg + b"10=%03d\x01" % (sum(msg) & 0xFF)


class _Dirs:
    """One scratch dir per process; each input gets a fresh subdir (inputs stay independent)."""

    root: Path | None = None
    count = 0

    @classmethod
    def fresh(cls) -> Path:
        if cls.root is None:
            base = "/dev/shm" if os.path.isdir("/dev/shm") else None
            cls.root = Path(tempfile.mkdtemp(prefix="tp-fuzz-", dir=base))
            atexit.register(shutil.rmtree, cls.root, ignore_errors=True)
        cls.count += 1
        return cls.root / str(cls.count)


def fix_session(data: bytes) -> None:
    if not data:
        return
    flags, records = data[0], data[1:].split(b"\n")
    initiator, reframe, reset = not flags & 1, not flags & 2, bool(flags & 4)
    work = _Dirs.fresh()
    mono = [1000.0]
    log = RecordingLog()
    store = FixStore(work / "fix", fsync=False)
    app: Callable[[AppMessage], None]
    if initiator:
        app = _connector_app
        sim = None
    else:
        sim = _SimVenue(work / "sim")
        app = sim.handle
    try:
        session = FixSession(
            sender_comp_id=OURS,
            target_comp_id=THEIRS,
            store=store,
            initiator=initiator,
            heartbeat_s=30,
            clock=lambda: CLOCK_S,
            monotonic=lambda: mono[0],
            log=log,
            max_junk_bytes=4096,
        )
        if initiator:
            session.logon(reset=reset)
        else:
            session.connection_made()
        _check_out(session.data_to_send())
        for record in records:
            if session.state == "closed":
                break
            wire = frame_body(record) if reframe else record
            for event in session.receive(wire):
                if isinstance(event, AppMessage):
                    app(event)
                elif isinstance(event, SessionRejectReceived):
                    fm.session_reject_text(event)
            _check_out(session.data_to_send())
            mono[0] += 1 + (record[-1] if record else 0)
            session.tick()
            _check_out(session.data_to_send())
        session.connection_lost()
        _check("fix_session_internal_error" not in log.names(), "session internal error")
    finally:
        store.close()
        if sim is not None:
            sim.close()
        shutil.rmtree(work, ignore_errors=True)


def _check_out(data: bytes) -> None:
    """Every byte the session sends is a well-formed FIX frame for the peer."""
    reader = fc.FrameReader()
    reader.feed(data)
    while (frame := reader.next_frame()) is not None:
        _check(frame.error is None, f"we sent a frame with {frame.error}: {frame.raw[:80]!r}")
        fc.split_fields(frame.raw)  # ValueError: we sent a field that is not tag=value
    _check(reader.junk_bytes == 0 and not reader._buf, f"we sent junk: {data[:80]!r}")  # noqa: SLF001


def _connector_app(event: AppMessage) -> None:
    """What the connector does with an application message (actors/connector/fix)."""
    msg = event.msg
    if event.msg_type == "8":
        fm.to_exec_report(msg, VENUE)
        fm.to_venue_order(msg)
    elif event.msg_type == "9":
        fm.cancel_reject_report(msg, VENUE)
    elif event.msg_type == "AP":
        with contextlib.suppress(fm.UnreadableField):  # the query fails on it (fix queries)
            fm.to_position(msg, VENUE)
    elif event.msg_type == "j":
        fm.business_reject_text(msg)


class _SimVenue:
    """The simulator's matching engine behind the acceptor (actors/venuesim)."""

    def __init__(self, state_dir: Path) -> None:
        from decimal import Decimal

        from actors.venuesim import SimStore, Venue

        cfg = SimCfg(reference_prices={"AAPL": Decimal("100")}, volatility_bps=0.0)
        self.store = SimStore.open(state_dir, book_id="fz")
        self.venue = Venue("sim", cfg, self.store, seed=7)
        self.now_ns = int(CLOCK_S * 1e9)

    def handle(self, event: AppMessage) -> None:
        from actors.venuesim import fixmap

        self.now_ns += 1000
        outs = fixmap.handle(self.venue, event.msg_type, event.msg, event.seq, self.now_ns)
        for out in outs:  # every answer must be encodable: no empty value, no SOH
            fc.encode(out.msg_type, [], [(t, fc.fix_value(v)) for t, v in out.pairs()])

    def close(self) -> None:
        self.store.close()


# -- config ------------------------------------------------------------------------------------


def config(data: bytes) -> None:
    work = _Dirs.fresh()
    work.mkdir(parents=True)
    path = work / "fuzz.toml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as exc:
        text = str(exc)
        _check("\n" not in text, f"config error over more than one line: {text!r}")
        _check(bool(exc.field), f"config error names no field: {text!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "envelope": envelope,
    "fix_frames": fix_frames,
    "fix_session": fix_session,
    "config": config,
}
