"""The server's TLS certificate: the configured one, or a self-signed one made once in state_dir.

Zero-config TLS: with ``tls.enabled`` and no ``cert``/``key``, the first start
creates an EC P-256 key and a self-signed certificate (valid for 20 years, with
SANs for this host's name, localhost, 127.0.0.1, ::1 and the configured host)
as ``state_dir/tls-cert.pem`` and ``state_dir/tls-key.pem``, both mode 0600, and
every later start reuses them, so the fingerprint clients pinned stays valid.
Only the listener process (or ``ftserver fingerprint``) calls ``ensure_certificate``;
workers just load the files it names.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import socket
from dataclasses import replace
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from common.io.tls import fingerprint_of
from ftserver.config import ConfigError, ServerConfig

CERT_NAME = "tls-cert.pem"
KEY_NAME = "tls-key.pem"
VALIDITY = datetime.timedelta(days=20 * 365)


def ensure_certificate(config: ServerConfig) -> ServerConfig:
    """Return the config with ``tls.cert`` and ``tls.key`` set, generating them if needed."""
    if config.tls.cert is not None and config.tls.key is not None:
        for key, path in (("tls.cert", config.tls.cert), ("tls.key", config.tls.key)):
            if not path.is_file():
                raise ConfigError(f"config key {key!r}: file {str(path)!r} does not exist")
        return config
    cert = Path(config.state_dir) / CERT_NAME
    key = Path(config.state_dir) / KEY_NAME
    if not (cert.is_file() and key.is_file()):
        _generate(cert, key, config.host)
    return replace(config, tls=replace(config.tls, cert=cert, key=key))


def certificate_fingerprint(cert_file: Path) -> str:
    """SHA-256 of the certificate's DER form, as 64 hex digits (what clients pin)."""
    try:
        pem = cert_file.read_bytes()
        certificate = x509.load_pem_x509_certificate(pem)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"config key 'tls.cert': cannot read a PEM certificate from "
                          f"{str(cert_file)!r}: {exc}") from None
    return fingerprint_of(certificate.public_bytes(serialization.Encoding.DER))


def _alternative_names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    dns = {socket.gethostname(), "localhost"}
    addresses = {"127.0.0.1", "::1"}
    if host and host not in ("0.0.0.0", "::"):
        try:
            ipaddress.ip_address(host)
            addresses.add(host)
        except ValueError:
            dns.add(host)
    names.extend(x509.DNSName(name) for name in sorted(dns) if name)
    names.extend(x509.IPAddress(ipaddress.ip_address(a)) for a in sorted(addresses))
    return names


def _generate(cert_file: Path, key_file: Path, host: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                            f"ftserver on {socket.gethostname()}"[:64])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_alternative_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    _write_private(key_file, key_pem)
    _write_private(cert_file, certificate.public_bytes(serialization.Encoding.PEM))


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically (never a half-written key)."""
    temporary = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
