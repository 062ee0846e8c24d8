"""The system config: TOML -> frozen pydantic models. A bad key or value is a `ConfigError`
naming the dotted field; the supervisor turns it into exit code 2.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocol import paths, port_clash
from protocol.backoff_config import BackoffCfg as BackoffCfg  # re-exported: where they were
from protocol.backoff_config import ReconnectCfg
from protocol.backoff_config import RestartCfg as RestartCfg
from protocol.ccxt_config import CcxtCfg
from protocol.domain import CompId, check_decimal
from protocol.exceptions import ConfigError
from protocol.fix_config import DialectCfg, ScheduleCfg, TlsCfg
from protocol.link_config import CORE, HostGroup, LinkCfg, check_link
from protocol.log_config import LoggingCfg
from protocol.sim_config import (
    NonNegDec,
    PosDec,
    check_sim_balances,
    check_sim_markets,
    check_sim_processes,
)
from protocol.sim_config import SimCfg as SimCfg  # re-exported: where it always was
from protocol.tls import client_context, server_context
from protocol.windows import TimeOfDay, TradingCfg, ZoneName

# Every float is finite (no inf, no nan: `inf` would silently switch a safety off), and a
# duration that guards something has an upper bound (`Timeout`, `Interval`).
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
PosInt = Annotated[int, Field(gt=0)]
Timeout = Annotated[float, Field(gt=0, le=300, allow_inf_nan=False)]  # waits for an answer
Interval = Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)]  # liveness beats
# A config decimal (limits, prices, sizes): within the bounds of every message's decimals.
ConfigDec = Annotated[Decimal, AfterValidator(check_decimal)]
EnvVarName = Annotated[str, Field(pattern=r"^([A-Za-z_][A-Za-z0-9_]*)?$")]  # "": none


class _Cfg(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SystemCfg(_Cfg):
    name: str = "tradepulse"
    state_dir: Annotated[str, Field(min_length=1)] = "var/state"  # "" would be the cwd
    runtime_dir: str = ""  # empty: /tmp/tp-<hash of state dir>, created 0700
    log_level: Literal["debug", "info", "warning", "error"] = "info"


class SupervisorCfg(_Cfg):
    heartbeat_interval_s: Interval = 0.2
    hang_missed_intervals: Annotated[int, Field(gt=0, le=1000)] = 3  # hang detection
    hang_deferral_max_s: Annotated[float, Field(ge=0, le=300, allow_inf_nan=False)] = 5.0
    start_timeout_s: Timeout = 15.0
    shutdown_timeout_s: Timeout = 5.0
    spawn: Literal["forkserver", "exec"] = "forkserver"
    # the forked actors' identical pages merged by the kernel (KSM), where the host runs
    # its scanner: costs and risks in actors/supervisor/memory_merge.py
    memory_merge: bool = False
    restart: RestartCfg = RestartCfg()


class MetricsCfg(_Cfg):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9464  # 0: any free port


class MessageLogCfg(_Cfg):
    """The venue's FIX message log (every message in and out, `tradepulse fix log`): a
    diagnostic record beside the FIX store, rotated at `max_file_bytes`, `keep_files`
    files kept in all (the current one included)."""

    max_file_bytes: Annotated[int, Field(ge=4096)] = 64 << 20
    keep_files: PosInt = 4


class VenueCfg(_Cfg):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,23}$")]
    kind: Literal["fix", "ccxt"] = "fix"
    host_group: HostGroup = CORE  # the supervisor that runs its connector (protocol.link_config)
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 0  # 0 with `sim`: the sim picks a port
    sender_comp_id: CompId = "TRADEPULSE"
    target_comp_id: Annotated[str, Field(max_length=64, pattern=r"^[!-<>-~]*$")] = ""  # "": name
    username_env: EnvVarName = ""  # Username(553) in the Logon from this env var (a credential)
    password_env: EnvVarName = ""  # the password comes from this env var, never from the file
    heartbeat_s: Annotated[int, Field(gt=0, le=300)] = 5  # HeartBtInt(108)
    rate_limit_per_s: PosFloat = 5000.0
    rate_burst: PosInt = 500
    request_timeout_s: Timeout = 5.0
    reconnect: ReconnectCfg = ReconnectCfg()  # first step 0.05 s, never 0
    down_after_failures: PosInt = 5
    message_log: MessageLogCfg = MessageLogCfg()
    dialect: DialectCfg = DialectCfg()
    schedule: ScheduleCfg | None = None  # None: always in session
    tls: TlsCfg | None = None  # None: plain TCP
    sim: SimCfg | None = None
    ccxt: CcxtCfg | None = None  # kind = "ccxt": the exchange

    @model_validator(mode="after")
    def _kind_table(self) -> VenueCfg:
        if (self.kind == "ccxt") != (self.ccxt is not None):
            raise ValueError('kind = "ccxt" and a [venues.ccxt] table go together')
        check_sim_balances(self.kind, self.sim, self.ccxt)
        check_sim_markets(self.sim, self.ccxt)
        return self

    @property
    def credential_vars(self) -> tuple[tuple[str, str], ...]:
        """(field, env var name) of every credential this venue names (values are secret)."""
        if self.ccxt is not None:
            return (
                ("ccxt.api_key_env", self.ccxt.api_key_env),
                ("ccxt.secret_env", self.ccxt.secret_env),
            )
        return tuple((key, var) for key, _ in CREDENTIAL_TAGS if (var := getattr(self, key)))

    @property
    def target(self) -> str:
        return self.target_comp_id or self.name.upper()

    @property
    def sim_dialect(self) -> DialectCfg:
        """How the embedded simulator behaves: its own dialect, else the venue's."""
        own = self.sim.dialect if self.sim is not None else None
        return own or self.dialect


