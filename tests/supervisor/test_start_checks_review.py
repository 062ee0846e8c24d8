"""Review of the start checks added with the working-tree diff of 2026-12-06 (runtime-dir
flock, state subdirs that must be dirs, `paths.open_regular`, positive sim/risk decimals,
Ctrl-C during a start). Each test names a case the change gets wrong; in-process, no
system started."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import supervisor
from actors.runtime.actor import ActorArgs
from actors.supervisor import forkserver
from actors.supervisor.commands import base as command_base
from actors.supervisor.host import lock_state_dir, prepare_runtime_dir
from actors.supervisor.preflight_checks import credential_checks
from protocol.config import (
    SimCfg,
    SystemConfig,
    check_credentials,
    load_config,
    missing_credentials,
    parse_config,
)
from protocol.exceptions import ConfigError
from tests.helpers import REPO_ROOT

CONFIG = str(REPO_ROOT / "deploy" / "config" / "demo.toml")


def _cfg(state: Path, runtime: Path) -> SystemConfig:
    system = {"state_dir": str(state), "runtime_dir": str(runtime)}
    return parse_config({"system": system, "venues": [{"name": "simA", "sim": {}}]})


@pytest.fixture
def lock_fds() -> Iterator[list[int]]:
    """The fds the locks were taken on, closed at the end (and PROMETHEUS_MULTIPROC_DIR,
    which prepare_runtime_dir sets, put back)."""
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    fds_before = set(os.listdir("/proc/self/fd"))
    fds: list[int] = []
    yield fds
    for name in set(os.listdir("/proc/self/fd")) - fds_before:  # the runtime lock's: not returned
        try:
            if os.readlink(f"/proc/self/fd/{name}").endswith("supervisor.lock"):
                os.close(int(name))
        except OSError:
            pass
    if before is None:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = before


def test_a_runtime_dir_that_is_the_state_dir_is_not_locked_against_itself(
    tmp_path: Path, lock_fds: list[int]
) -> None:
    """`system.runtime_dir` = `system.state_dir` (one private 0700 dir for everything) ran
    before the runtime-dir lock. Both locks are now `<dir>/supervisor.lock`: the runtime
    one is a second open of the file the state-dir lock holds, flock conflicts between two
    opens in one process, and `run` exits 3 with 'runtime dir ... is in use by another
    supervisor (pid <its own pid>)'."""
    state = tmp_path / "state"
    cfg = _cfg(state, state)
    lock_fds.append(lock_state_dir(cfg))
    assert prepare_runtime_dir(cfg) == state


@pytest.mark.parametrize("sub", ["fix/simA", "venues/simA"])
def test_a_venue_state_dir_that_is_a_regular_file_is_refused_at_start(
    tmp_path: Path, lock_fds: list[int], sub: str
) -> None:
    """The new check refuses `state/oms`, `state/fix`, `state/risk`, `state/logs` that are
    not dirs, but not one level down: `state/fix/simA` (the connector's session store and
    exec outbox) or `state/venues/simA` (the simulator's book) a regular file passes, and
    that actor crash-loops at setup with a traceback per restart, as `state/fix` did."""
    cfg = _cfg(tmp_path / "state", tmp_path / "rt")
    path = tmp_path / "state" / sub
    path.parent.mkdir(parents=True)
    path.write_text("a regular file")
    try:
        with pytest.raises(ConfigError, match=sub):
            lock_fds.append(lock_state_dir(cfg))
    finally:
        path.unlink()


def test_a_simulated_venue_without_a_market_maker_is_a_valid_config() -> None:
    """`quote_qty = 0`: a simulated venue where only the client's own orders trade (the
    venuesim tests' NO_MM: test_engine, test_pump, test_order_gc build it). Only a zero
    `tick_size` divides; `quote_qty` must stay >= 0, not > 0."""
    assert SimCfg(quote_qty=Decimal("0")).quote_qty == 0
    cfg = parse_config({"venues": [{"name": "simA", "sim": {"quote_qty": "0"}}]})
    sim = cfg.venues[0].sim
    assert sim is not None and sim.quote_qty == 0


def test_a_config_path_that_is_a_directory_is_named_a_directory(tmp_path: Path) -> None:
    """`--config <a dir>` said 'cannot read X: Is a directory'; `open_regular` opens a
    directory fine (O_RDONLY) and the message now calls it 'a pipe, a FIFO or a device'."""
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert "directory" in str(info.value).lower(), str(info.value)


