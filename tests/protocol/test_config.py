"""The system config: every kind of bad config is refused naming the field; the CLI turns
that into exit code 2 before starting anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from protocol.config import SystemConfig, check_credentials, load_config, logon_credentials
from protocol.exceptions import ConfigError
from protocol.fix_config import DialectCfg, ScheduleCfg, TlsCfg
from tests.helpers import REPO_ROOT, SUPERVISOR, run_python

DEMO = REPO_ROOT / "deploy" / "config" / "demo.toml"
VENUE = '\n[[venues]]\nname = "simA"\n'


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    return path


def _config_error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    return info.value


def _run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_python([str(SUPERVISOR), *args], timeout_s=30)


# --------------------------------------------------------------------------- good configs


def test_demo_config_loads_with_two_fix_venues_and_a_crypto_exchange_all_simulated() -> None:
    cfg = load_config(DEMO)
    assert [(v.name, v.kind) for v in cfg.venues] == [
        ("simA", "fix"), ("simB", "fix"), ("binance-local", "ccxt")
    ]  # fmt: skip
    assert all(v.sim is not None for v in cfg.venues)
    assert cfg.supervisor.heartbeat_interval_s == 0.2


def test_minimal_config_gets_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, VENUE))
    assert cfg.supervisor.restart.max_restarts > 0
    assert cfg.venue("simA").reconnect.max_s >= cfg.venue("simA").reconnect.initial_s


def test_command_line_overrides_replace_file_values(short_tmp: Path) -> None:
    """--state-dir, --runtime-dir and --metrics-port win over the file."""
    cfg = load_config(
        DEMO, state_dir=str(short_tmp / "s"), runtime_dir=str(short_tmp / "r"), metrics_port=0
    )
    assert cfg.state_path == (short_tmp / "s").resolve()
    assert cfg.runtime_path == (short_tmp / "r").resolve()
    assert cfg.metrics.port == 0
    assert cfg.endpoint("oms") == f"ipc://{(short_tmp / 'r').resolve()}/oms.sock"
    assert cfg.control_endpoint.endswith("/control.sock")


def test_default_runtime_dir_is_private_per_state_dir(tmp_path: Path) -> None:
    """No runtime dir configured: one under /tmp derived from the state dir, so two
    deployments never share sockets."""
    a = load_config(DEMO, state_dir=str(tmp_path / "a"))
    b = load_config(DEMO, state_dir=str(tmp_path / "b"))
    assert a.runtime_path.parent == Path("/tmp") and a.runtime_path != b.runtime_path
    assert a.runtime_path == load_config(DEMO, state_dir=str(tmp_path / "a")).runtime_path


def test_config_models_are_frozen() -> None:
    cfg = load_config(DEMO)
    with pytest.raises(ValueError):
        cfg.supervisor.heartbeat_interval_s = 1.0
    assert isinstance(cfg, SystemConfig)


# --------------------------------------------------------------------------- bad configs

BAD_CONFIGS = [
    pytest.param(
        '[risk]\nday_start = "25:00"' + VENUE,
        "risk.day_start",
        "not a time of day",
        id="bad_risk_day_start",
    ),
    pytest.param(
        '[risk]\nday_timezone = "America"' + VENUE,
        "risk.day_timezone",
        "unknown time zone",
        id="bad_risk_day_timezone",
    ),
    pytest.param("bogus = 1" + VENUE, "bogus", "unknown key", id="unknown_top_level_key"),
    pytest.param(
        "[supervisor]\nbogus = 1" + VENUE,
        "supervisor.bogus",
        "unknown key",
        id="unknown_nested_key",
    ),
    pytest.param(
        "[supervisor.restart]\nbogus = 1" + VENUE,
        "supervisor.restart.bogus",
        "unknown key",
        id="unknown_deep_key",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\nbogus = 1',
        "venues[simA].bogus",
        "unknown key",
        id="unknown_venue_key",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\n[venues.sim]\nbogus = 1',
        "venues[simA].sim.bogus",
        "unknown key",
        id="unknown_sim_key",
    ),
    pytest.param(  # removed: the journal group-commits once per loop turn
        "[oms]\ngroup_commit_ms = 1.0" + VENUE,
        "oms.group_commit_ms",
        "removed (it was never read: the journal commits once per loop turn); delete the key",
        id="removed_group_commit_ms",
    ),
    pytest.param(
        '[supervisor]\nheartbeat_interval_s = "fast"' + VENUE,
        "supervisor.heartbeat_interval_s",
        "number",
        id="bad_value_type",
    ),
    pytest.param(
        "[supervisor]\nheartbeat_interval_s = -1" + VENUE,
        "supervisor.heartbeat_interval_s",
        "greater than 0",
        id="negative_interval",
    ),
    pytest.param(
        "[supervisor]\nheartbeat_interval_s = 0" + VENUE,
        "supervisor.heartbeat_interval_s",
        "greater than 0",
        id="zero_interval",
    ),
    pytest.param(
        "[supervisor]\nstart_timeout_s = -5" + VENUE,
        "supervisor.start_timeout_s",
        "greater than 0",
        id="negative_timeout",
    ),
    pytest.param(
        "[supervisor.restart]\ninitial_s = -0.1" + VENUE,
        "supervisor.restart.initial_s",
        "greater than or equal to 0",
        id="negative_backoff",
    ),
    pytest.param(
        "[supervisor.restart]\ninitial_s = 5\nmax_s = 1" + VENUE,
        "supervisor.restart",
        "max_s must be >= initial_s",
        id="backoff_max_below_initial",
    ),
    pytest.param(
        "[supervisor.restart]\njitter = 1.5" + VENUE,
        "supervisor.restart.jitter",
        "less than or equal to 1",
        id="jitter_over_one",
    ),
    pytest.param(
        "[supervisor.restart]\nmax_restarts = 0" + VENUE,
        "supervisor.restart.max_restarts",
        "greater than 0",
        id="zero_restart_budget",
    ),
    pytest.param(
        '[supervisor]\nspawn = "threads"' + VENUE,
        "supervisor.spawn",
        "forkserver",
        id="bad_spawn_mode",
    ),
    pytest.param(
        '[system]\nlog_level = "loud"' + VENUE, "system.log_level", "info", id="bad_log_level"
    ),
    pytest.param(
        "[metrics]\nport = 70000" + VENUE, "metrics.port", "65535", id="port_out_of_range"
    ),
    pytest.param(
        '[[venues]]\nname = "sim A!"', "venues[sim A!].name", "pattern", id="bad_venue_name"
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\nheartbeat_s = "x"',
        "venues[simA].heartbeat_s",
        "integer",
        id="bad_venue_value",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\n[venues.reconnect]\nfactor = 0.5',
        "venues[simA].reconnect.factor",
        "greater than or equal to 1",
        id="bad_venue_backoff",
    ),
    pytest.param('[system]\nname = "x"', "venues", "required", id="missing_venues"),
    pytest.param("venues = []", "venues", "at least 1", id="empty_venues"),
    pytest.param(
        '[risk]\nmax_order_qty = "lots"' + VENUE, "risk.max_order_qty", "decimal", id="bad_decimal"
    ),
    pytest.param(
        '[oms]\ncold_start_open_orders = "keep"' + VENUE,
        "oms.cold_start_open_orders",
        "cancel",
        id="bad_literal",
    ),
    pytest.param(
        "[supervisor\nheartbeat_interval_s = 1", "config", "not valid TOML", id="invalid_toml"
    ),
    pytest.param("supervisor = 5" + VENUE, "supervisor", "", id="table_given_a_scalar"),
    pytest.param(
        "[heartbeat]\nvenue_positions_interval_s = 0" + VENUE,
        "heartbeat.venue_positions_interval_s",
        "greater than 0",
        id="zero_venue_positions_interval",
    ),
    pytest.param(  # one unanswered request alone would engage the kill-switch
        "[heartbeat]\nvenue_positions_interval_s = 31" + VENUE,
        "heartbeat.venue_positions_interval_s",
        "more than half of oms.outage_tolerance_s (60)",
        id="venue_positions_interval_over_half_the_outage_tolerance",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\nusername_env = "NOT A VAR"',
        "venues[simA].username_env",
        "pattern",
        id="bad_username_env_name",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\n[venues.dialect]\nempty_mass_status = "never"',
        "venues[simA].dialect.empty_mass_status",
        "'report' or 'silent'",
        id="bad_dialect_literal",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\n[venues.dialect]\nserves_quotes = true',
        "venues[simA].dialect.serves_quotes",
        "unknown key",
        id="unknown_dialect_key",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\n[venues.dialect.logon_fields]\n553 = "me"',
        "venues[simA].dialect.logon_fields",
        "tag 553 is set by the session itself",
        id="logon_field_names_a_session_tag",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\n[venues.dialect.logon_fields]\nDefaultApplVerID = "9"',
        "venues[simA].dialect.logon_fields",
        "not a FIX tag number",
        id="logon_field_not_a_tag_number",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\n[venues.schedule]\ntimezone = "Mars/Olympus"',
        "venues[simA].schedule.timezone",
        "unknown time zone 'Mars/Olympus'",
        id="schedule_unknown_time_zone",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\n[venues.schedule]\nstart = "25:00"',
        "venues[simA].schedule.start",
        "not a time of day",
        id="schedule_bad_start",
    ),
    pytest.param(  # the fill ledger would miss what such a venue never resends
        '[[venues]]\nname = "simA"\n[venues.dialect]\nserves_positions = false\n'
        'reset_seq_num = "every_logon"',
        "venues[simA].dialect",
        "needs a venue that resends",
        id="ledger_venue_that_never_resends",
    ),
    pytest.param(  # the zone is `timezone`; an offset crashed the connector at start
        '[[venues]]\nname = "simA"\n[venues.schedule]\nstart = "09:00+05:00"',
        "venues[simA].schedule.start",
        "not a time of day",
        id="schedule_time_with_an_offset",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\n[venues.schedule]\ndays = ["mon", "mon"]',
        "venues[simA].schedule.days",
        "a day is listed twice",
        id="schedule_day_twice",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\n[venues.schedule]\ndays = ["monday"]',
        "venues[simA].schedule.days[0]",
        "'mon'",
        id="schedule_bad_day",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\n[venues.tls]\ncert_file = "c.pem"',
        "venues[simA].tls",
        "cert_file and key_file go together",
        id="tls_cert_without_key",
    ),
    pytest.param(
        '[[venues]]\nname = "simA"\n[venues.sim]\nrequire_username = 7',
        "venues[simA].sim.require_username",
        "string",
        id="bad_require_username",
    ),
]


@pytest.mark.parametrize(("text", "field", "words"), BAD_CONFIGS)
def test_bad_config_names_the_field(tmp_path: Path, text: str, field: str, words: str) -> None:
    """Each kind of bad config raises ConfigError whose `.field` is the dotted path of the
    offending key and whose message says what is wrong with it."""
    err = _config_error(tmp_path, text)
    assert err.field == field
    assert str(err).startswith(f"{field}: ")
    assert words.lower() in str(err).lower()


def test_heartbeat_asks_venues_every_30_s_by_default(tmp_path: Path) -> None:
    """The beat stays at `interval_s`; position requests to a venue have their own interval
    (default 30 s, at most half the outage tolerance: two requests before an outage)."""
    cfg = load_config(_write(tmp_path, VENUE))
    assert cfg.heartbeat.interval_s == 1.0
    assert cfg.heartbeat.venue_positions_interval_s == 30.0
    assert cfg.heartbeat.venue_positions_interval_s <= cfg.oms.outage_tolerance_s / 2
    text = "[heartbeat]\nvenue_positions_interval_s = 5\n[oms]\noutage_tolerance_s = 10" + VENUE
    assert load_config(_write(tmp_path, text)).heartbeat.venue_positions_interval_s == 5


def test_logon_credentials_come_from_the_named_env_vars(tmp_path: Path) -> None:
    """Username(553) / Password(554) from `username_env` / `password_env`; a named variable
    unset or empty is reported by field, and `check_credentials` names field and variable
    but never a value."""
    text = '[[venues]]\nname = "simA"\nusername_env = "TP_U"\npassword_env = "TP_P"\n'
    venue = load_config(_write(tmp_path, text)).venue("simA")
    both = {"TP_U": "alice", "TP_P": "s3cret"}
    assert logon_credentials(venue, both) == ([(553, "alice"), (554, "s3cret")], [])
    assert logon_credentials(venue, {"TP_P": "s3cret", "TP_U": ""}) == (
        [(554, "s3cret")],
        ["username_env"],
    )
    assert logon_credentials(load_config(_write(tmp_path, VENUE)).venue("simA"), both) == ([], [])
    cfg = load_config(_write(tmp_path, text))
    check_credentials(cfg, both)
    with pytest.raises(ConfigError) as info:
        check_credentials(cfg, {"TP_P": "s3cret"})
    assert info.value.field == "venues[simA].username_env" and "TP_U" in str(info.value)
    assert "s3cret" not in str(info.value)


def test_duplicate_venue_names_the_venue(tmp_path: Path) -> None:
    err = _config_error(tmp_path, '[[venues]]\nname = "simA"\n[[venues]]\nname = "simA"\n')
    assert "duplicate venue names ['simA']" in str(err)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.field == "config" and "file not found" in str(info.value)


def test_runtime_dir_too_long_for_ipc_is_refused(tmp_path: Path) -> None:
    """ipc:// paths are limited (~107 bytes): a runtime dir that cannot hold them is refused."""
    with pytest.raises(ConfigError) as info:
        load_config(DEMO, runtime_dir="/tmp/" + "x" * 90)
    assert info.value.field == "system.runtime_dir"


