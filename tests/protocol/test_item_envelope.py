"""`protocol.codec.item_envelope` is `dataclasses.replace` of the four fields a batch item
changes, and knows every field an Envelope has."""

from __future__ import annotations

from dataclasses import fields, replace

from protocol.codec import Envelope, Sender, item_envelope
from protocol.messages import Ack


def test_item_envelope_equals_replace() -> None:
    env = Sender("connector.simA", 7).envelope(Ack(ref="batch"), corr_id="c0")
    body = Ack(ref="r1")
    ours = item_envelope(env, "ack", "m1", "r1", body)
    assert ours == replace(env, type="ack", msg_id="m1", corr_id="r1", body=body)
    assert ours.body is body


def test_every_envelope_field_is_carried() -> None:
    """A field added to Envelope must be taught to item_envelope (or it would drop it)."""
    assert [f.name for f in fields(Envelope)] == [
        "type", "sender", "epoch", "seq", "msg_id", "corr_id", "ts_ns", "body", "version",
    ]  # fmt: skip
    env = replace(Sender("oms", 1).envelope(Ack(ref="x")), version=99)
    assert item_envelope(env, "ack", "m", "c", Ack(ref="y")).version == 99
