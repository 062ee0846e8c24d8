"""One value must not crash an actor (issue 15, section 2), at the protocol boundary:
every quantity and price of every message is a bounded decimal, every string a client
sends towards FIX is printable ASCII without SOH or "=", every config float is finite
(with an upper bound where a huge value would switch a safety off), and control commands
take their arguments by type."""

from __future__ import annotations

import decimal
import math
from decimal import Decimal
from typing import Annotated, Any, get_args, get_origin

import msgpack
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from actors.risk import killswitch
from protocol import backoff_config, domain, fix_config
from protocol import config as config_mod
from protocol.codec import Sender, decode, encode
from protocol.commands import parse_command
from protocol.config import SystemConfig, parse_config
from protocol.exceptions import ConfigError, ProtocolError
from protocol.messages import MESSAGE_ADAPTER, Message, OrdType, Side, SubmitOrder

# every finite decimal of up to 32 digits, both signs, exponents around the bounds
FINITE_DECIMALS = st.builds(
    lambda digits, exponent, negative: Decimal((int(negative), tuple(digits), exponent)),
    st.lists(st.integers(0, 9), min_size=1, max_size=32),
    st.integers(-70, 25),
    st.booleans(),
)

HOSTILE_DECIMALS = ["1e999999999", "9E+999999", "NaN", "sNaN", "Infinity", "-inf",
                    "1" * 40, "1e-999999999", "0E-1000"]  # fmt: skip
GOOD_DECIMALS = ["0", "100.25", "0.00000001", "123456789012.123456", "1E+18",
                 "0.1234567890123456789012345678"]  # fmt: skip


def _models(
    root: type[BaseModel], seen: set[type[BaseModel]] | None = None
) -> set[type[BaseModel]]:
    """`root` and every model its fields hold, at any depth."""
    seen = set() if seen is None else seen
    if root in seen:
        return seen
    seen.add(root)
    for field in root.model_fields.values():
        for t in _types(field.annotation):
            if isinstance(t, type) and issubclass(t, BaseModel):
                _models(t, seen)
    return seen


def _types(annotation: Any) -> list[Any]:
    args = get_args(annotation)
    if not args:
        return [annotation]
    if get_origin(annotation) is Annotated:
        return _types(args[0])
    return [t for a in args for t in _types(a)]


def _annotation(field: FieldInfo) -> Any:
    """The field's type with its constraints, as a TypeAdapter takes it."""
    if not field.metadata:
        return field.annotation
    return Annotated[(field.annotation, *field.metadata)]  # type: ignore[valid-type]


def _message_models() -> set[type[BaseModel]]:
    union = get_args(get_args(Message)[0])
    found: set[type[BaseModel]] = set()
    for model in union:
        _models(model, found)
    return found


def _decimal_fields() -> list[Any]:
    out = []
    for model in sorted(_message_models(), key=lambda m: m.__name__):
        for name, field in model.model_fields.items():
            if Decimal in _types(field.annotation):
                where = f"{model.__name__}.{name}"
                out.append(pytest.param(where, _annotation(field), id=where))
    return out


@pytest.mark.parametrize(("where", "annotation"), _decimal_fields())
def test_every_decimal_field_of_every_message_is_bounded(where: str, annotation: Any) -> None:
    """Every qty / price / amount field of every message (client, OMS, venue) refuses
    1e999999999, NaN, infinities, 40 digits and absurd exponents, and takes real values."""
    adapter = TypeAdapter(annotation)
    for text in HOSTILE_DECIMALS:
        with pytest.raises(ValidationError):
            adapter.validate_python(text)
    for text in GOOD_DECIMALS:
        assert adapter.validate_python(text) == Decimal(text)


def test_a_submit_with_qty_1e999999999_is_refused_at_decode_naming_the_field() -> None:
    """The frame a hostile client sends (no client-side check) is a ProtocolError at
    decode that names `qty`: it never reaches the journal or risk."""
    env = Sender("c", 1).envelope(SubmitOrder(
        client_order_id="c1", venue="simA", symbol="AAPL", side=Side.BUY, qty=Decimal(1),
        order_type=OrdType.LIMIT, price=Decimal(100)))  # fmt: skip
    obj = msgpack.unpackb(encode(env)[0])
    for bad in ("1e999999999", "NaN", "-Infinity"):
        obj["body"]["qty"] = bad
        with pytest.raises(ProtocolError, match="qty"):
            decode([msgpack.packb(obj)])


def test_check_decimal_bounds_are_those_documented() -> None:
    assert (
        domain.check_decimal(Decimal("9.999E+18"))
        and domain.check_decimal(Decimal("1E-60")) is not None
    )
    for bad in ("1E+19", "1E-61", "1" * 29):
        with pytest.raises(ValueError):
            domain.check_decimal(Decimal(bad))