class RiskLimitsCfg(_Cfg):
    max_order_qty: PosDec = Decimal("10000")
    max_order_notional: PosDec = Decimal("1000000")
    max_position: PosDec = Decimal("50000")
    max_open_orders_per_venue: PosInt = 10000
    max_orders_per_s_per_venue: PosFloat = 20000.0
    max_orders_per_s: PosFloat = 40000.0
    price_band_pct: Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)] = 10.0
    max_daily_loss: PosDec = Decimal("1000000")
    breach_multiplier: Annotated[float, Field(ge=1, le=1000, allow_inf_nan=False)] = 5.0
    breaches_to_engage: PosInt = 50
    breach_window_s: PosFloat = 10.0
    verdict_cache_entries: Annotated[int, Field(ge=64, le=1_000_000)] = 1024  # re-sent checks
    day_start: TimeOfDay = "00:00"  # max_daily_loss's day starts then (actors/risk/trading_day)
    day_timezone: ZoneName = "UTC"  # day_start's zone (an IANA name)


class OmsCfg(_Cfg):
    venue_queue_bound: PosInt = 10000
    request_timeout_s: Timeout = 5.0
    snapshot_every: PosInt = 50000
    drain_timeout_s: PosFloat = 3.0
    cold_start_open_orders: Literal["cancel", "adopt"] = "cancel"
    cold_start_intake: Literal["every_venue", "per_venue"] = "every_venue"  # PlanApplier.unready
    unmatched_fill_engages_kill_switch: bool = True
    outage_tolerance_s: PosFloat = 60.0
    reconcile_interval_s: PosFloat = 30.0  # periodic pass per connected venue (safety net)
    # a resubmitted order the venue still does not know may be resubmitted again after it
    # (<= 240 s: alert ResubmitsUnsent looks for an unsent resend within every 5 minutes)
    resubmit_grace_s: Annotated[float, Field(ge=1, le=240, allow_inf_nan=False)] = 30.0
    # a failed pass is retried after a capped exponential backoff (doubling, 10% jitter)
    reconcile_retry_initial_s: PosFloat = 1.0
    reconcile_retry_max_s: PosFloat = 30.0
    # kept allocated past the journal's end for a full disk (actors/oms/journal_space.py)
    journal_reserve_bytes: Annotated[int, Field(ge=64 << 10, le=1 << 30)] = 4 << 20
    recent_terminal_orders: Annotated[int, Field(ge=1, le=10_000_000)] = 2000  # rest: archive
    risk_stream_lag_s: Annotated[float, Field(ge=0, le=0.1, allow_inf_nan=False)] = 0.005

    @model_validator(mode="after")
    def _retry_bounds(self) -> OmsCfg:
        if self.reconcile_retry_max_s < self.reconcile_retry_initial_s:
            raise ValueError("reconcile_retry_max_s must be >= reconcile_retry_initial_s")
        return self


class HeartbeatCfg(_Cfg):
    interval_s: Interval = 1.0  # the liveness / compare beat (the OMS is asked every beat)
    venue_positions_interval_s: PosFloat = 30.0  # positions asked of each venue (FIX AN)
    position_tolerance: NonNegDec = Decimal("0")
    divergence_beats: PosInt = 3
    missing_intervals: PosInt = 2
    engage_on_missing: bool = True
    log_every_n: PosInt = 60  # `heartbeat` at info on a change or every Nth beat, else debug


