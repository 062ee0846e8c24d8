"""Certificates the TLS tests make for themselves (`cryptography`, dev extra): a CA, a
venue certificate it signs for localhost / 127.0.0.1, a client certificate it signs, and
a second CA nobody trusts, with a venue certificate of its own. All PEM files in `root`."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA the connector trusts
    server_cert: Path  # the venue's, signed by `ca`, SAN localhost + 127.0.0.1
    server_key: Path
    client_cert: Path  # ours, signed by `ca` (mutual TLS)
    client_key: Path
    other_ca: Path  # a CA that signed nothing the venue serves
    other_server_cert: Path  # a venue certificate signed by `other_ca`
    other_server_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str, key: Key, issuer: tuple[str, Key] | None, *, ca: bool, usage: str = ""
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, issuer_key = issuer if issuer is not None else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        usage_ext = x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False,
        )  # fmt: skip
        builder = builder.add_extension(usage_ext, critical=True)
    if usage == "server":
        sans = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])
        builder = builder.add_extension(eku, critical=False)
    elif usage == "client":
        eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
        builder = builder.add_extension(eku, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(root: Path, stem: str, cert: x509.Certificate, key: Key | None) -> tuple[Path, Path]:
    cert_path, key_path = root / f"{stem}.crt", root / f"{stem}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


def make_pki(root: Path) -> Pki:
    root.mkdir(parents=True, exist_ok=True)
    keys = {name: ec.generate_private_key(ec.SECP256R1()) for name in ("ca", "s", "c", "o", "os")}
    ca = _cert("TradePulse Test CA", keys["ca"], None, ca=True)
    other = _cert("Untrusted Test CA", keys["o"], None, ca=True)
    server = _cert(
        "localhost", keys["s"], ("TradePulse Test CA", keys["ca"]), ca=False, usage="server"
    )
    client = _cert(
        "TRADEPULSE", keys["c"], ("TradePulse Test CA", keys["ca"]), ca=False, usage="client"
    )
    rogue = _cert(
        "localhost", keys["os"], ("Untrusted Test CA", keys["o"]), ca=False, usage="server"
    )
    ca_path, _ = _write(root, "ca", ca, None)
    other_path, _ = _write(root, "other-ca", other, None)
    server_paths = _write(root, "venue", server, keys["s"])
    client_paths = _write(root, "client", client, keys["c"])
    rogue_paths = _write(root, "other-venue", rogue, keys["os"])
    return Pki(ca_path, *server_paths, *client_paths, other_path, *rogue_paths)
