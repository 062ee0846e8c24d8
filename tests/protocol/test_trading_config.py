"""The `[trading]` config section (`protocol.windows`): what it accepts (overnight windows,
whole days, one-off and weekly blackouts, local or offset date-times) and every kind of bad
value refused naming the field; `run` exits 2 on one before starting anything."""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path

import pytest

from protocol.config import load_config, parse_config
from protocol.exceptions import ConfigError
from protocol.windows import MAX_BLACKOUTS, MAX_WINDOWS, BlackoutCfg, TradingCfg, WindowCfg
from tests.helpers import REPO_ROOT, SUPERVISOR, run_python

VENUE = '\n[[venues]]\nname = "simA"\n'


def _load(tmp_path: Path, trading: str) -> object:
    path = tmp_path / "c.toml"
    path.write_text("[trading]\n" + trading + "\n" + VENUE)
    return load_config(path)


def test_no_trading_section_means_always_open(tmp_path: Path) -> None:
    """Without `[trading]`: UTC, no windows, no blackouts (today's behaviour)."""
    path = tmp_path / "c.toml"
    path.write_text(VENUE)
    trading = load_config(path).trading
    assert (trading.timezone, trading.windows, trading.blackouts) == ("UTC", [], [])
    assert not trading.configured


def test_a_full_trading_section_loads(tmp_path: Path) -> None:
    """Overnight and whole-day windows, HH:MM:SS, a one-off blackout in local time and one
    with an offset, a weekly blackout."""
    cfg = _load(
        tmp_path,
        'timezone = "America/New_York"\n'
        'windows = [{days = ["sun"], start = "18:00", end = "02:00"},\n'
        '  {days = ["mon", "tue"], start = "00:00", end = "24:00"},\n'
        '  {days = ["wed"], start = "09:30:15", end = "16:00"}]\n'
        'blackouts = [{start = "2025-12-24T13:00", end = "2025-12-26", reason = "Christmas"},\n'
        '  {start = "2025-07-04T00:00-04:00", end = "2025-07-05T00:00-04:00", reason = "July 4"},\n'
        '  {days = ["wed"], start = "13:55", end = "14:05", reason = "FOMC"}]',
    )
    trading = cfg.trading  # type: ignore[attr-defined]
    assert trading.windows[0].ends_next_day and trading.windows[1].ends_next_day
    assert not trading.windows[2].ends_next_day
    start, end = trading.blackouts[0].span(trading.zone)
    assert start == dt.datetime(2025, 12, 24, 18, 0, tzinfo=dt.UTC)  # 13:00 EST
    assert end == dt.datetime(2025, 12, 26, 5, 0, tzinfo=dt.UTC)
    assert trading.blackouts[2].recurring is not None
    assert trading.blackouts[0].recurring is None


W = '{days = ["mon"], start = "09:00", end = "17:00"}'
BAD = [
    pytest.param('timezone = "Mars/Olympus"', "trading.timezone", "unknown time zone", id="zone"),
    pytest.param('timezone = "America"', "trading.timezone", "unknown time zone", id="zone_dir"),
    pytest.param('windows = [{days = ["mon"], start = "09:00", end = "09:00"}]',
                 "trading.windows[0]", "both 09:00", id="start_equals_end"),
    pytest.param('windows = [{days = ["mon"], start = "9:00", end = "17:00"}]',
                 "trading.windows[0]", "not a time of day", id="bad_time"),
    pytest.param('windows = [{days = ["mon"], start = "24:00", end = "17:00"}]',
                 "trading.windows[0]", "not a time of day", id="start_24"),
    pytest.param('windows = [{days = ["mon"], start = "09:00+01:00", end = "17:00"}]',
                 "trading.windows[0]", "not a time of day", id="time_with_offset"),
    pytest.param('windows = [{days = ["monday"], start = "09:00", end = "17:00"}]',
                 "trading.windows[0].days[0]", "'mon'", id="bad_day"),
    pytest.param('windows = [{days = ["mon", "mon"], start = "09:00", end = "17:00"}]',
                 "trading.windows[0].days", "twice", id="day_twice"),
    pytest.param('windows = [{days = [], start = "09:00", end = "17:00"}]',
                 "trading.windows[0].days", "at least 1", id="no_days"),
    pytest.param('windows = [{days = ["mon"], start = "09:00"}]',
                 "trading.windows[0].end", "required", id="no_end"),
    pytest.param('windows = [{days = ["mon"], start = "09:00", end = "17:00", tz = "x"}]',
                 "trading.windows[0].tz", "unknown key", id="unknown_key"),
    pytest.param('blackouts = [{start = "2025-12-24", end = "2025-12-25"}]',
                 "trading.blackouts[0].reason", "required", id="no_reason"),
    pytest.param('blackouts = [{start = "2025-12-24", end = "2025-12-25", reason = " "}]',
                 "trading.blackouts[0].reason", "blank", id="blank_reason"),
    pytest.param('blackouts = [{start = "2025-12-25", end = "2025-12-24", reason = "x"}]',
                 "trading.blackouts[0]", "end must be after start", id="reversed"),
    pytest.param('blackouts = [{start = "2025-01-01", end = "2026-06-01", reason = "x"}]',
                 "trading.blackouts[0]", "longer than 366 days", id="too_long"),
    pytest.param('blackouts = [{start = "2025-12-24T12:00", end = "2025-12-24T05:30-05:00", '
                 'reason = "x"}]\ntimezone = "Europe/Berlin"',
                 "trading", "blackouts[0] (x): end must be after start", id="reversed_mixed"),
    pytest.param('blackouts = [{start = "13:00", end = "14:00", reason = "x"}]',
                 "trading.blackouts[0]", "needs days", id="times_without_days"),
    pytest.param('blackouts = [{days = ["fri"], start = "2025-12-24", end = "14:00", reason = "'
                 'x"}]',
                 "trading.blackouts[0]", "not a time of day", id="weekly_with_date"),
    pytest.param(f"windows = [{', '.join([W] * (MAX_WINDOWS + 1))}]",
                 "trading.windows", f"at most {MAX_WINDOWS}", id="too_many_windows"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "field", "words"), BAD)