# --------------------------------------------------------------------------- through the CLI


@pytest.mark.parametrize(
    ("text", "field"),
    [
        pytest.param(
            "[supervisor]\nheartbeat_interval_s = -1" + VENUE,
            "supervisor.heartbeat_interval_s",
            id="negative_interval",
        ),
        pytest.param(
            "[supervisor.restart]\nbogus = 1" + VENUE,
            "supervisor.restart.bogus",
            id="unknown_nested_key",
        ),
        pytest.param("[supervisor\n", "config", id="invalid_toml"),
    ],
)
def test_run_with_bad_config_exits_2_naming_the_field(
    tmp_path: Path, text: str, field: str
) -> None:
    """`supervisor.py run --config bad.toml` exits 2 at once, stderr names the field, and
    nothing is started (no state dir created)."""
    state = tmp_path / "state"
    proc = _run_cli("run", "--config", str(_write(tmp_path, text)), "--state-dir", str(state))
    assert proc.returncode == 2, proc.stderr
    assert field in proc.stderr and "config error" in proc.stderr
    assert not state.exists()


def test_run_without_a_credential_env_var_exits_2_naming_it(tmp_path: Path) -> None:
    """`run` with a venue whose `username_env` names an unset variable exits 2 at once,
    naming the field and the variable, and starts nothing; other commands do not need the
    credentials (an operator's shell has no secrets)."""
    state = tmp_path / "state"
    text = '[[venues]]\nname = "simA"\nusername_env = "TP_TEST_UNSET_USERNAME_VAR"\n'
    path = _write(tmp_path, text)
    proc = _run_cli("run", "--config", str(path), "--state-dir", str(state))
    assert proc.returncode == 2, proc.stderr
    assert "venues[simA].username_env" in proc.stderr
    assert "TP_TEST_UNSET_USERNAME_VAR is not set" in proc.stderr
    assert not state.exists()
    proc = _run_cli("status", "--config", str(path), "--state-dir", str(state))
    assert proc.returncode == 3, proc.stderr  # not running: the config itself was fine