def _bounds_as_documented(value: Decimal) -> bool:
    """The module docstring's bounds, the slow way (the fast path in `check_decimal` must
    agree): finite, <= 28 significant digits, |value| < 1e19, no digit finer than 1e-60."""
    if not value.is_finite():
        return False
    if value == 0:
        exponent = value.as_tuple().exponent
        assert isinstance(exponent, int)
        return domain.MIN_EXPONENT <= exponent <= domain.MAX_ADJUSTED
    with decimal.localcontext() as exact:  # the default 28 digits would round a 29-digit
        exact.prec = 100  # value (found by hypothesis: 1000000000000000000.0000000001)
        digits = str(abs(value.scaleb(-value.adjusted())).normalize()).replace(".", "")
    lowest = value.adjusted() - len(digits) + 1  # the exponent of the last nonzero digit
    return (
        len(digits) <= domain.MAX_DIGITS
        and value.adjusted() <= domain.MAX_ADJUSTED
        and lowest >= domain.MIN_EXPONENT
    )


@given(FINITE_DECIMALS)
@example(Decimal("1E+19"))
@example(Decimal("10E+18"))
@example(Decimal("1" * 28 + "0"))
@example(Decimal("0E-61"))
@example(Decimal("0E+19"))
@example(Decimal("1000E-63"))
@example(Decimal("1000000000000000000.0000000001"))
def test_check_decimal_takes_exactly_the_documented_values(value: Decimal) -> None:
    """The fast path (a value within the bounds before its trailing zeros are dropped) takes
    nothing the full check refuses and refuses nothing it takes."""
    try:
        taken = domain.check_decimal(value) is value
    except ValueError:
        taken = False
    assert taken == _bounds_as_documented(value), value


@pytest.mark.parametrize(
    "symbol", ["AAPL\x0155=MSFT", "AAPL\x01", " AAPL", "AAPL ", "AAPL\n", "ÄPL", "", "X" * 33]
)
def test_a_symbol_that_fix_cannot_carry_is_refused_at_intake(symbol: str) -> None:
    """Symbols reach FIX (55): printable ASCII (never an SOH), no leading or trailing
    space, bounded."""
    with pytest.raises(ValidationError):
        SubmitOrder(client_order_id="c1", venue="simA", symbol=symbol, side=Side.BUY,
                    qty=Decimal(1), order_type=OrdType.MARKET)  # fmt: skip


@pytest.mark.parametrize("symbol", ["ES Z6", "VOD LN", "BRK B", "EUR=", "ES=F", "BRK.B"])
def test_real_tickers_with_spaces_or_equals_are_taken(symbol: str) -> None:
    """A FIX value may hold spaces and "=" (only SOH ends it): Bloomberg- and Reuters-style
    tickers are real symbols (found by review: they were refused)."""
    order = SubmitOrder(client_order_id="c1", venue="simA", symbol=symbol, side=Side.BUY,
                        qty=Decimal(1), order_type=OrdType.MARKET)  # fmt: skip
    assert order.symbol == symbol


@pytest.mark.parametrize(
    "value", ["100.0000000000000000000000000000", "15000000000.000000000000000000", "1.50E+3"]
)
def test_trailing_zeros_are_not_significant_digits(value: str) -> None:
    """A venue that prints fixed 18+ decimals sends real prices with many trailing zeros:
    they are not digits of precision (found by review: refused, the fill became bad_fill)."""
    assert domain.check_decimal(Decimal(value)) == Decimal(value)


@pytest.mark.parametrize("coid", ["c\x011", "c\n", "é", "x" * 65])
def test_a_client_order_id_with_control_or_non_ascii_characters_is_refused(coid: str) -> None:
    with pytest.raises(ValidationError):
        SubmitOrder(client_order_id=coid, venue="simA", symbol="AAPL", side=Side.BUY,
                    qty=Decimal(1), order_type=OrdType.MARKET)  # fmt: skip


# --------------------------------------------------------------------------- config


def _float_fields() -> list[Any]:
    out = []
    for model in sorted(_models(SystemConfig), key=lambda m: m.__name__):
        for name, field in model.model_fields.items():
            if float in _types(field.annotation) and get_origin(field.annotation) is not dict:
                where = f"{model.__name__}.{name}"
                out.append(pytest.param(where, _annotation(field), id=where))
    return out


