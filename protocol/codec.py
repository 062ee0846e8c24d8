"""msgpack framing of an envelope. Every decode failure is a `ProtocolError`.

Wire format: one frame, a msgpack map
`{v, type, sender, epoch, seq, id, corr, ts_ns, body}` where `body` is the message's
fields without its `type` tag. ROUTER sockets prepend identity frames; callers strip them
before `decode`.

A hostile frame is bounded before anything looks at its values: at most `MAX_FRAME_BYTES`
(the sockets refuse bigger ones at the transport too) and containers nested at most
`MAX_DEPTH` deep (a 1,010-deep map crashed the log renderer of the supervisor), holding
only what our encoder writes (text keys; text, numbers, booleans, nil; finite floats).
Its decode cost is bounded too: at most `MAX_CONTAINERS` maps and arrays and `MAX_ELEMENTS`
elements (map entries and array items), counted while msgpack unpacks and refused as soon
as a budget is crossed (a 4 MiB list of 4M zeros took 0.55 s to check; five of them got the
OMS hang-killed). The budgets fit the densest message we send at the frame limit: a page or
snapshot of orders costs 1 container and 16 elements per order in >= 173 bytes, positions 1
and 5 in >= 48 bytes: at 4 MiB, 24k orders or 87k positions (tests/protocol/test_codec.py
decodes both at the frame limit).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import msgspec
from pydantic import ValidationError

from protocol import compat, fastpath, wire_out
from protocol.exceptions import ProtocolError
from protocol.messages import MESSAGE_ADAPTER, MESSAGE_TYPES, Message

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 32  # nested maps/arrays in one envelope; ours go 5 deep
MAX_CONTAINERS = 1 << 17  # maps and arrays in one envelope (decode cost: see the docstring)
MAX_ELEMENTS = 1 << 19  # map entries plus array items in one envelope
_HEADER_TYPES: dict[str, type | tuple[type, ...]] = {
    "v": int,
    "type": str,
    "sender": str,
    "epoch": int,
    "seq": int,
    "id": str,
    "corr": str,
    "ts_ns": int,
    "body": dict,
}


@dataclass(frozen=True, slots=True)
class Envelope:
    type: str
    sender: str
    epoch: int
    seq: int
    msg_id: str
    corr_id: str
    ts_ns: int
    body: Message
    version: int = PROTOCOL_VERSION


def item_envelope(env: Envelope, type_: str, msg_id: str, corr_id: str, body: Message) -> Envelope:
    """`dataclasses.replace(env, type=type_, msg_id=msg_id, corr_id=corr_id, body=body)`: one
    item of a batch as its own envelope (an order's Ack of an `Acks`, an item of a
    `Requests`), built directly (~0.9 us; `replace` ~1.9 us: its field walk and getattrs)."""
    return Envelope(type_, env.sender, env.epoch, env.seq, msg_id, corr_id, env.ts_ns, body,
                    env.version)  # fmt: skip


class Sender:
    """Stamps outgoing envelopes for one actor incarnation: sender, epoch, sequence, ids."""

    def __init__(self, name: str, epoch: int) -> None:
        self.name = name
        self.epoch = epoch
        self._seq = itertools.count(1)
        self._prefix = f"{name}:{epoch}:{os.getpid()}:"

    def envelope(self, body: Message, corr_id: str = "") -> Envelope:
        seq = next(self._seq)
        return Envelope(
            type=body.type,
            sender=self.name,
            epoch=self.epoch,
            seq=seq,
            msg_id=self._prefix + str(seq),
            corr_id=corr_id,
            ts_ns=time.time_ns(),
            body=body,
        )

    def next_id(self) -> str:
        """A message id of this sender, for a request inside a batch (`Requests`)."""
        return self._prefix + str(next(self._seq))

    def encode(self, body: Message, corr_id: str = "") -> list[bytes]:
        """`encode(self.envelope(body, corr_id))`, without building the Envelope."""
        return self.encode_body(body.type, wire_out.dump(body), corr_id)[1]

    def encode_body(
        self, type_: str, body: dict[str, Any] | msgspec.Raw, corr_id: str = ""
    ) -> tuple[str, list[bytes]]:
        """(message id, frames) of a message whose wire body is already written: `body` is
        what `model_dump(mode="json", exclude={"type"})` gives (`protocol.wire_out`), or
        that map already packed (`msgspec.Raw`)."""
        seq = next(self._seq)
        msg_id = self._prefix + str(seq)
        packed = _ENCODER.encode(
            {"v": PROTOCOL_VERSION, "type": type_, "sender": self.name, "epoch": self.epoch,
             "seq": seq, "id": msg_id, "corr": corr_id, "ts_ns": time.time_ns(), "body": body}
        )  # fmt: skip
        return msg_id, [packed]


_ENCODER = msgspec.msgpack.Encoder()  # the same bytes as msgpack.packb (test_fastpath)


def encode(env: Envelope) -> list[bytes]:
    body = wire_out.dump(env.body)  # model_dump(mode="json", exclude={"type"}), faster
    packed = _ENCODER.encode(
        {
            "v": env.version,
            "type": env.type,
            "sender": env.sender,
            "epoch": env.epoch,
            "seq": env.seq,
            "id": env.msg_id,
            "corr": env.corr_id,
            "ts_ns": env.ts_ns,
            "body": body,
        }
    )
    return [packed]


def decode(
    frames: Sequence[bytes | memoryview | Any], *, fast: bool = True, tolerant: bool = False
) -> Envelope:
    """Decode one envelope; raise `ProtocolError` naming what was wrong, never anything else.
    `fast=False`: pydantic only, never `protocol.fastpath` (tests and benchmarks compare).
    `tolerant`: a client's reading of what the core sends: fields a client-read message's
    schema does not have are ignored (`protocol.compat`; the core's own readings: never)."""
    try:
        return _decode(frames, fast and fastpath.ENABLED, tolerant)
    except ProtocolError as exc:
        if tolerant:
            compat.refused(str(exc))
        raise
    except Exception as exc:  # noqa: BLE001 - the contract is: only ProtocolError escapes
        raise ProtocolError(f"undecodable message: {type(exc).__name__}: {exc}") from exc


def _decode(frames: Sequence[Any], fast: bool, tolerant: bool = False) -> Envelope:
    if len(frames) != 1:
        raise ProtocolError(f"expected 1 frame, got {len(frames)}")
    raw = frames[0]
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raw = getattr(raw, "bytes", None)
        if raw is None:
            raise ProtocolError("frame is not bytes")
    if len(raw) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(raw)} bytes is over the {MAX_FRAME_BYTES} byte limit")
    try:  # a hot message type, validated by msgspec (protocol.fastpath)
        hot = fastpath.decode_fast(raw) if fast else None
    except Exception:  # noqa: BLE001 - the fast path cannot vouch for it: the full path decides
        hot = _tolerant_fast(raw) if tolerant else None
    if hot is not None and hot[0].v == PROTOCOL_VERSION:
        head, msg = hot
        return Envelope(head.type, head.sender, head.epoch, head.seq, head.id, head.corr,
                        head.ts_ns, msg, head.v)  # fmt: skip
    budget = _Budget()
    try:
        obj = msgpack.unpackb(
            raw,
            raw=False,
            strict_map_key=True,
            max_array_len=MAX_ELEMENTS,
            max_map_len=MAX_ELEMENTS,
            max_str_len=MAX_FRAME_BYTES,
            max_bin_len=MAX_FRAME_BYTES,
            object_hook=budget.map,
            list_hook=budget.array,
        )
    except ProtocolError:
        raise
    except Exception as exc:  # noqa: BLE001 - msgpack raises several unrelated types
        raise ProtocolError(f"not msgpack: {type(exc).__name__}: {str(exc)[:100]}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"envelope must be a map, got {type(obj).__name__}")
    for key, typ in _HEADER_TYPES.items():
        if key not in obj:
            raise ProtocolError(f"envelope field {key!r} missing")
        value = obj[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ProtocolError(f"envelope field {key!r} has type {type(value).__name__}")
    extra = obj.keys() - _HEADER_TYPES.keys()
    if extra:
        raise ProtocolError(f"envelope has unknown fields {sorted(map(str, extra))}")
    _check_shape(obj["body"])
    if obj["v"] != PROTOCOL_VERSION:
        raise ProtocolError(f"unsupported protocol version {obj['v']}")
    mtype = obj["type"]
    if mtype not in MESSAGE_TYPES:
        raise ProtocolError(f"unknown message type {mtype!r}")
    body = obj["body"]
    if "type" in body:
        raise ProtocolError("body must not repeat 'type'")
    if tolerant:
        body = compat.prune(mtype, body)
    try:
        msg = MESSAGE_ADAPTER.validate_python({"type": mtype, **body})
    except ValidationError as exc:
        raise _invalid(mtype, exc) from exc
    return Envelope(
        type=mtype,
        sender=obj["sender"],
        epoch=obj["epoch"],
        seq=obj["seq"],
        msg_id=obj["id"],
        corr_id=obj["corr"],
        ts_ns=obj["ts_ns"],
        body=msg,
        version=obj["v"],
    )


def _tolerant_fast(raw: Any) -> tuple[Any, Message] | None:
    """(header, body) of a frame the strict fast path refused, its unknown fields ignored
    (`protocol.compat.decode_body`); None: the full path decides."""
    try:
        head = fastpath.HEADER_DECODER.decode(raw)
    except Exception:  # noqa: BLE001 - the full path decides (and names the problem)
        return None
    msg = compat.decode_body(head.type, head.body)
    return None if msg is None else (head, msg)


def decode_item(mtype: str, body: Any, *, fast: bool = True, tolerant: bool = False) -> Message:
    """One item of a batch message (e.g. an `ExecReports`' report): the body of a lone
    message of type `mtype`, decoded and validated exactly as that message's body would be
    (the fast path when it vouches for it, else pydantic, with the same errors); raise
    `ProtocolError` naming what was wrong, never anything else. The envelope around it
    was decoded already, so its size and shape were checked (`_check_shape`). `tolerant`:
    as `decode`'s."""
    try:
        if not isinstance(body, dict):
            raise ProtocolError(f"{mtype}: item must be a map, got {type(body).__name__}")
        if "type" in body:
            raise ProtocolError("body must not repeat 'type'")
        entry = fastpath.DECODERS.get(mtype) if fast and fastpath.ENABLED else None
        if entry is not None:
            decoder, build = entry
            packed = b""
            try:  # the item's own bytes, as they travel alone: the same decoder decides
                packed = _ENCODER.encode(body)
                hot: Message = build(decoder.decode(packed))
                return hot
            except Exception:  # noqa: BLE001 - the fast path cannot vouch: pydantic decides
                relaxed = compat.decode_body(mtype, packed) if tolerant and packed else None
                if relaxed is not None:
                    return relaxed
        if tolerant:
            body = compat.prune(mtype, body)
        try:
            return MESSAGE_ADAPTER.validate_python({"type": mtype, **body})
        except ValidationError as exc:
            raise _invalid(mtype, exc) from exc
    except ProtocolError as exc:
        if tolerant:
            compat.refused(str(exc))
        raise
    except Exception as exc:  # noqa: BLE001 - the contract is: only ProtocolError escapes
        raise ProtocolError(f"undecodable {mtype}: {type(exc).__name__}: {exc}") from exc


def _invalid(mtype: str, exc: ValidationError) -> ProtocolError:
    """The first error of a body's validation, naming the field; a value an enum or a
    literal does not take is quoted (a newer build's member, e.g. an order status: the
    reader's log says which, not only which it knows)."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"][1:]) or "body"
    got = err.get("input")
    if err["type"] in ("enum", "literal_error") and isinstance(got, str):
        return ProtocolError(f"{mtype}: field {loc!r}: {got[:40]!r} unknown: {err['msg']}")
    return ProtocolError(f"{mtype}: field {loc!r}: {err['msg']}")


_SCALARS = (str, int, float, bool, type(None))


class _Budget:
    """Counts containers and elements as msgpack builds them; raises once over budget."""

    def __init__(self) -> None:
        self.containers = self.elements = 0

    def _add(self, n: int) -> None:
        self.containers += 1
        self.elements += n
        if self.containers > MAX_CONTAINERS:
            raise ProtocolError(f"message has more than {MAX_CONTAINERS} maps and arrays")
        if self.elements > MAX_ELEMENTS:
            raise ProtocolError(f"message has more than {MAX_ELEMENTS} elements")

    def map(self, d: dict[str, Any]) -> dict[str, Any]:
        self._add(len(d))
        return d

    def array(self, a: list[Any]) -> list[Any]:
        self._add(len(a))
        return a


def _check_shape(body: dict[str, Any]) -> None:
    """Refuse containers nested deeper than `MAX_DEPTH` (the envelope counts as one level;
    iteratively: no recursion), and anything our encoder never writes: map keys that are
    not text, bytes, msgpack extension types, non-finite floats. A free-form map (`data`,
    `info`) would carry them into the actors, where they do not survive a re-encode (found
    by fuzzing, tests/fuzz). The error names the field (dotted, from the body)."""
    stack: list[tuple[Any, int, tuple[object, ...]]] = [(body, 2, ())]
    while stack:
        item, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise ProtocolError(f"message nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                raise ProtocolError(f"field {_dotted(path) or 'body'!r}: map keys must be text")
            children: Iterable[tuple[object, Any]] = item.items()
        else:
            children = enumerate(item)
        for key, c in children:
            if isinstance(c, (dict, list)):
                stack.append((c, depth + 1, (*path, key)))
            elif isinstance(c, float) and not math.isfinite(c) or not isinstance(c, _SCALARS):
                top, rest = str((*path, key)[0]), _dotted((*path, key)[1:])
                at = f" (at {top}.{rest})" if rest else ""
                raise ProtocolError(f"field {top!r}: {_describe(c)} is not allowed{at}")


def _dotted(path: tuple[object, ...]) -> str:
    """The field path as the errors name it (keys that contain dots stay whole)."""
    return ".".join(map(str, path))


def _describe(value: Any) -> str:
    if isinstance(value, float):
        return "a non-finite number"
    return f"a value of type {type(value).__name__}"