def test_run_with_missing_config_file_exits_2(tmp_path: Path) -> None:
    proc = _run_cli("run", "--config", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2
    assert "file not found" in proc.stderr


def test_bad_metrics_port_override_exits_2(tmp_path: Path) -> None:
    """The command-line overrides are validated like the file: --metrics-port 70000."""
    proc = _run_cli("run", "--config", str(DEMO), "--state-dir", str(tmp_path / "s"),
                    "--metrics-port", "70000")  # fmt: skip
    assert proc.returncode == 2
    assert "metrics.port" in proc.stderr


def test_status_with_bad_config_exits_2(tmp_path: Path) -> None:
    """Every command validates the config, not only `run`."""
    proc = _run_cli("status", "--config", str(_write(tmp_path, "bogus = 1" + VENUE)))
    assert proc.returncode == 2 and "bogus" in proc.stderr


def test_venue_dialect_defaults_follow_fix44_and_the_sim_inherits_it(tmp_path: Path) -> None:
    """Without a `[venues.dialect]` table a venue is strict FIX 4.4 (AN and AF served, an
    empty AF answered, H with its Instrument, 141=Y only on a cold start); the embedded
    simulator behaves as the venue's dialect says unless `[venues.sim.dialect]` differs."""
    text = (
        '[[venues]]\nname = "simA"\n[venues.dialect]\nserves_mass_status = false\n'
        '[venues.dialect.logon_fields]\n1137 = "9"\n[venues.sim]\n'
        '[[venues]]\nname = "simB"\n[venues.sim.dialect]\nserves_positions = false\n'
    )
    path = tmp_path / "c.toml"
    path.write_text(text)
    a, b = load_config(path).venues
    assert (a.dialect.serves_mass_status, a.sim_dialect.serves_mass_status) == (False, False)
    assert a.dialect.logon_extra() == [(1137, "9")]
    assert (b.dialect.serves_positions, b.sim_dialect.serves_positions) == (True, False)
    strict = b.dialect
    assert (strict.serves_positions, strict.serves_mass_status) == (True, True)
    assert (strict.empty_mass_status, strict.status_request_instrument) == ("report", True)
    assert strict.reset_seq_num == "cold_start"
    assert (a.schedule, a.tls) == (None, None)


def test_the_venue_onboarding_page_names_every_dialect_schedule_and_tls_key() -> None:
    """docs/fix-venues.md is the operator's reference for these tables: a key added to
    the config and not to the page fails here."""
    page = (Path(__file__).parents[2] / "docs" / "fix-venues.md").read_text()
    for model in (DialectCfg, ScheduleCfg, TlsCfg):
        for key in model.model_fields:
            assert f"`{key}`" in page or f"{key} =" in page, f"{model.__name__}.{key}"
