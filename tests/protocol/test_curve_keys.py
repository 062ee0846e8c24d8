"""CurveZMQ key pairs for the link between hosts: `tradepulse keys generate` writes a pair
whose secret file is the owner's alone, and a secret file open to others is refused."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest
import zmq.auth

from protocol import curve_keys
from protocol.curve_keys import generate, load_public, load_secret
from protocol.exceptions import ConfigError
from tests.helpers import SUPERVISOR, run_python


def test_generate_writes_a_pair_with_a_0600_secret_that_zmq_auth_reads(tmp_path: Path) -> None:
    public_path, secret_path = generate(tmp_path / "keys", "edge-a")
    assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "keys").st_mode) == 0o700
    public, secret = zmq.auth.load_certificate(secret_path)
    assert secret is not None and len(secret) == 40
    assert zmq.auth.load_certificate(public_path) == (public, None)
    assert load_secret(secret_path, "link.keys_dir") == (public, secret)
    assert load_public(public_path, "link.keys_dir") == public


def test_generate_never_overwrites_a_key(tmp_path: Path) -> None:
    _, secret_path = generate(tmp_path, "core")
    before = secret_path.read_bytes()
    with pytest.raises(FileExistsError):
        generate(tmp_path, "core")
    assert secret_path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o607])
def test_secret_key_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    _, secret_path = generate(tmp_path, "core")
    os.chmod(secret_path, mode)
    with pytest.raises(ConfigError) as info:
        load_secret(secret_path, "link.keys_dir")
    assert info.value.field == "link.keys_dir"
    assert "chmod 600" in str(info.value) and f"{mode:04o}" in str(info.value)


def test_secret_key_0700_is_the_owners_alone(tmp_path: Path) -> None:
    _, secret_path = generate(tmp_path, "core")
    os.chmod(secret_path, 0o700)
    assert load_secret(secret_path, "link.keys_dir")[1] is not None


def test_public_key_file_is_no_secret_key(tmp_path: Path) -> None:
    public_path, _ = generate(tmp_path, "core")
    os.chmod(public_path, 0o600)
    with pytest.raises(ConfigError, match="no secret key"):
        load_secret(public_path, "link.keys_dir")


def test_cli_generates_without_a_config_and_refuses_a_bad_name(tmp_path: Path) -> None:
    out = tmp_path / "k"
    done = run_python([str(SUPERVISOR), "keys", "generate", "--out", str(out), "--name", "edge-b"])
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(os.stat(out / "edge-b.key_secret").st_mode) == 0o600
    assert (out / "edge-b.key").exists()
    again = run_python([str(SUPERVISOR), "keys", "generate", "--out", str(out), "--name", "edge-b"])
    assert again.returncode == 1 and "never overwritten" in again.stderr
    bad = run_python([str(SUPERVISOR), "keys", "generate", "--out", str(out), "--name", "../x"])
    assert bad.returncode == 1 and "--name" in bad.stderr


@pytest.mark.parametrize("failing_write", [1, 2])
def test_generate_on_a_full_disk_leaves_no_half_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing_write: int
) -> None:
    """A write that fails (ENOSPC at the secret's or the public key's fsync) removes what
    was created: a secret left without its public key (or an empty one) made every later
    `keys generate` fail as "exists (a key is never overwritten)"."""
    real_fsync, calls = os.fsync, []

    def fsync(fd: int) -> None:
        calls.append(fd)
        if len(calls) == failing_write:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(curve_keys.os, "fsync", fsync)
    with pytest.raises(OSError, match="No space left"):
        generate(tmp_path, "core")
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(curve_keys.os, "fsync", real_fsync)
    assert generate(tmp_path, "core")  # the space freed: the pair is made
