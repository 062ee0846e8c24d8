"""The wire schema: frozen, strict models, one `type` tag each, one discriminated union."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import BaseModel, ValidationError

from protocol.messages import (
    MESSAGE_ADAPTER,
    MESSAGE_TYPES,
    TERMINAL_STATUSES,
    OrderStatus,
    OrdType,
    PlaceOrder,
    Side,
    Stop,
    SubmitOrder,
)
from tests.protocol.samples import MESSAGE_CLASSES, build, message_type


def test_every_message_has_a_unique_type_tag() -> None:
    """One class per `type`; the tag set is what the codec accepts."""
    tags = [message_type(c) for c in MESSAGE_CLASSES]
    assert len(tags) == len(set(tags)) == len(MESSAGE_TYPES)
    assert set(tags) == set(MESSAGE_TYPES)


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=message_type)
def test_messages_are_frozen_and_forbid_extra_fields(cls: type[BaseModel]) -> None:
    """A message cannot be changed after construction and refuses unknown fields."""
    msg = build(cls)
    assert cls.model_config.get("frozen") is True
    assert cls.model_config.get("extra") == "forbid"
    field = (
        next(n for n in cls.model_fields if n != "type") if len(cls.model_fields) > 1 else "type"
    )
    with pytest.raises(ValidationError):
        setattr(msg, field, getattr(msg, field))
    with pytest.raises(ValidationError):
        cls(**{**msg.model_dump(exclude={"type"}), "unexpected": 1})


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=message_type)
def test_the_union_picks_the_class_by_type(cls: type[BaseModel]) -> None:
    """The TypeAdapter validates a JSON-mode dump back into the same class."""
    msg = build(cls)
    back = MESSAGE_ADAPTER.validate_python(msg.model_dump(mode="json"))
    assert type(back) is cls and back == msg


def test_prices_and_quantities_are_decimals() -> None:
    """Fields named qty/price/px are Decimal (optional or not), never float."""
    offenders = []
    for cls in MESSAGE_CLASSES:
        for name, info in cls.model_fields.items():
            if any(part in name.split("_") for part in ("qty", "price", "px")):
                text = repr(info.annotation)
                if "Decimal" not in text or "float" in text:
                    offenders.append(f"{cls.__name__}.{name}: {text}")
    assert not offenders


def test_decimal_dumps_as_string_keeping_digits() -> None:
    msg = PlaceOrder(
        cl_ord_id="A",
        symbol="AAPL",
        side=Side.SELL,
        qty=Decimal("10.500"),
        order_type=OrdType.LIMIT,
        price=Decimal("0.0001"),
    )
    dumped = msg.model_dump(mode="json")
    assert dumped["qty"] == "10.500" and dumped["price"] == "0.0001"


def test_submit_order_refuses_an_empty_client_order_id() -> None:
    with pytest.raises(ValidationError) as info:
        SubmitOrder(
            client_order_id="",
            venue="simA",
            symbol="AAPL",
            side=Side.BUY,
            qty=Decimal(1),
            order_type=OrdType.MARKET,
        )
    assert info.value.errors()[0]["loc"] == ("client_order_id",)


def test_unknown_enum_value_is_refused() -> None:
    with pytest.raises(ValidationError):
        MESSAGE_ADAPTER.validate_python(
            {"type": "place_order", "cl_ord_id": "A", "symbol": "AAPL", "side": "SHORT",
             "qty": "1", "order_type": "LIMIT"}
        )  # fmt: skip


def test_terminal_statuses() -> None:
    """Filled, cancelled, rejected and expired are final; UNKNOWN is not (it gets resolved)."""
    assert TERMINAL_STATUSES == {
        OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED,
    }  # fmt: skip
    assert OrderStatus.UNKNOWN not in TERMINAL_STATUSES


def test_message_with_only_defaults_builds() -> None:
    assert Stop().reason == "" and Stop().type == "stop"


def test_a_float_quantity_is_refused_on_the_wire() -> None:
    """Binary floating point never becomes a quantity: 1.5 as a msgpack float is a
    ProtocolError naming the field, the same value as a string is accepted."""
    import msgpack
    import pytest

    from protocol.codec import decode
    from protocol.exceptions import ProtocolError

    def frame(qty: object) -> list[bytes]:
        body = {
            "cl_ord_id": "A",
            "symbol": "AAPL",
            "side": "BUY",
            "qty": qty,
            "order_type": "MARKET",
            "price": None,
            "tif": "DAY",
        }
        env = {
            "v": 1,
            "type": "place_order",
            "sender": "t",
            "epoch": 1,
            "seq": 1,
            "id": "t:1",
            "corr": "",
            "ts_ns": 1,
            "body": body,
        }
        return [msgpack.packb(env, use_bin_type=True)]

    with pytest.raises(ProtocolError, match="qty"):
        decode(frame(1.5))
    assert str(decode(frame("1.5")).body.qty) == "1.5"  # type: ignore[union-attr]