class SystemConfig(_Cfg):
    system: SystemCfg = SystemCfg()
    supervisor: SupervisorCfg = SupervisorCfg()
    metrics: MetricsCfg = MetricsCfg()
    risk: RiskLimitsCfg = RiskLimitsCfg()
    oms: OmsCfg = OmsCfg()
    heartbeat: HeartbeatCfg = HeartbeatCfg()
    trading: TradingCfg = TradingCfg()  # change windows (protocol/windows.py)
    logging: LoggingCfg = LoggingCfg()
    link: LinkCfg = LinkCfg()  # between hosts (protocol/link_config.py)
    venues: list[VenueCfg] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_venues(self) -> SystemConfig:
        names = [v.name for v in self.venues]
        if dupes := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"duplicate venue names {dupes}")
        check_sim_processes(self.venues)
        port_clash.check_port_clashes(self.metrics, self.link, self.venues)  # exit 2, not a crash
        return self

    def venue(self, name: str) -> VenueCfg:
        for v in self.venues:
            if v.name == name:
                return v
        raise KeyError(name)

    # ----------------------------------------------- derived paths (layout: protocol/paths.py)

    @property
    def state_path(self) -> Path:
        return Path(self.system.state_dir).resolve()

    @property
    def runtime_base(self) -> Path:  # as configured; the files: `runtime_path`
        if self.system.runtime_dir:  # absolute, a symlink kept: the supervisor refuses one
            return Path(os.path.abspath(self.system.runtime_dir))
        return paths.default_runtime_dir(self.state_path)

    @property
    def runtime_path(self) -> Path:  # runtime_base, or our tp/ in it if shared (reads its mode)
        return paths.runtime_files_dir(self.runtime_base)

    def endpoint(self, actor: str) -> str:
        """The ROUTER endpoint an actor binds (ipc in the private runtime dir)."""
        return paths.endpoint(self.runtime_path, actor)

    @property
    def supervisor_endpoint(self) -> str:
        return self.endpoint(paths.SUPERVISOR)

    @property
    def control_endpoint(self) -> str:
        return self.endpoint(paths.CONTROL)

    @property
    def events_endpoint(self) -> str:
        return self.endpoint(paths.EVENTS)

    @property
    def client_endpoint(self) -> str:
        """The OMS's client-facing ROUTER (orders and queries from `protocol.client`)."""
        return self.endpoint(paths.CLIENT)


# Logon credentials: (VenueCfg field naming the env var, FIX tag it fills)
CREDENTIAL_TAGS = (("username_env", 553), ("password_env", 554))


def logon_credentials(
    venue: VenueCfg, environ: Mapping[str, str] | None = None
) -> tuple[list[tuple[int, str]], list[str]]:
    """Username(553) / Password(554) of the venue's Logon from the env vars it names, and
    the dotted fields whose variable is unset or empty. The values are secrets: never log
    or print them, only the variable names."""
    env = os.environ if environ is None else environ
    fields: list[tuple[int, str]] = []
    missing: list[str] = []
    for key, tag in CREDENTIAL_TAGS:
        var = getattr(venue, key)
        if not var:
            continue
        value = env.get(var, "")
        if value:
            fields.append((tag, value))
        else:
            missing.append(key)
    return fields, missing