def test_a_config_path_too_big_to_be_a_config_is_refused_unread(tmp_path: Path) -> None:
    """`--config` of a multi-GB file (a log, a core dump) was read whole, decoded and parsed
    before the refusal: ~2 bytes of memory per byte, on the host of the OMS. Now its size
    is the refusal, at once (a sparse file: nothing of it is read)."""
    big = tmp_path / "supervisor.log"
    with big.open("wb") as fh:
        fh.truncate(64 * 2**30)  # sparse: 64 GiB in size, no blocks
    with pytest.raises(ConfigError) as info:
        load_config(big)
    assert str(info.value).endswith(f"{big}: {64 * 2**30} bytes, not a config (at most 16 MiB)")


def test_ctrl_c_while_a_control_command_waits_does_not_say_nothing_was_started(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The KeyboardInterrupt handler of `supervisor.main` wraps every command, not only
    `run`'s start: Ctrl-C while `tradepulse kill-switch engage` (or shutdown, flatten...)
    waits for its reply, the request already sent, prints 'interrupted while starting;
    nothing was started' - an operator may take it that the command did not happen."""

    def interrupted(*_args: Any, **_kwargs: Any) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(command_base, "control_command", interrupted)
    argv = ["kill-switch", "engage", "--reason", "review", "--config", CONFIG]
    try:
        code = supervisor.main([*argv, "--state-dir", str(tmp_path)])
    except KeyboardInterrupt:  # before the handler: a traceback (and the session would end)
        pytest.fail("KeyboardInterrupt out of supervisor.main: a traceback")
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "nothing was started" not in err and "while starting" not in err, (code, err)


# an Ed25519 key in PKCS#8 PEM, as Binance issues them: ccxt's binance signs with
# `eddsa(query, secret)` when the secret holds 'PRIVATE KEY' (RSA keys likewise, longer)
ED25519_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    "-----END PRIVATE KEY-----\n"
)


def test_a_ccxt_secret_that_is_a_pem_private_key_is_a_valid_credential() -> None:
    """The new 'printable' rule was meant for FIX (a pasted SOH or newline in a Logon
    field); it applies to every credential variable, a ccxt venue's `secret_env` too. A
    Binance Ed25519 or RSA API key's secret is a PEM private key - newlines in it by its
    format - and ccxt takes it so: `run` now refuses it as 'not set (or empty, or not
    printable)', exit 2."""
    ccxt = {"exchange": "binance", "api_key_env": "TP_RV_KEY", "secret_env": "TP_RV_SECRET"}
    venue = {"name": "bx", "kind": "ccxt", "ccxt": ccxt | {"symbols": ["BTC/USDT"]}}
    cfg = parse_config({"venues": [venue]})
    env = {"TP_RV_KEY": "k" * 64, "TP_RV_SECRET": ED25519_PEM}
    assert missing_credentials(cfg, env) == []
    check_credentials(cfg, env)


def test_the_fork_servers_config_read_at_a_spawn_does_not_wait_on_a_fifo(tmp_path: Path) -> None:
    """`open_regular` keeps the supervisor (a SIGHUP reload) from waiting on a config path
    that became a FIFO, but the fork server reads the same path at every spawn
    (`forkserver.ConfigCache.get`: `path.read_bytes()`): the next restart of any actor
    blocks the fork server in open() until some process writes the FIFO, and with
    /dev/zero it reads without end. Expected: None at once (the actor then loads the config
    itself and reports it)."""
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    args = ActorArgs(actor_id="risk", kind="risk", epoch=1, config_path=str(fifo))
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(forkserver.ConfigCache().get(args)))
    reader.start()
    reader.join(10)  # a deadline for a read that must not block at all
    blocked = reader.is_alive()
    if blocked:  # unblock it: a writer opens the FIFO (its open returns), then leaves
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(10)
    assert not blocked, "the fork server's config read waited on a FIFO"
    assert got == [None]


def test_preflight_does_not_call_a_set_credential_with_a_control_character_unset() -> None:
    """`run` now refuses a credential variable holding a control character (a pasted SOH or
    newline) through `missing_credentials`; preflight's row, built on the same list, says
    'not set: TP_RV_PW (...)' of a variable that is set, sending the operator to look for
    an unset variable. The row must say what is wrong with it."""
    venue = {"name": "simA", "username_env": "TP_RV_USER", "password_env": "TP_RV_PW", "sim": {}}
    cfg = parse_config({"venues": [venue]})
    [row] = credential_checks(cfg, {"TP_RV_USER": "user", "TP_RV_PW": "pw\x01rest"})
    assert row.status == "FAIL"
    assert "SOH" in row.detail and "TP_RV_PW" in row.detail, row.detail
