"""Per-venue config of a crypto exchange reached through ccxt (`kind = "ccxt"`,
`[venues.ccxt]`); docs/ccxt-venues.md is the operator's guide.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from protocol.domain import check_decimal

ConfigDec = Annotated[Decimal, AfterValidator(check_decimal)]
EnvVar = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
CcxtSymbol = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,16}/[A-Z0-9]{1,16}$")]
# the ccxt classes whose requests the connector speaks: it looks an order up and cancels it
# by client id with Binance's parameters (origClientOrderId, newClientOrderId), reads
# Binance's raw fields and error codes. Another class ignores those parameters: its cancel
# and its lookup go out naming no order (okx ordId null, kraken txid None, bybit none,
# coinbase order_ids [null]), so no order could be cancelled, not by the kill switch either,
# and no lost create or resend could be looked up (tests/protocol/test_ccxt_exchanges.py)
SUPPORTED_EXCHANGES: Final = ("binance",)


class CcxtCfg(BaseModel):
    """A crypto exchange reached through ccxt (REST + WebSocket), `kind = "ccxt"`.

    Our symbols are ccxt's unified ones ("BTC/USDT"). Credentials come from the environment
    variables named here, never from the file; a missing one stops the start (exit 2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exchange: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")] = "binance"  # ccxt id
    api_key_env: EnvVar
    secret_env: EnvVar
    sandbox: bool = False  # the exchange's testnet (ccxt set_sandbox_mode)
    # "": the exchange's own URLs; else every REST and WebSocket URL of the exchange class
    # points here (http://host:port; the local exchange of tests and the demo)
    base_url: Annotated[str, Field(max_length=200, pattern=r"^(|https?://[!-~]+)$")] = ""
    market_type: Literal["spot"] = "spot"
    # one per base asset: a spot position is the base asset's balance (`position_baseline`)
    symbols: Annotated[list[CcxtSymbol], Field(min_length=1)]
    recv_window_ms: Annotated[int, Field(ge=100, le=60000)] = 5000
    # REST polling of the orders we know while the user-data stream is down (and a slow
    # safety net while it is up, `poll_idle_s`)
    poll_interval_s: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = 1.0
    poll_idle_s: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)] = 30.0
    # per asset, the balance that is not a position of ours (funding held at the exchange):
    # the heartbeat compares (balance - baseline) of each symbol's base asset with the OMS
    position_baseline: dict[str, ConfigDec] = Field(default_factory=dict)

    @field_validator("exchange")
    @classmethod
    def _supported(cls, exchange: str) -> str:
        if exchange not in SUPPORTED_EXCHANGES:
            raise ValueError(
                f"exchange {exchange!r} is not supported (supported: "
                f"{', '.join(SUPPORTED_EXCHANGES)}): the connector cancels and looks orders up"
                " by client id with Binance's parameters, which other ccxt classes ignore (an"
                " order there could never be cancelled, not even by the kill switch)"
            )
        return exchange

    @model_validator(mode="after")
    def _one_symbol_per_base(self) -> CcxtCfg:
        bases = [s.split("/")[0] for s in self.symbols]
        shared = sorted({b for b in bases if bases.count(b) > 1})
        if shared:
            raise ValueError(
                f"symbols share the base asset {shared[0]}: a spot position is a base asset's"
                " balance, so each base asset may be traded in one symbol"
            )
        if stray := sorted(set(self.position_baseline) - set(bases)):
            raise ValueError(
                f"position_baseline names {stray[0]}, not a base asset of symbols"
                f" ({', '.join(sorted(bases))}): the base asset it was meant for would count"
                " its whole balance as our position"
            )
        if self.sandbox and self.base_url:
            raise ValueError(
                "sandbox and base_url exclude each other: ccxt's sandbox mode replaces every"
                " URL with the exchange's testnet, base_url would be ignored"
            )
        return self