def missing_credentials(
    cfg: SystemConfig, environ: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """Every (dotted field, env var name) whose credential variable is unset, empty or holds
    an SOH (a paste error no FIX field can carry; a PEM secret's newlines are fine), in
    venue order (names, never values)."""
    env = os.environ if environ is None else environ
    return [
        (f"venues[{venue.name}].{key}", var)
        for venue in cfg.venues
        for key, var in venue.credential_vars
        if not (value := env.get(var, "")) or "\x01" in value
    ]


def check_credentials(cfg: SystemConfig, environ: Mapping[str, str] | None = None) -> None:
    """At start: every credential env var a venue names must be set (a `ConfigError` naming
    the first field and every unset variable, exit code 2), so no Logon goes out without."""
    missing = missing_credentials(cfg, environ)
    if missing:
        names, more = ", ".join(var for _, var in missing), len(missing) > 1
        verb = "variables" if more else "variable"
        also = f" (also {', '.join(f for f, _ in missing[1:])})" if more else ""
        raise ConfigError(
            missing[0][0],
            f"environment {verb} {names} {'are' if more else 'is'} not set (or empty, or"
            f" holds an SOH){also}",
        )


def check_venue_tls(venue: VenueCfg) -> None:
    """Each TLS file the venue (or its sim) names loads; else a `ConfigError` naming the field."""
    if venue.tls is not None:
        client_context(venue.tls, f"venues[{venue.name}].tls")
    sim = venue.sim
    if sim is not None and sim.tls_cert_file:
        where = f"venues[{venue.name}].sim"
        server_context(sim.tls_cert_file, sim.tls_key_file, sim.tls_client_ca_file, where)


def check_tls(cfg: SystemConfig) -> None:
    """At start: every TLS file a venue (or its simulator) names must be readable and load
    (a `ConfigError` naming the field, exit code 2), so no connection attempt finds out."""
    for venue in cfg.venues:
        check_venue_tls(venue)


def _format_loc(loc: tuple[int | str, ...], data: dict[str, object]) -> str:
    parts: list[str] = []
    node: object = data
    for p in loc:
        if isinstance(p, int):
            name = None
            if isinstance(node, list) and p < len(node) and isinstance(node[p], dict):
                name = node[p].get("name")
            parts[-1:] = [f"{parts[-1]}[{name if name else p}]"] if parts else [str(p)]
            node = node[p] if isinstance(node, list) and p < len(node) else None
        else:
            parts.append(str(p))
            node = node.get(p) if isinstance(node, dict) else None
    return ".".join(parts)


def _refuse_nul(data: dict[str, object]) -> None:
    """No NUL in any key or string: a path with one raises ValueError deep in os calls, and
    no name, id or text needs one (found by fuzzing the loader, tests/fuzz)."""
    stack: list[tuple[object, tuple[int | str, ...]]] = [(data, ())]
    while stack:
        node, loc = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if "\0" in key:
                    raise ConfigError(_format_loc(loc, data) or "config", "NUL in a key")
                stack.append((value, (*loc, key)))
        elif isinstance(node, list):
            stack.extend((value, (*loc, i)) for i, value in enumerate(node))
        elif isinstance(node, str) and "\0" in node:
            raise ConfigError(_format_loc(loc, data), "NUL character in the value")


# Keys earlier builds accepted and this one does not: the error says what to do instead.
_REMOVED_KEYS = {
    "oms.group_commit_ms": (
        "removed (it was never read: the journal commits once per loop turn); delete the key"
    ),
}


def parse_config(data: dict[str, object]) -> SystemConfig:
    _refuse_nul(data)
    try:
        cfg = SystemConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = _format_loc(tuple(err["loc"]), data) or "config"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = _REMOVED_KEYS.get(field, "unknown key")
        raise ConfigError(field, msg) from exc
    check_link(cfg.link, cfg.venues)
    # The heartbeat measures an outage from the last venue answer: one unanswered position
    # request alone must never reach the tolerance (and engage the kill-switch).
    every, tolerance = cfg.heartbeat.venue_positions_interval_s, cfg.oms.outage_tolerance_s
    if every > tolerance / 2:
        raise ConfigError(
            "heartbeat.venue_positions_interval_s",
            f"{every:g} is more than half of oms.outage_tolerance_s ({tolerance:g})",
        )
    return cfg


def load_config(
    path: str | os.PathLike[str],
    *,
    state_dir: str | None = None,
    runtime_dir: str | None = None,
    metrics_port: int | None = None,
) -> SystemConfig:
    """Load the TOML file and apply the command-line overrides."""
    p = Path(path)
    data = _read_toml(p)
    if state_dir is not None:
        _table(data, "system")["state_dir"] = state_dir
    if runtime_dir is not None:
        _table(data, "system")["runtime_dir"] = runtime_dir
    if metrics_port is not None:
        _table(data, "metrics")["port"] = metrics_port
    cfg = parse_config(data)
    if len(cfg.endpoint("connector.XXXXXXXXXXXXXXXXXXXXXXXX")) > 107:  # runtime_path: tp/ too
        raise ConfigError("system.runtime_dir", "too long for ipc:// (max ~80 chars, 77 if shared)")
    return cfg


MAX_CONFIG_BYTES = 16 * 2**20  # a config is a few KB (demo.toml: 2 KB): more is the wrong file


def _read_toml(p: Path) -> dict[str, object]:
    """The TOML document of `p`; a `ConfigError` for a file that is missing, not UTF-8, not
    TOML, nested deeper than the parser's recursion (tomllib recurses per level), or too
    big to be a config (`--config` of a 4 GB log file took ~9 GB to refuse, next to the
    OMS; one file is read whole, decoded and parsed)."""
    try:
        with paths.open_regular(p) as fh:
            if (size := os.fstat(fh.fileno()).st_size) > MAX_CONFIG_BYTES:
                limit = f"{MAX_CONFIG_BYTES // 2**20} MiB"
                raise ConfigError("config", f"{p}: {size} bytes, not a config (at most {limit})")
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("config", f"file not found: {p}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError("config", f"{p}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config", f"{p}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError("config", f"{p}: arrays or tables nested too deep") from None
    except OSError as exc:  # a directory, a path under a regular file, no permission
        raise ConfigError("config", f"cannot read {p}: {exc.strerror or exc}") from None


def _table(data: dict[str, object], key: str) -> dict[str, object]:
    """`data[key]` as a table to put a command-line override in (made when absent)."""
    table = data.setdefault(key, {})
    if not isinstance(table, dict):
        raise ConfigError(key, f"must be a table, got {type(table).__name__}")
    return table
