"""A client's submit, validated and written at once where the codec's fast path vouches
for it (issue 16): its fields are packed as the wire body, which the fast path's decoder
for `SubmitOrder` (`protocol.fastpath`) checks and builds. That body is what the client
sends: no pydantic validation, then no dump of what it validated (on the cold caches of a
latency-bound client ~24 us and ~10 us of a ~50 us submit, a pack and a msgspec decode
~10). Whatever the fast path does not take (a decimal not in plain form, an odd value,
the fast path off) is left to `SubmitOrder(...)`, whose answer or error stands: the
fast path never takes what pydantic refuses nor builds another value
(tests/protocol/test_client_submit.py checks both against `SubmitOrder(...)`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

import msgspec

from protocol import fastpath
from protocol.messages import SubmitOrder

_ENCODER: Final = msgspec.msgpack.Encoder()  # the codec's: the same bytes
_DECODER, _BUILD = fastpath.DECODERS[SubmitOrder.model_fields["type"].default]
# what `SubmitOrder(**fields)` marks as set: every field passed, not the `type` tag
_FIELDS_SET: Final = frozenset(SubmitOrder.model_fields) - {"type"}


def fast_submit(
    client_order_id: Any,
    venue: Any,
    symbol: Any,
    side: Any,
    qty: Decimal,
    order_type: Any,
    price: Decimal | None,
    tif: Any,
) -> tuple[SubmitOrder, msgspec.Raw] | None:
    """`SubmitOrder(...)` of these fields (the decimals already `Decimal`) and its wire
    body (`model_dump(mode="json", exclude={"type"})`, packed), or None where the fast path
    cannot vouch for them: then `SubmitOrder(...)` decides."""
    if not fastpath.ENABLED:
        return None
    try:
        raw = _ENCODER.encode(
            {"client_order_id": client_order_id, "venue": venue, "symbol": symbol, "side": side,
             "qty": str(qty), "order_type": order_type,
             "price": None if price is None else str(price), "tif": tif}
        )  # fmt: skip
        body = _BUILD(_DECODER.decode(raw))
    except Exception:  # noqa: BLE001 - not certain: pydantic decides (and raises)
        return None
    if type(body) is not SubmitOrder:  # pragma: no cover - the decoder's own model
        return None
    object.__setattr__(body, "__pydantic_fields_set__", set(_FIELDS_SET))
    return body, msgspec.Raw(raw)
