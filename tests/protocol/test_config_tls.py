"""TLS files are checked at start (`protocol.config.check_tls`): a file that is missing,
unreadable or does not load is a `ConfigError` naming the field, and `tradepulse run`
exits 2 with one line and no traceback, before anything starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from protocol.config import SystemConfig, check_tls, parse_config
from protocol.exceptions import ConfigError
from tests.helpers import SUPERVISOR, run_python, to_toml
from tests.tlscerts import Pki, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _cfg(tls: dict[str, Any] | None = None, sim: dict[str, Any] | None = None) -> SystemConfig:
    venue: dict[str, Any] = {"name": "simA"}
    if tls is not None:
        venue["tls"] = tls
    if sim is not None:
        venue["sim"] = sim
    return parse_config({"venues": [venue]})


def _garbage(tmp_path: Path) -> str:
    path = tmp_path / "garbage.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    return str(path)


def test_valid_tls_files_pass(pki: Pki) -> None:
    tls = {
        "ca_file": str(pki.ca),
        "cert_file": str(pki.client_cert),
        "key_file": str(pki.client_key),
    }
    sim = {
        "tls_cert_file": str(pki.server_cert), "tls_key_file": str(pki.server_key),
        "tls_client_ca_file": str(pki.ca),
    }  # fmt: skip
    check_tls(_cfg(tls, sim))
    check_tls(_cfg({}))  # no ca_file: the system's CAs


@pytest.mark.parametrize(
    ("case", "field", "says"),
    [
        ("ca_missing", "venues[simA].tls.ca_file", "No such file"),
        ("ca_directory", "venues[simA].tls.ca_file", "cannot read"),
        ("ca_garbage", "venues[simA].tls.ca_file", "no PEM certificate loads"),
        ("cert_garbage", "venues[simA].tls.cert_file", "not a PEM certificate"),
        ("key_mismatch", "venues[simA].tls.key_file", "does not match cert_file"),
        ("key_missing", "venues[simA].tls.key_file", "No such file"),
        ("sim_cert_missing", "venues[simA].sim.tls_cert_file", "No such file"),
        ("sim_key_mismatch", "venues[simA].sim.tls_key_file", "does not match"),
        ("sim_client_ca_garbage", "venues[simA].sim.tls_client_ca_file", "no PEM"),
    ],
)
def test_a_tls_file_that_does_not_load_names_its_field(
    tmp_path: Path, pki: Pki, case: str, field: str, says: str
) -> None:
    garbage, missing = _garbage(tmp_path), str(tmp_path / "nope.pem")
    ca, cert, key = str(pki.ca), str(pki.client_cert), str(pki.client_key)
    scert, skey = str(pki.server_cert), str(pki.server_key)
    tls: dict[str, Any] | None = None
    sim: dict[str, Any] | None = None
    match case:
        case "ca_missing":
            tls = {"ca_file": missing}
        case "ca_directory":
            tls = {"ca_file": str(tmp_path)}
        case "ca_garbage":
            tls = {"ca_file": garbage}
        case "cert_garbage":
            tls = {"ca_file": ca, "cert_file": garbage, "key_file": key}
        case "key_mismatch":
            tls = {"ca_file": ca, "cert_file": cert, "key_file": str(pki.other_server_key)}
        case "key_missing":
            tls = {"ca_file": ca, "cert_file": cert, "key_file": missing}
        case "sim_cert_missing":
            sim = {"tls_cert_file": missing, "tls_key_file": skey}
        case "sim_key_mismatch":
            sim = {"tls_cert_file": scert, "tls_key_file": key}
        case "sim_client_ca_garbage":
            sim = {"tls_cert_file": scert, "tls_key_file": skey, "tls_client_ca_file": garbage}
    with pytest.raises(ConfigError) as info:
        check_tls(_cfg(tls, sim))
    assert info.value.field == field
    assert says in str(info.value)


@pytest.mark.parametrize(
    "sim",
    [{"tls_cert_file": "a.pem"}, {"tls_key_file": "a.key"}, {"tls_client_ca_file": "ca.pem"}],
)
def test_the_simulator_tls_keys_go_together(sim: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        _cfg(sim=sim)
    assert info.value.field == "venues[simA].sim"


def test_run_with_an_unloadable_tls_file_exits_2_with_one_line(tmp_path: Path, pki: Pki) -> None:
    """`tradepulse run` with a ca_file that does not exist: exit 2, one stderr line naming
    the field, no traceback, nothing started (no state dir)."""
    state = tmp_path / "state"
    config = tmp_path / "tls.toml"
    venue = {"name": "simA", "tls": {"ca_file": str(tmp_path / "missing-ca.pem")}, "sim": {}}
    config.write_text(to_toml({"venues": [venue]}))
    proc = run_python([str(SUPERVISOR), "run", "--config", str(config), "--state-dir", str(state)])
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "venues[simA].tls.ca_file" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not state.exists()
