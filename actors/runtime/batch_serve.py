"""Serving a `Requests` (several requests in one message, `protocol.messages.Requests`):
each item is served exactly as the lone request it stands for, in order. It is decoded and
validated on its own (`protocol.codec.decode_item`: a malformed item is counted and logged
`bad_message` and gets no answer, as a malformed lone message gets none; its requester's
deadline decides), checked against the allowed senders on its own (`senders.refusal`:
refused NOT_ALLOWED, counted), and served through `Actor.serve` with a `Replier` for its
own id (an item that raises is answered INTERNAL and logged; the others are served). A
batch inside a batch is malformed."""

from __future__ import annotations

from typing import Protocol

from protocol.codec import Envelope, decode_item, item_envelope
from protocol.exceptions import ProtocolError
from protocol.messages import Requests


class BatchHost(Protocol):
    def count_bad(self, source: str, error: str) -> None: ...

    def serve_request(self, identity: list[bytes], env: Envelope) -> None:
        """`actors.runtime.actor.Actor.serve_request`: as a lone request."""
        ...

    def crash_point(self, name: str) -> None: ...


def serve_batch(host: BatchHost, identity: list[bytes], env: Envelope, batch: Requests) -> None:
    for n, item in enumerate(batch.requests):
        one = _item(env, item)
        if isinstance(one, ProtocolError):
            host.count_bad("requests", str(one))
            continue
        host.serve_request(identity, one)  # sender-checked and served as if alone
        if n == 0 and len(batch.requests) > 1:
            host.crash_point("mid_request_batch")  # tests: kill -9 inside a batch


def _item(env: Envelope, item: dict[str, object]) -> Envelope | ProtocolError:
    msg_id, mtype, body = item.get("id"), item.get("type"), item.get("body")
    if set(item) != {"id", "type", "body"} or not isinstance(msg_id, str) or not msg_id:
        return ProtocolError("requests: an item is {id, type, body}, with an id")
    if not isinstance(mtype, str) or mtype == "requests":
        return ProtocolError(f"requests: item type {str(mtype)[:64]!r} is not a request")
    try:
        msg = decode_item(mtype, body)
    except ProtocolError as exc:
        return exc
    return item_envelope(env, mtype, msg_id, "", msg)
