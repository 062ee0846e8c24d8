"""A ccxt venue in the FIX-only admin paths: it has no FIX session, store or message log,
so `fix log|seq` says so (exit 2) instead of "it never connected", preflight's disk need
counts no FIX message logs for it, and a post-mortem bundle does not list its FIX log as
missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from actors.supervisor import postmortem
from actors.supervisor.postmortem import Bundle
from actors.supervisor.preflight_checks import disk_parts
from protocol.config import SystemConfig, parse_config
from tests.helpers import REPO_ROOT

CCXT = {"exchange": "binance", "api_key_env": "TP_AD_KEY", "secret_env": "TP_AD_SECRET"}
CONFIG = f"""
[system]
state_dir = "{{state}}"
runtime_dir = "{{rt}}"

[[venues]]
name = "fx"
port = 9

[[venues]]
name = "bx"
kind = "ccxt"
[venues.ccxt]
exchange = "binance"
api_key_env = "{CCXT["api_key_env"]}"
secret_env = "{CCXT["secret_env"]}"
symbols = ["BTC/USDT"]
"""


def _cfg(tmp_path: Path, sim: bool = False) -> SystemConfig:
    extra = {"sim": {"reference_prices": {"BTC/USDT": "100"}}} if sim else {}
    venues = [
        {"name": "fx", "port": 9, **extra},
        {"name": "bx", "kind": "ccxt", "ccxt": CCXT | {"symbols": ["BTC/USDT"]}, **extra},
    ]
    system = {"state_dir": str(tmp_path / "state"), "runtime_dir": str(tmp_path / "rt")}
    return parse_config({"system": system, "venues": venues})


@pytest.mark.parametrize("action", ["seq", "log"])
def test_fix_log_and_seq_of_a_ccxt_venue_say_it_has_no_fix_session(
    short_tmp: Path, action: str
) -> None:
    config = short_tmp / "tp.toml"
    config.write_text(CONFIG.format(state=short_tmp / "state", rt=short_tmp / "rt"))
    done = subprocess.run(
        [sys.executable, "supervisor.py", "fix", action, "--venue", "bx", "--config", str(config)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done
    assert (
        done.stderr.strip() == "tradepulse fix: venue 'bx' is a ccxt venue: it has no FIX session"
    )


def test_preflight_counts_fix_message_logs_for_fix_venues_only(tmp_path: Path) -> None:
    """Both venues simulated: the FIX venue's two logs (ours and the simulator's) at their
    cap, nothing for the ccxt one; the bundle staging holds the FIX venue's log only."""
    cfg = _cfg(tmp_path, sim=True)
    fx = cfg.venues[0].message_log
    parts = disk_parts(cfg)
    assert parts["FIX message logs"] == 2 * fx.max_file_bytes * fx.keep_files
    staged = 2 + 1  # the log, the journal, fx's FIX log
    assert parts["bundle staging"] == cfg.logging.postmortem_max_bytes * (3 * staged // 2 + 1)


def test_a_post_mortem_lists_no_fix_log_of_a_ccxt_venue_as_missing(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    (tmp_path / "state").mkdir()
    (tmp_path / "staging").mkdir()
    bundle = Bundle(tmp_path / "staging")
    postmortem.collect(cfg, bundle, 1_796_000_000.0, 1_796_000_060.0)
    missing = {m["item"] for m in bundle.missing}
    assert "fix/fx.log" in missing
    assert not [m for m in missing if "bx" in m], missing
