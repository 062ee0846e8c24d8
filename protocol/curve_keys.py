"""CurveZMQ key pairs of the link between hosts (docs/architecture.md, "Across hosts").

Each supervisor has its own key pair, in zmq.auth's certificate format (czmq's): the public
key in `<name>.key`, both keys in `<name>.key_secret`. The name is the supervisor's host
group (`core`, `edge-a`, ...), so a keys dir holds its own pair and the public keys of the
peers it accepts. A secret key file is written 0600, and one that its group or others may
access is refused when loaded: one `ConfigError` line naming the field, exit code 2.
"""

from __future__ import annotations

import datetime
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from protocol.exceptions import ConfigError
from protocol.link_config import CORE, LinkCfg, Placed, edge_groups

PUBLIC_SUFFIX = ".key"
SECRET_SUFFIX = ".key_secret"
KEY_LEN = 40  # Z85 text of a 32-byte Curve key

_BANNER = "#   ****  Generated on {now} by tradepulse keys generate  ****\n#   {what}\n\n"


def public_file(keys_dir: Path, name: str) -> Path:
    return keys_dir / f"{name}{PUBLIC_SUFFIX}"


def secret_file(keys_dir: Path, name: str) -> Path:
    return keys_dir / f"{name}{SECRET_SUFFIX}"


def _body(public: bytes, secret: bytes | None) -> str:
    text = f'metadata\ncurve\n    public-key = "{public.decode()}"\n'
    if secret is not None:
        text += f'    secret-key = "{secret.decode()}"\n'
    return text


def _write_new(path: Path, text: str, mode: int) -> None:
    """Create `path` with `mode` (never over an existing file: a key is not replaced by
    accident), whatever the umask; removed again if it could not be written whole."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            os.fchmod(fd, mode)
            fh.write(text)
            fh.flush()
            os.fsync(fd)
    except BaseException:  # a full disk: not an empty or cut key left behind, ours to remove
        path.unlink()
        raise


def generate(out_dir: Path, name: str) -> tuple[Path, Path]:
    """A new key pair `name` in `out_dir` (made 0700 if absent): (public, secret) files.
    FileExistsError if either file exists."""
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    pub_path, sec_path = public_file(out_dir, name), secret_file(out_dir, name)
    for path in (pub_path, sec_path):
        if path.exists():
            raise FileExistsError(f"{path} exists (a key is never overwritten)")
    public, secret = zmq.curve_keypair()
    now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    secret_head = _BANNER.format(now=now, what="CURVE SECRET key: keep it 0600, never copy it")
    public_head = _BANNER.format(now=now, what="CURVE public key: give it to the peers")
    _write_new(sec_path, secret_head + _body(public, secret), 0o600)
    try:
        _write_new(pub_path, public_head + _body(public, None), 0o644)
    except BaseException:  # no half pair: a secret without its public key made every
        sec_path.unlink()  # later generate fail as "exists"
        raise
    return pub_path, sec_path


def _load(path: Path, field: str) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(field, f"cannot load key {path}: {exc}") from None
    for key in (public, secret):
        if key is not None and len(key) != KEY_LEN:
            raise ConfigError(field, f"{path}: not a Curve key ({len(key)} characters)")
    return public, secret


def load_public(path: Path, field: str) -> bytes:
    """The Z85 public key in `path` (a `.key` or a `.key_secret` file)."""
    return _load(path, field)[0]


def load_secret(path: Path, field: str) -> tuple[bytes, bytes]:
    """(public, secret) of the key pair in `path`; refused if the file is not ours alone."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError(field, f"cannot read secret key {path}: {exc.strerror}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        mode = stat.S_IMODE(st.st_mode)
        raise ConfigError(
            field, f"secret key {path} is open to group or others (mode {mode:04o}): chmod 600"
        )
    public, secret = _load(path, field)
    if secret is None:
        raise ConfigError(field, f"{path} holds no secret key")
    return public, secret


@dataclass(frozen=True)
class LinkKeys:
    """What one supervisor's end of the link needs: its own pair and whom it accepts."""

    public: bytes
    secret: bytes
    peers: dict[bytes, str]  # a peer's public key -> its host group (the core: edge groups)


def link_keys(link: LinkCfg, venues: Iterable[Placed], group: str) -> LinkKeys | None:
    """The keys of host group `group`'s end of the link, loaded and checked (a
    `ConfigError` naming `link.keys_dir`); None when it has no link (every venue on the
    core) or runs it in plaintext without keys."""
    edges = edge_groups(venues)
    if not edges or not link.keys_dir:
        return None
    keys_dir = link.keys_path
    public, secret = load_secret(secret_file(keys_dir, group), "link.keys_dir")
    accepted = edges if group == CORE else [CORE]
    peers = {load_public(public_file(keys_dir, g), "link.keys_dir"): g for g in accepted}
    return LinkKeys(public, secret, peers)