@pytest.mark.parametrize(("where", "annotation"), _float_fields())
def test_no_config_float_accepts_inf_or_nan(where: str, annotation: Any) -> None:
    """`inf` would switch hang detection, a request timeout or the price band off."""
    adapter = TypeAdapter(annotation)
    for value in (math.inf, -math.inf, math.nan, "inf", "nan"):
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def _venue(**kw: Any) -> dict[str, Any]:
    return {"venues": [{"name": "simA", **kw}]}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"supervisor": {"heartbeat_interval_s": 1e9}}, "supervisor.heartbeat_interval_s"),
        ({"supervisor": {"hang_missed_intervals": 10**9}}, "supervisor.hang_missed_intervals"),
        ({"oms": {"request_timeout_s": 1e9}}, "oms.request_timeout_s"),
        ({"risk": {"price_band_pct": 1e9}}, "risk.price_band_pct"),
        ({"risk": {"max_order_qty": "1e999999999"}}, "risk.max_order_qty"),
        (_venue(request_timeout_s=1e9), "venues[simA].request_timeout_s"),
        (_venue(sender_comp_id="US\x0156=THEM"), "venues[simA].sender_comp_id"),
        (_venue(target_comp_id="A=B"), "venues[simA].target_comp_id"),
        (_venue(dialect={"logon_fields": {"1137": "9\x07"}}), "venues[simA].dialect.logon_fields"),
    ],
)
def test_config_values_that_would_switch_a_safety_off_or_corrupt_fix_are_refused(
    data: dict[str, Any], field: str
) -> None:
    base = _venue()
    with pytest.raises(ConfigError) as err:
        parse_config({**base, **data})
    assert err.value.field == field


def test_config_modules_export_finite_float_types() -> None:
    for t in (
        config_mod.PosFloat,
        backoff_config.NonNegFloat,
        backoff_config.PosFloat,
        fix_config.PosFloat,
    ):
        with pytest.raises(ValidationError):
            TypeAdapter(t).validate_python(math.inf)


# --------------------------------------------------------------------------- commands


def test_restart_force_given_as_the_string_false_is_refused_not_taken_as_true() -> None:
    """Control-command arguments are taken by type: `force: "false"` is an error, at the
    sender and at the receiver's decode alike."""
    with pytest.raises(ProtocolError, match="force"):
        parse_command("restart", {"actor": "risk", "force": "false"})
    with pytest.raises(ProtocolError, match="force"):
        parse_command("restart", {"actor": "risk", "force": 1})
    assert parse_command("restart", {"actor": "risk", "force": False}).force is False  # type: ignore[union-attr]
    with pytest.raises(ValidationError):
        MESSAGE_ADAPTER.validate_python({"type": "control_request",
                                         "command": {"command": "restart", "actor": "risk",
                                                     "force": "false"}})  # fmt: skip


def test_a_kill_switch_reason_is_bounded(tmp_path: Any) -> None:
    """An operator reason over MAX_REASON_CHARS is refused with a clear error (command and
    reset); an engage is never refused, its reason is clipped: the file stays small."""
    huge = "x" * (1 << 20)
    with pytest.raises(ProtocolError, match="reason"):
        parse_command("kill-switch", {"action": "engage", "reason": huge})
    path = tmp_path / "kill_switch.json"
    state = killswitch.engage(path, huge, "operator")
    assert state.engaged and len(state.reason) <= domain.MAX_REASON_CHARS
    assert len(path.read_bytes().rstrip()) < 4096  # in its fixed-size slot (FILE_BYTES)
    with pytest.raises(killswitch.KillSwitchResetRefused, match="at most"):
        killswitch.reset(path, huge, "operator")
    assert killswitch.load(path).engaged


def test_an_engage_is_never_refused_for_its_reason_a_reset_is() -> None:
    """An automatic engage with a long reason (a divergence over many symbols) is cut to
    the bound, never refused: refusing it would leave trading on. A reset or status that
    long is refused (an operator typed it)."""
    from protocol.messages import KillSwitchCommand

    long = "position_divergence: simB " + "SYMBOL venue 1 oms 0, " * 40
    cmd = KillSwitchCommand(action="engage", reason=long, source="heartbeat")
    assert len(cmd.reason) == domain.MAX_REASON_CHARS and cmd.reason.endswith("...")
    assert cmd.reason.startswith("position_divergence: simB")
    with pytest.raises(ValidationError):
        KillSwitchCommand(action="reset", reason=long)


@pytest.mark.parametrize("bad", [True, "5", 5.0])
def test_fix_seq_numbers_are_taken_by_type(bad: object) -> None:
    """`next_in: true` was taken as 1 (bool is an int), "5" and 5.0 as 5: a set of the
    sequence numbers is the most dangerous command there is (found by review)."""
    with pytest.raises(ProtocolError, match="next_in"):
        parse_command("fix-seq", {"venue": "simA", "next_in": bad, "reason": "r"})
    assert parse_command("fix-seq", {"venue": "simA", "next_in": 5, "reason": "r"})
