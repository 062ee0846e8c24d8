"""TLS contexts for the FIX TCP connection (stdlib `ssl`, TLS 1.2 or later).

- `client_context(tls)`: the connector's (`[venues.tls]`). The venue's certificate is
  always verified, against `ca_file` or the system's trusted CAs; its name is checked
  (against `server_hostname`, else the venue's host) unless `check_hostname = false`; a
  client certificate (`cert_file` / `key_file`) is offered when configured.
- `server_context(cert_file, key_file, client_ca_file)`: the simulated venue's
  (`[venues.sim] tls_*`); with a client CA it requires a client certificate signed by it.

A file that is missing, unreadable or does not load is a `ConfigError` naming the field
(`where` + the key), so `tradepulse run` exits 2 with one line (`protocol.config.check_tls`).
"""

from __future__ import annotations

import ssl

from protocol.exceptions import ConfigError
from protocol.fix_config import TlsCfg

MIN_VERSION = ssl.TLSVersion.TLSv1_2


def client_context(tls: TlsCfg, where: str = "tls") -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, hostname check on
    ctx.minimum_version = MIN_VERSION
    if tls.ca_file:
        _load_cas(ctx, tls.ca_file, f"{where}.ca_file")
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
    ctx.check_hostname = tls.check_hostname  # the certificate itself is verified either way
    if tls.cert_file:
        _load_pair(ctx, tls.cert_file, tls.key_file, where, ("cert_file", "key_file"))
    return ctx


def server_context(
    cert_file: str, key_file: str, client_ca_file: str = "", where: str = "sim"
) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = MIN_VERSION
    _load_pair(ctx, cert_file, key_file, where, ("tls_cert_file", "tls_key_file"))
    if client_ca_file:
        _load_cas(ctx, client_ca_file, f"{where}.tls_client_ca_file")
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def failure_reason(exc: BaseException) -> str:
    """One line for a failed handshake: the verification message where there is one
    (unknown CA, name mismatch, expired), else the TLS alert / error reason."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).lower().replace("_", " ")
    return str(exc) or type(exc).__name__


def _readable(path: str, field: str) -> None:
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise ConfigError(field, f"cannot read {path}: {exc.strerror or exc}") from None


def _load_cas(ctx: ssl.SSLContext, path: str, field: str) -> None:
    _readable(path, field)
    try:
        ctx.load_verify_locations(cafile=path)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(field, f"{path}: no PEM certificate loads ({_why(exc)})") from None


def _load_pair(
    ctx: ssl.SSLContext, cert_file: str, key_file: str, where: str, keys: tuple[str, str]
) -> None:
    cert_field, key_field = f"{where}.{keys[0]}", f"{where}.{keys[1]}"
    _readable(cert_file, cert_field)
    _readable(key_file, key_field)
    try:  # the certificate alone first, so a failure names the right field
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=cert_file)
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(cert_field, f"{cert_file}: not a PEM certificate ({_why(exc)})") from None
    try:
        ctx.load_cert_chain(cert_file, key_file, password=_no_password)
    except (ssl.SSLError, ValueError) as exc:
        text = f"{key_file}: the key does not load or does not match {keys[0]} ({_why(exc)})"
        raise ConfigError(key_field, text) from None


def _no_password() -> bytes:
    return b""  # an encrypted key fails to load instead of prompting on the terminal


def _why(exc: BaseException) -> str:
    return failure_reason(exc)
