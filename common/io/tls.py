"""TLS contexts and certificate fingerprints, shared by the server and the client.

Trust in ft is by pinning, as ssh's known_hosts: the client does not check a
certificate chain or a host name, it compares the SHA-256 of the server's
certificate (DER) with the one it pinned. So the client context verifies
nothing by itself, and ``ftclient.trust`` decides before any request is sent.
Both sides insist on TLS 1.2 or newer. Nothing here opens a socket.
"""

from __future__ import annotations

import hashlib
import re
import ssl

FINGERPRINT_HEX = re.compile(r"^[0-9a-f]{64}$")
TLS_RECORD_HANDSHAKE = 0x16
"""First byte of every TLS ClientHello: tells a TLS client from a plaintext one."""


def fingerprint_of(der: bytes) -> str:
    """The SHA-256 of a DER certificate, as 64 lowercase hex digits."""
    return hashlib.sha256(der).hexdigest()


def normalize_fingerprint(text: str) -> str | None:
    """Accept ``AB:CD:...``, upper case or a ``sha256:`` prefix; None if it is not one."""
    cleaned = text.strip().lower()
    if cleaned.startswith("sha256:"):
        cleaned = cleaned[len("sha256:"):]
    cleaned = cleaned.replace(":", "")
    return cleaned if FINGERPRINT_HEX.match(cleaned) else None


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def client_context() -> ssl.SSLContext:
    """A context that accepts any certificate: the caller checks the pinned fingerprint."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context
