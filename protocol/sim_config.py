"""An embedded simulated venue (`[venues.sim]`): the FIX venue simulator
(`actors.venuesim`) or, for a ccxt venue, the local exchange (`actors.exchangesim`), both
spawned by the supervisor; the outside world of tests and the demo.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Protocol

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from protocol.domain import check_decimal
from protocol.fix_config import DialectCfg

if TYPE_CHECKING:
    from protocol.ccxt_config import CcxtCfg

ConfigDec = Annotated[Decimal, AfterValidator(check_decimal)]
PosInt = Annotated[int, Field(gt=0)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
NonNegDec = Annotated[Decimal, AfterValidator(check_decimal), Field(ge=0)]
PosDec = Annotated[Decimal, AfterValidator(check_decimal), Field(gt=0)]
Asset = Annotated[str, Field(pattern=r"^[A-Z0-9]{1,16}$")]


class SimCfg(BaseModel):
    """An embedded simulated venue, spawned by the supervisor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reference_prices: dict[str, PosDec] = Field(default_factory=lambda: {"AAPL": Decimal("100")})
    tick_size: PosDec = Decimal("0.01")
    quote_qty: NonNegDec = Decimal("500")  # 0: no market maker quotes
    quote_levels: PosInt = 5
    volatility_bps: NonNegFloat = 5.0
    liquidity_interval_s: PosFloat = 0.5
    faults: dict[str, float | int | str] = Field(default_factory=dict)
    # Non-empty: a Logon must carry this Username(553), else it is refused (Logout saying so)
    require_username: str = ""
    # True: a Logon must carry each of the sim dialect's `logon_fields` with its value,
    # else it is refused (Logout naming the tag)
    require_logon_fields: bool = False
    # How the simulated venue behaves (what it serves, how it answers): None = the dialect
    # configured for the venue (`[venues.dialect]`); set it to make the two disagree.
    dialect: DialectCfg | None = None
    # TLS: the simulator's certificate and key (PEM); both empty = plain TCP
    tls_cert_file: str = ""
    tls_key_file: str = ""
    # Non-empty (with TLS): a client certificate signed by this CA (PEM) is required
    tls_client_ca_file: str = ""
    # The local exchange (a ccxt venue's sim) only: its account's starting balance per
    # asset, set on its first start (a restart keeps its log's). An asset of a market not
    # listed starts with the default: 1,000 of a base asset, 1,000,000 of a quote asset.
    balances: dict[Asset, NonNegDec] = Field(default_factory=dict)
    # The local exchange only: the commission rate of every trade, charged as Binance
    # charges an account that pays no fees in BNB: in the asset received (a buy's base
    # asset, a sell's quote asset). None: Binance's default spot rate, 0.1%.
    commission_rate: Annotated[NonNegDec, Field(lt=1)] | None = None
    # A FIX venue's sim only. Non-empty: this simulator runs in the process of venue
    # `runs_in`'s (`venuesim.<runs_in>`): one process for several simulated venues, less
    # memory and idle CPU a venue; a kill of that process takes them all down at once
    runs_in: str = ""

    @model_validator(mode="after")
    def _tls_pair(self) -> SimCfg:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise ValueError("tls_client_ca_file needs tls_cert_file and tls_key_file")
        return self


def market_parts(symbol: str) -> tuple[str, str] | None:
    """(base, quote) of a local exchange's market key "BASE/QUOTE"; None if it is not one
    (a FIX venue's "AAPL", "BTC/"): the config's check and the exchange's markets alike."""
    base, slash, quote = symbol.partition("/")
    return (base, quote) if slash and base and quote else None


