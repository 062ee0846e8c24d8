"""Placement and the link: venues name their host group (core by default); a venue placed
on an edge needs the `[link]` endpoints and keys, each refusal naming the field; `run`
refuses an unknown host group and a secret key open to others with exit code 2."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from protocol.config import load_config
from protocol.curve_keys import generate, link_keys
from protocol.exceptions import ConfigError
from protocol.link_config import check_host_group, edge_groups, venues_of
from tests.helpers import SUPERVISOR, run_python

LINK = '[link]\nbind = "tcp://127.0.0.1:7100"\nconnect = "tcp://127.0.0.1:7100"\n'
EDGE_VENUE = '[[venues]]\nname = "simA"\nhost_group = "edge-a"\n'
CORE_VENUE = '[[venues]]\nname = "simB"\n'


def _error(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(_write(tmp_path, text))
    return info.value


def test_venues_default_to_the_core_and_need_no_link(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, CORE_VENUE))
    assert cfg.venue("simB").host_group == "core"
    assert edge_groups(cfg.venues) == []
    assert link_keys(cfg.link, cfg.venues, "core") is None
    assert cfg.link.allow_plaintext is False


def test_placement_lists_the_venues_of_each_group(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, f'{LINK}keys_dir = "k"\n{EDGE_VENUE}{CORE_VENUE}'))
    assert edge_groups(cfg.venues) == ["edge-a"]
    assert venues_of(cfg.venues, "edge-a") == ["simA"]
    assert venues_of(cfg.venues, "core") == ["simB"]
    check_host_group("edge-a", cfg.venues)
    with pytest.raises(ConfigError, match="no venue is placed on it"):
        check_host_group("edge-b", cfg.venues)


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (EDGE_VENUE, "link.bind", "required: venues are placed on edge-a"),
        ('[link]\nbind = "tcp://*:7100"\n' + EDGE_VENUE, "link.connect", "required"),
        (LINK + EDGE_VENUE, "link.keys_dir", "allow_plaintext"),
        ('[link]\nbind = "ipc:///tmp/x"\n' + CORE_VENUE, "link.bind", "tcp://<host>:<port>"),
        ('[link]\nconnect = "tcp://h:70000"\n' + CORE_VENUE, "link.connect", "tcp://"),
        (
            LINK + "[link.edge]\ncore_loss_cancel_s = 0\n" + CORE_VENUE,
            "link.edge.core_loss_cancel_s",
            "greater than 0",
        ),
        ('[[venues]]\nname = "simA"\nhost_group = "Edge A"\n', "venues[simA].host_group", "match"),
        (LINK + "allow_plaintext = 1\n" + CORE_VENUE, "link.allow_plaintext", "bool"),
    ],
)
def test_bad_link_config_names_the_field(tmp_path: Path, text: str, field: str, words: str) -> None:
    exc = _error(tmp_path, text)
    assert exc.field == field, exc
    assert words in str(exc)


def test_plaintext_link_needs_no_keys(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, f"{LINK}allow_plaintext = true\n{EDGE_VENUE}"))
    assert cfg.link.allow_plaintext
    assert link_keys(cfg.link, cfg.venues, "edge-a") is None


def test_link_keys_core_accepts_the_edge_groups_and_an_edge_only_the_core(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    core_pub, _ = generate(keys, "core")
    edge_pub, _ = generate(keys, "edge-a")
    cfg = load_config(_write(tmp_path, f'{LINK}keys_dir = "{keys}"\n{EDGE_VENUE}{CORE_VENUE}'))
    core = link_keys(cfg.link, cfg.venues, "core")
    edge = link_keys(cfg.link, cfg.venues, "edge-a")
    assert core is not None and edge is not None
    assert list(core.peers.values()) == ["edge-a"]
    assert list(edge.peers.values()) == ["core"]
    assert edge.public in core.peers and core.public in edge.peers


def test_run_refuses_an_open_secret_key_and_an_unknown_group_with_exit_2(
    tmp_path: Path,
) -> None:
    keys = tmp_path / "keys"
    generate(keys, "core")
    generate(keys, "edge-a")
    os.chmod(keys / "edge-a.key_secret", 0o644)
    path = _write(tmp_path, f'{LINK}keys_dir = "{keys}"\n{EDGE_VENUE}{CORE_VENUE}')
    base = [str(SUPERVISOR), "run", "--config", str(path), "--state-dir", str(tmp_path / "s")]
    open_key = run_python([*base, "--host-group", "edge-a"], timeout_s=30)
    assert open_key.returncode == 2
    assert open_key.stderr.strip().splitlines() == [
        f"tradepulse: config error: link.keys_dir: secret key {keys}/edge-a.key_secret is "
        "open to group or others (mode 0644): chmod 600"
    ]
    unknown = run_python([*base, "--host-group", "edge-z"], timeout_s=30)
    assert unknown.returncode == 2 and "host_group: 'edge-z'" in unknown.stderr
    assert not (tmp_path / "s").exists()  # refused before anything started


def test_run_refuses_a_core_whose_link_port_is_taken_with_exit_2(short_tmp: Path) -> None:
    """Also: each supervisor checks the credentials of its own venues only (the edge venue's
    password variable is unset: the core gets past it, the edge does not)."""
    keys = short_tmp / "keys"
    generate(keys, "core")
    generate(keys, "edge-a")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        link = f'[link]\nbind = "tcp://127.0.0.1:{port}"\nconnect = "tcp://127.0.0.1:{port}"\n'
        venue = f'{EDGE_VENUE}password_env = "TP_UNSET_EDGE_PW"\n{CORE_VENUE}'
        path = _write(short_tmp, f'{link}keys_dir = "{keys}"\n{venue}')
        argv = [str(SUPERVISOR), "run", "--config", str(path), "--state-dir", str(short_tmp / "s"),
                "--runtime-dir", str(short_tmp / "r"), "--metrics-port", "0"]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if k != "TP_UNSET_EDGE_PW"}
        done = run_python(argv, env=env, timeout_s=30)
        edge = run_python([*argv, "--host-group", "edge-a"], env=env, timeout_s=30)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("tradepulse: config error: link.bind: cannot listen on")
    assert edge.returncode == 2 and "TP_UNSET_EDGE_PW" in edge.stderr


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path
