"""A newer core's messages, as the compatibility tests build them: the current encoder's
output with fields added that this client's schema does not have (tests/protocol/
test_newer_core.py, test_wire_compat.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from protocol.codec import Sender
from protocol.messages import OrderEvent, OrderStatus
from tests.protocol.event_stream_fakes import order_event

NEWER = {"bust_ref": "B-1", "core_build": {"v": [2, "x"]}}  # what a newer core adds


def newer(body: dict[str, Any], *nested: str) -> dict[str, Any]:
    """`body` as a newer core writes it: fields added at the top and inside `nested` (a
    field holding a model, or a list of models: in each)."""
    out = {**body, **NEWER}
    for name in nested:
        inner = out[name]
        out[name] = (
            [{**x, **NEWER} for x in inner] if isinstance(inner, list) else {**inner, **NEWER}
        )
    return out


def frame(mtype: str, body: dict[str, Any], corr: str = "") -> list[bytes]:
    return Sender("oms", 1).encode_body(mtype, body, corr)[1]


def filled_event(status: OrderStatus = OrderStatus.FILLED, seq: int = 1) -> OrderEvent:
    ev = order_event("o-1", seq, status)
    return ev.model_copy(update={"fill_qty": Decimal("1"), "fill_px": Decimal("95.5")})