def test_bad_trading_config_names_the_field(
    tmp_path: Path, text: str, field: str, words: str
) -> None:
    """Each bad `[trading]` value is a ConfigError naming the dotted field and what is
    wrong (exit code 2 at `run`)."""
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert info.value.field == field
    assert words.lower() in str(info.value).lower()


def test_too_many_blackouts_are_refused(tmp_path: Path) -> None:
    one = '{start = "2025-12-24", end = "2025-12-25", reason = "x"}'
    with pytest.raises(ConfigError, match=f"at most {MAX_BLACKOUTS}"):
        _load(tmp_path, f"blackouts = [{', '.join([one] * (MAX_BLACKOUTS + 1))}]")


def test_run_with_an_unknown_time_zone_exits_2_naming_the_field(tmp_path: Path) -> None:
    """`run` with `trading.timezone` unknown: exit 2 at once, one stderr line naming the
    field, no traceback, nothing started."""
    path = tmp_path / "c.toml"
    path.write_text('[trading]\ntimezone = "Europe/Atlantis"\n' + VENUE)
    state = tmp_path / "state"
    proc = run_python(
        [str(SUPERVISOR), "run", "--config", str(path), "--state-dir", str(state)], timeout_s=30
    )
    assert proc.returncode == 2, proc.stderr
    assert "trading.timezone" in proc.stderr and "Europe/Atlantis" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not state.exists()


def test_the_runbook_example_loads_and_the_docs_name_every_key() -> None:
    """The runbook's `[trading]` example is a valid section, and the README's config table
    names every key of the section (the operator's reference)."""
    runbook = (REPO_ROOT / "docs" / "runbook.md").read_text()
    example = re.search(r"```toml\n(\[trading\].*?)```", runbook, re.S)
    assert example is not None
    trading = parse_config({**tomllib.loads(example.group(1)), "venues": [{"name": "a"}]}).trading
    assert trading.windows[1].ends_next_day and trading.blackouts[1].recurring is not None
    readme = (REPO_ROOT / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `[trading]`"))
    for model in (TradingCfg, WindowCfg, BlackoutCfg):
        for key in model.model_fields:
            assert re.search(rf"\b{key}\b", row), key


@pytest.mark.parametrize(
    ("zone", "start", "end"),
    [
        ("America/New_York", "9999-12-30T13:00", "9999-12-31T22:00"),  # past year 9999 in UTC
        ("Asia/Tokyo", "0001-01-01T00:00", "0001-01-02T00:00"),  # before year 1 in UTC
    ],
)
def test_a_one_off_blackout_near_the_ends_of_time_is_a_config_error(
    tmp_path: Path, zone: str, start: str, end: str
) -> None:
    """A one-off blackout whose UTC instant leaves datetime's range is a ConfigError
    naming the field ("date out of range"), not an OverflowError."""
    text = f'timezone = "{zone}"\nblackouts = [{{start = "{start}", end = "{end}", reason = "x"}}]'
    with pytest.raises(ConfigError, match="date out of range") as info:
        _load(tmp_path, text)
    assert info.value.field == "trading"


def test_run_with_a_year_9999_blackout_exits_2_without_a_traceback(tmp_path: Path) -> None:
    """`run` with such a blackout: exit 2, one stderr line naming the field, no traceback."""
    path = tmp_path / "c.toml"
    path.write_text(
        '[trading]\ntimezone = "America/New_York"\nblackouts = [{start = "9999-12-30T13:00", '
        'end = "9999-12-31T22:00", reason = "Christmas"}]\n' + VENUE
    )
    state = tmp_path / "state"
    proc = run_python(
        [str(SUPERVISOR), "run", "--config", str(path), "--state-dir", str(state)], timeout_s=30
    )
    assert proc.returncode == 2, proc.stderr
    assert "trading" in proc.stderr and "date out of range" in proc.stderr
    assert "Traceback" not in proc.stderr