def check_sim_markets(sim: SimCfg | None, ccxt: CcxtCfg | None) -> None:
    """A ccxt venue's local exchange lists a market per `reference_prices` key, which is
    ccxt's "BASE/QUOTE": each of the venue's symbols needs one (the default's "AAPL" failed
    only when the exchange started). A ValueError naming the first missing."""
    if sim is None or ccxt is None:
        return
    if ccxt.sandbox:  # ccxt's sandbox mode replaces every URL, the local exchange's too
        raise ValueError("sandbox = true would trade on the exchange's testnet, not [venues.sim]")
    for symbol in sorted(sim.reference_prices):
        if market_parts(symbol) is None:
            raise ValueError(f'sim.reference_prices {symbol!r} is not a "BASE/QUOTE" market')
    if missing := [s for s in ccxt.symbols if s not in sim.reference_prices]:
        raise ValueError(f"sim.reference_prices has no {missing[0]} (one of ccxt.symbols)")


def check_sim_balances(kind: str, sim: SimCfg | None, ccxt: CcxtCfg | None) -> None:
    """`[venues.sim] balances` belong to a ccxt venue's local exchange, and the starting
    balance of a base asset of its symbols is its `position_baseline` (a position is the
    balance above it; no baseline is a baseline of 0): a ValueError naming the key when
    either is broken."""
    if sim is not None and sim.commission_rate is not None and kind != "ccxt":
        raise ValueError('sim.commission_rate is the local exchange\'s: for kind = "ccxt" only')
    if sim is None or not sim.balances:
        return
    if kind != "ccxt" or ccxt is None:
        raise ValueError('sim.balances is the local exchange\'s: for kind = "ccxt" venues only')
    baseline = ccxt.position_baseline
    bases = {symbol.split("/")[0] for symbol in ccxt.symbols}
    for asset, start in sorted(sim.balances.items()):
        if asset in bases and asset not in baseline and start != 0:
            raise ValueError(
                f"sim.balances {asset} = {start} but ccxt.position_baseline has no {asset}: "
                f"the position would start at {start}"
            )
        if asset in baseline and baseline[asset] != start:
            raise ValueError(
                f"sim.balances {asset} = {start} but ccxt.position_baseline {asset} = "
                f"{baseline[asset]}: the position would start at {start - baseline[asset]}"
            )


class _VenueFields(Protocol):
    """What the functions below read of a venue (`protocol.config.VenueCfg`)."""

    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def host_group(self) -> str: ...
    @property
    def sim(self) -> SimCfg | None: ...


def sim_process_of(venue: _VenueFields) -> str:
    """The venue whose simulator process runs `venue`'s simulator: its own name, or
    `sim.runs_in`. The process's actor is `venuesim.<that name>`."""
    return venue.sim.runs_in if venue.sim is not None and venue.sim.runs_in else venue.name


def sim_guests(venues: Iterable[_VenueFields], venue: str) -> tuple[str, ...]:
    """The venues whose simulators run in `venue`'s simulator process (`sim.runs_in`)."""
    return tuple(v.name for v in venues if v.sim is not None and v.sim.runs_in == venue)


def check_sim_processes(venues: Iterable[_VenueFields]) -> None:
    """`sim.runs_in` names a FIX venue of the same host group with a simulator of its own
    process (no chains): a ValueError naming the venue when not."""
    by_name = {v.name: v for v in venues}
    for v in by_name.values():
        if v.sim is None or not v.sim.runs_in:
            continue
        where = f"venue {v.name!r}: sim.runs_in = {v.sim.runs_in!r}"
        host = by_name.get(v.sim.runs_in)
        if v.kind != "fix":
            raise ValueError(f"{where}: a {v.kind} venue's sim runs in its own process "
                             f"(FIX simulators only)")  # fmt: skip
        if host is None or host.kind != "fix" or host.sim is None:
            raise ValueError(f"{where}: names no FIX venue with a sim (FIX simulators only)")
        if host.sim.runs_in or host is v:
            raise ValueError(f"{where}: that venue's sim must run in its own process")
        if host.host_group != v.host_group:
            raise ValueError(f"{where}: that venue is on host group {host.host_group!r}")
